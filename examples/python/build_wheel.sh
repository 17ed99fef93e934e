#!/usr/bin/env bash
# Builds the enos-token wheel (py3-none-manylinux_2_N_<arch>: any Python 3,
# any Linux with glibc 2.N or newer) with libenos_token.so, the
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
# The platform tag, checked as auditwheel would: the programs need only the
# libraries every manylinux system has, and glibc symbols up to 2.N, which
# makes the tag manylinux_2_N.
ENOS_WHEEL_PLATFORM=$(python3 - "$here/enos_token" <<'PY'
import platform, re, subprocess, sys
folder = sys.argv[1]
allowed = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1",
           "libutil.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
newest = 17
for name in ("libenos_token.so", "enos-token", "enos-fake-gateway"):
    path = f"{folder}/{name}"
    dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\).*\[(.*)\]", dynamic))
    if needed - allowed:
        sys.exit(f"{name} needs libraries no manylinux system promises: {sorted(needed - allowed)}")
    symbols = subprocess.run(["readelf", "-V", path], capture_output=True, text=True, check=True).stdout
    for minor in re.findall(r"GLIBC_2\.(\d+)", symbols):
        newest = max(newest, int(minor))
print(f"manylinux_2_{newest}_{platform.machine()}")
PY
)
export ENOS_WHEEL_PLATFORM
python3 -m pip wheel --quiet --no-deps --wheel-dir "$out" "$here"
ls "$out"/enos_token-*.whl
