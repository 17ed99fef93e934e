//! The C++ wrapper `include/enos_token.hpp`: `examples/cpp/client.cpp`
//! compiled with `-std=c++17 -Wall -Wextra -Werror -pedantic`, once plain
//! and once with `-fsanitize=address,undefined`, run against the fake
//! gateway binary, its output checked (error paths included).

mod support;

use std::process::Command;

use support::programs::*;
use support::{APP_KEY, APP_SECRET};

const STRICT: [&str; 5] = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"];

fn compile_cpp(output: &str, extra_flags: &[&str]) -> std::path::PathBuf {
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let flags: Vec<&str> = STRICT.iter().chain(extra_flags).copied().collect();
    let source = repo().join("examples/cpp/client.cpp");
    compile(&compiler, &flags, &source, output, &[])
}

fn check_output(stdout: &str) {
    let expected_lines = [
        "get: fk00… expires in 7200 s",
        "refresh: new token, expires in 7200 s",
        "access_token: the refreshed token",
        "auth_headers: apim-accesstoken …",
        "counters: gets=1 refreshes=1 cache_hits=2",
        "log lines: 2",
        "one-shot get: the same token",
        "signature length: 64",
        "error path: ENOS_ERR_SERVICE service=1003 http=200 message=gateway status 1003: encryption not valid (wrong app secret?) (gateway said: encryption is invalid)",
        "bad URL: ENOS_ERR_INVALID_ARGUMENT",
        "embedded NUL: ENOS_ERR_INVALID_ARGUMENT",
        "moved-from: ENOS_ERR_NULL_ARGUMENT",
        "moved-to: works",
    ];
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected_lines,
        "{stdout}"
    );
}

fn run_client(program: &std::path::Path, env: &[(&str, &str)]) -> String {
    let fake = FakeProcess::start(&[]);
    let output = Command::new(program)
        .env("ENOS_GATEWAY_URL", &fake.url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", APP_SECRET)
        .env("NO_PROXY", "*")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    stdout
}

#[test]
fn cpp_wrapper_end_to_end() {
    let program = compile_cpp("cpp-client", &[]);
    check_output(&run_client(&program, &[]));
}

#[test]
fn cpp_wrapper_under_address_and_undefined_sanitizers() {
    let program = compile_cpp(
        "cpp-client-asan",
        &[
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ],
    );
    // LeakSanitizer is on: a leaked string or handle fails the run.
    check_output(&run_client(
        &program,
        &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")],
    ));
}

#[test]
fn cpp_wrapper_leaks_nothing_under_valgrind() {
    let program = compile_cpp("cpp-client-valgrind", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = assert_no_leaks(&program, &fake.url, APP_SECRET);
    if valgrind().is_some() {
        check_output(&stdout);
    }
}
