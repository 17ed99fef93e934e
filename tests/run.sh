#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints, the Rust unit and integration
# tests (the header drift check; the C, C++, Python and Node programs; leak
# checks under valgrind; ASan/UBSan builds), a bounded fuzzing run, the install
# test, then the README's example command.
# A check whose optional tool is missing says NOT RUN, unless ENOS_REQUIRE_ALL=1
# (CI), which makes it fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every check that does not run says so in this file (the Rust tests, the
# install test, the fuzzing script); its lines end this script's output.
mkdir -p target
export ENOS_NOT_RUN_FILE="$PWD/target/not-run.txt"
: >"$ENOS_NOT_RUN_FILE"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy (all targets, fake gateway on and off) -D warnings"
cargo clippy --quiet --all-targets --features fake-gateway -- -D warnings
cargo clippy --quiet --lib --bins -- -D warnings
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
echo "== the README's example command (its first program against the fake gateway)"
output=$(bash examples/c/run.sh)
echo "$output"
grep -q '^HTTP 200$' <<<"$output"
grep -q '"Inverter 1"' <<<"$output"
if [ -s "$ENOS_NOT_RUN_FILE" ]; then
  echo "== all checks that ran passed; NOT RUN:"
  sort -u "$ENOS_NOT_RUN_FILE" | sed 's/^/   NOT RUN: /'
  echo "== $(sort -u "$ENOS_NOT_RUN_FILE" | wc -l) check(s) did not run (listed above)"
else
  echo "== all checks passed; every check ran"
fi
