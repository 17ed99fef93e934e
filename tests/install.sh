#!/usr/bin/env bash
# Install test: the build-tree route first (the README's first program built
# with -Iinclude -Ltarget/..., and through the build tree's pkg-config file),
# then `cargo cinstall` into temporary prefixes, building and running
# examples/c/refresh.c against the installed copy through pkg-config, linked
# dynamically (checks the soname and NEEDED entry) and statically (checks the
# binary needs no libenos_token.so), then with CMake's find_package, each
# against the fake gateway.
#
# Needs cargo-c (`cargo cinstall`) and pkg-config; .ci/run installs both.
set -euo pipefail
cd "$(dirname "$0")/.."

# Says that a check did not run, and records it for tests/run.sh's last lines.
not_run() {
  echo "NOT RUN: $1"
  [ -z "${ENOS_NOT_RUN_FILE:-}" ] || echo "$1" >>"$ENOS_NOT_RUN_FILE"
}

work=$(mktemp -d)
fake_pid=
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

fail() { echo "install test FAILED: $*" >&2; exit 1; }

cargo build --quiet --features fake-gateway
url_file="$work/url"
target/debug/enos-fake-gateway --port 0 --app install-key:install-secret --url-file "$url_file" \
  --max-seconds 120 >/dev/null &
fake_pid=$!
for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.05; done
export ENOS_GATEWAY_URL
ENOS_GATEWAY_URL=$(cat "$url_file")
export ENOS_APP_KEY=install-key ENOS_APP_SECRET=install-secret NO_PROXY='*'

echo "-- build tree: cc -Iinclude first.c -Ltarget/debug -lenos_token -Wl,-rpath,... (the README's line)"
tree="$PWD/target/debug"
cc -Iinclude examples/c/first.c -L"$tree" -lenos_token -Wl,-rpath,"$tree" -o "$work/first-tree"
output=$("$work/first-tree") || fail "the first program built from the build tree: $output"
grep -q '^HTTP 200$' <<<"$output" || fail "the first program printed: $output"
if command -v pkg-config >/dev/null; then
  echo "-- build tree: PKG_CONFIG_PATH=target/debug/pkgconfig pkg-config enos-token"
  # shellcheck disable=SC2046
  cc examples/c/first.c $(PKG_CONFIG_PATH="$tree/pkgconfig" pkg-config --cflags --libs enos-token) \
    -o "$work/first-tree-pc"
  output=$("$work/first-tree-pc") || fail "the first program through the build tree's pkg-config"
  grep -q '^HTTP 200$' <<<"$output" || fail "the first program printed: $output"
fi

if ! cargo cinstall --version >/dev/null 2>&1; then
  if [ "${ENOS_REQUIRE_ALL:-}" = 1 ]; then
    echo "install test: cargo-c is required (ENOS_REQUIRE_ALL=1) but cargo cinstall is missing" >&2
    exit 1
  fi
  not_run "install test (cargo-c is not installed: cargo install cargo-c --version 0.10.24 --locked)"
  exit 0
fi
command -v pkg-config >/dev/null || { echo "install test: pkg-config is missing" >&2; exit 1; }

# Debug builds keep the test quick; users install with --release (README).
install() { # prefix, extra cinstall arguments...
  local prefix=$1; shift
  cargo cinstall --debug "$@" --prefix "$prefix" --libdir "$prefix/lib" >"$work/cinstall.log" 2>&1 \
    || { cat "$work/cinstall.log" >&2; fail "cargo cinstall $*"; }
}
echo "-- cargo cinstall (shared and static) into $work/shared"
install "$work/shared"
echo "-- cargo cinstall --library-type staticlib into $work/static"
install "$work/static" --library-type staticlib

for f in include/enos-token/enos_token.h include/enos-token/enos_token.hpp lib/libenos_token.a \
         lib/libenos_token.so lib/pkgconfig/enos-token.pc \
         share/enos-token/cmake/enos-tokenConfig.cmake \
         share/enos-token/cmake/enos-tokenConfigVersion.cmake; do
  [ -e "$work/shared/$f" ] || fail "$f not installed"
done
cmp -s include/enos_token.h "$work/shared/include/enos-token/enos_token.h" \
  || fail "the installed header is not the committed one"
[ "$(ls "$work/shared/include/enos-token")" = "$(printf 'enos_token.h\nenos_token.hpp')" ] \
  || fail "unexpected headers installed: $(ls "$work/shared/include/enos-token")"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
grep -q "set(PACKAGE_VERSION \"$version\")" "$work/shared/share/enos-token/cmake/enos-tokenConfigVersion.cmake" \
  || fail "the CMake version file does not say $version"
soname=$(readelf -d "$work/shared/lib/libenos_token.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libenos_token.so.0.1" ] || fail "soname is '$soname'"


