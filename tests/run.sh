#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints, the Rust unit and integration
# tests (the header drift check; the C, C++, Python and Node programs; leak
# checks under valgrind; ASan/UBSan builds), a bounded fuzzing run, the install
# test, then the README's example command.
# A check whose optional tool is missing says NOT RUN, unless ENOS_REQUIRE_ALL=1
# (CI), which makes it fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy (all targets, fake gateway on) -D warnings"
cargo clippy --quiet --all-targets --features fake-gateway -- -D warnings
if command -v npm >/dev/null; then
  echo "== npm ci (koffi for the Node.js example)"
  npm ci --prefix examples/node --no-audit --no-fund --loglevel=error
fi
echo "== cargo test"
cargo test --features fake-gateway
echo "== fuzzing the response parser (${ENOS_FUZZ_SECONDS:-30} s)"
bash tests/fuzz/run.sh "${ENOS_FUZZ_SECONDS:-30}"
echo "== install test (cargo cinstall, pkg-config, dynamic and static linking)"
bash tests/install.sh
echo "== the README's example command (C example against the fake gateway)"
output=$(bash examples/c/run.sh)
echo "$output"
grep -q '^token: ' <<<"$output"
grep -q '^refreshed: ' <<<"$output"
echo "== all checks passed"
