#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer (stable toolchain: coverage
# instrumentation as cargo-fuzz sets it, no sanitizer) and runs the response
# parser target for a bounded time (default 60 s; first argument overrides).
# Prints libFuzzer's final statistics (number of executions).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
if ! command -v c++ >/dev/null; then # libfuzzer-sys compiles libFuzzer (C++)
  [ "${ENOS_REQUIRE_ALL:-}" = 1 ] && { echo "fuzz: a C++ compiler is required" >&2; exit 1; }
  echo "NOT RUN: fuzzing (no C++ compiler to build libFuzzer)"
  [ -z "${ENOS_NOT_RUN_FILE:-}" ] || echo "fuzzing (no C++ compiler to build libFuzzer)" >>"$ENOS_NOT_RUN_FILE"
  exit 0
fi
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# --target keeps these flags away from build scripts (as cargo-fuzz does).
cargo build --quiet --release --manifest-path tests/fuzz/Cargo.toml --target "$target" \
  --target-dir target/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" && mkdir -p target/fuzz/artifacts
cp tests/fuzz/corpus/response/* "$work/corpus/"
set +e
"target/fuzz/$target/release/response" -max_total_time="$seconds" -print_final_stats=1 \
  -max_len=4096 -timeout=10 -rss_limit_mb=1024 -artifact_prefix=target/fuzz/artifacts/ "$work/corpus" >"$work/log" 2>&1
status=$?
set -e
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/log" || true
if [ "$status" -ne 0 ]; then
  tail -60 "$work/log" >&2
  echo "fuzzing found a failure (exit $status); the input is in target/fuzz/artifacts/" >&2
  exit "$status"
fi
echo "fuzz: no failure in ${seconds} s"
