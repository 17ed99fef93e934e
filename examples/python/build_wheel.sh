#!/usr/bin/env bash
# Builds the enos-token wheel for this platform, with libenos_token.so, the
# enos-token command line (installed as the enos-token script) and the
# enos-fake-gateway program inside the package:
#
#   bash examples/python/build_wheel.sh [--debug] [OUTPUT_DIRECTORY]
#
# (release build by default; the wheel goes to target/wheels unless given).
# Needs cargo and pip (pip fetches setuptools from PyPI to build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
profile=release
cargo_profile=(--release)
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  cargo_profile=()
  shift
fi
out=${1:-$repo/target/wheels}
cd "$repo"
cargo build --quiet "${cargo_profile[@]}" --features fake-gateway --bin enos-fake-gateway
cargo build --quiet "${cargo_profile[@]}" --lib --bin enos-token   # without the fake
cp "target/$profile/libenos_token.so" "target/$profile/enos-fake-gateway" "target/$profile/enos-token" \
  "$here/enos_token/"
trap 'rm -rf "$here/build" "$here"/*.egg-info "$here/enos_token/libenos_token.so" "$here/enos_token/enos-fake-gateway" "$here/enos_token/enos-token"' EXIT
python3 -m pip wheel --quiet --no-deps --wheel-dir "$out" "$here"
ls "$out"/enos_token-*.whl
