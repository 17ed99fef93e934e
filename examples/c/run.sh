#!/usr/bin/env bash
# Builds the library, the fake gateway and the README's first program
# (examples/c/first.c), then runs it: one signed call of the asset API. With
# ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET set it talks to that
# (real) gateway; otherwise it starts the fake gateway on a free loopback port
# and uses a demo app: no network, no EnOS account. Arguments go to the
# program (another API path).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --quiet --features fake-gateway
mkdir -p target/examples
cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/first.c \
   -Ltarget/debug -lenos_token -Wl,-rpath,"$PWD/target/debug" -o target/examples/first

if [ -z "${ENOS_GATEWAY_URL:-}" ]; then
  url_file=$(mktemp)
  target/debug/enos-fake-gateway --port 0 --app demo-app-key:demo-app-secret \
    --url-file "$url_file" --max-seconds 120 >/dev/null &
  fake_pid=$!
  trap 'kill $fake_pid 2>/dev/null || true; rm -f "$url_file"' EXIT
  for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.05; done
  ENOS_GATEWAY_URL=$(cat "$url_file")
  export ENOS_GATEWAY_URL ENOS_APP_KEY=demo-app-key ENOS_APP_SECRET=demo-app-secret
  echo "(using the fake gateway at $ENOS_GATEWAY_URL)"
fi
target/examples/first "$@"