check_run() { # binary
  local output
  output=$("$1") || fail "$1 failed"
  grep -q '^token: ' <<<"$output" && grep -q '^refreshed: ' <<<"$output" || fail "$1 printed: $output"
}

echo "-- dynamic: cc \$(pkg-config --cflags --libs enos-token)"
export PKG_CONFIG_PATH="$work/shared/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/c/refresh.c $(pkg-config --cflags --libs enos-token) \
  -Wl,-rpath,"$(pkg-config --variable=libdir enos-token)" -o "$work/refresh-dynamic"
readelf -d "$work/refresh-dynamic" | grep -q 'NEEDED.*\[libenos_token.so.0.1\]' \
  || fail "the dynamic binary does not need libenos_token.so.0.1"
check_run "$work/refresh-dynamic"

echo "-- static: cc \$(pkg-config --static --cflags --libs enos-token)"
export PKG_CONFIG_PATH="$work/static/lib/pkgconfig"
[ ! -e "$work/static/lib/libenos_token.so" ] || fail "a staticlib install has a shared library"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/c/refresh.c $(pkg-config --static --cflags --libs enos-token) \
  -o "$work/refresh-static"
if readelf -d "$work/refresh-static" | grep -q 'libenos_token'; then
  fail "the static binary depends on libenos_token: $(readelf -d "$work/refresh-static" | grep NEEDED)"
fi
check_run "$work/refresh-static"

echo "-- fully static: cc -static ... libenos_token.a -lgcc_eh (instead of -lgcc_s)"
cc -static -std=c11 examples/c/refresh.c -I"$work/static/include/enos-token" \
  "$work/static/lib/libenos_token.a" -lgcc_eh -lutil -lrt -lpthread -lm -ldl -lc \
  -o "$work/refresh-fully-static" 2>"$work/static-link.log" \
  || { cat "$work/static-link.log" >&2; fail "cc -static"; }
if readelf -d "$work/refresh-fully-static" 2>/dev/null | grep -q NEEDED; then
  fail "the -static binary needs shared libraries"
fi
check_run "$work/refresh-fully-static"
echo "-- C++: the guide's line, c++ \$(pkg-config --cflags --libs enos-token) -Wl,-rpath,..."
export PKG_CONFIG_PATH="$work/shared/lib/pkgconfig"
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Wextra examples/cpp/client.cpp $(pkg-config --cflags --libs enos-token) \
  -Wl,-rpath,"$(pkg-config --variable=libdir enos-token)" -o "$work/cpp-client"
env -u LD_LIBRARY_PATH "$work/cpp-client" >/dev/null || fail "the C++ program built by the guide's line"

if command -v go >/dev/null; then
  echo "-- Go: an application module of its own (go mod edit -replace), the installed library"
  mkdir -p "$work/goapp"
  cp examples/go/cmd/example/main.go "$work/goapp/"
  repo=$PWD
  (
    cd "$work/goapp"
    export GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$work/gocache" GOPATH="$work/gopath"
    CGO_LDFLAGS="-Wl,-rpath,$(pkg-config --variable=libdir enos-token)"
    export CGO_LDFLAGS
    go mod init example.com/app >/dev/null 2>&1
    go mod edit -require=enos-token.local/enostoken@v0.0.0 \
      -replace=enos-token.local/enostoken="$repo/examples/go"
    go build -o app . >"$work/go.log" 2>&1 || { cat "$work/go.log" >&2; exit 1; }
  ) || fail "go build of an application module"
  output=$("$work/goapp/app") || fail "the Go application failed"
  grep -q '^token: ' <<<"$output" || fail "the Go application printed: $output"
elif [ "${ENOS_REQUIRE_ALL:-}" = 1 ]; then
  fail "go is required (ENOS_REQUIRE_ALL=1)"
else
  not_run "the Go application-module test (go is not installed)"
fi

if command -v cmake >/dev/null; then
  for kind in shared static; do
    echo "-- CMake: find_package(enos-token CONFIG REQUIRED), $kind install, C and C++"
    cmake -S examples/cmake -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$work/$kind" \
      >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; fail "cmake configure ($kind)"; }
    cmake --build "$work/cmake-$kind" >"$work/cmake.log" 2>&1 \
      || { cat "$work/cmake.log" >&2; fail "cmake build ($kind)"; }
    check_run "$work/cmake-$kind/refresh"   # no LD_LIBRARY_PATH: CMake's rpath
    "$work/cmake-$kind/cpp_client" >/dev/null || fail "the C++ program built with CMake ($kind)"
  done
elif [ "${ENOS_REQUIRE_ALL:-}" = 1 ]; then
  fail "cmake is required (ENOS_REQUIRE_ALL=1)"
else
  not_run "the CMake package test (cmake is not installed)"
fi
echo "install test passed"
