#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints, the Rust unit and integration
# tests (which include the header drift check, the C programs and, when
# valgrind is installed, the leak checks), then the README's example command.
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
echo "== the README's example command (C example against the fake gateway)"
output=$(bash examples/c/run.sh)
echo "$output"
grep -q '^token: ' <<<"$output"
grep -q '^refreshed: ' <<<"$output"
echo "== all checks passed"
