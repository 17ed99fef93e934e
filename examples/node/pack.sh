#!/usr/bin/env bash
# Packs the enos-token npm package with libenos_token.so and the enos-token
# command line inside (native/; `npx enos-token` runs it):
#
#   bash examples/node/pack.sh [--debug] [OUTPUT_DIRECTORY]
#
# (release build by default; the tarball goes to target/npm unless given).
# Install it anywhere with `npm install <tarball>` (koffi comes from npm).
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
out=${1:-$repo/target/npm}
mkdir -p "$out" "$here/native"
cd "$repo"
cargo build --quiet "${cargo_profile[@]}" --lib --bin enos-token
cp "target/$profile/libenos_token.so" "target/$profile/enos-token" "$here/native/"
trap 'rm -rf "$here/native"' EXIT
(cd "$here" && npm pack --silent --pack-destination "$out")
