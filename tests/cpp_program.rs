//! The C++ wrapper `include/enos_token.hpp`: `examples/cpp/client.cpp`
//! compiled with `-std=c++17 -Wall -Wextra -Werror -pedantic`, once plain
//! and once with `-fsanitize=address,undefined`, run against the fake
//! gateway binary, its output checked (error paths included).

mod support;

use std::process::Command;

use support::APP_SECRET;
use support::programs::*;

const STRICT: [&str; 5] = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// The C++ compiler, or `None` (with a NOT RUN note) when there is none.
fn cxx() -> Option<String> {
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    tool(&compiler, "--version", "the C++ wrapper tests").map(str::to_string)
}

fn compile_cpp(compiler: &str, output: &str, extra_flags: &[&str]) -> std::path::PathBuf {
    let flags: Vec<&str> = STRICT.iter().chain(extra_flags).copied().collect();
    let source = repo().join("examples/cpp/client.cpp");
    compile(compiler, &flags, &source, output, &[])
}

fn check_output(stdout: &str) {
    let expected_lines = [
        "get: fk00… expires in 7200 s",
        "refresh: new token, expires in 7200 s",
        "access_token: the refreshed token",
        "auth_headers: apim-accesstoken …",
        "request: HTTP 200, application/json;charset=UTF-8",
        "upload: HTTP 200, readings.csv arrived, requestId present",
        "download: HTTP 200, 3000000 bytes, body 0",
        "output exception: disk full",
        "bad header: ENOS_ERR_INVALID_ARGUMENT",
        "counters: gets=1 refreshes=1 cache_hits=6",
        "log lines: 6",
        "one-shot get: the same token",
        "signature length: 64",
        "error path: ENOS_ERR_SERVICE service=1003 http=200 message=gateway status 1003: encryption not valid (wrong app secret?) (gateway said: encryption is invalid)",
        "bad URL: ENOS_ERR_INVALID_ARGUMENT",
        "embedded NUL: ENOS_ERR_INVALID_ARGUMENT",
        "moved-from: ENOS_ERR_NULL_ARGUMENT",
        "moved-to: works",
        "shared cache: one token, second client's requests=0",
        "shared cache in /tmp: ENOS_ERR_INVALID_ARGUMENT",
        "async: 20 of 20 calls answered HTTP 200",
        "wait_for 10 ms: not done yet",
        "cancelled: ENOS_ERR_CANCELLED",
        "async output exception: disk full",
        "replacing a running call: at once, the new one answers HTTP 200",
    ];
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected_lines,
        "{stdout}"
    );
}

fn run_client(program: &std::path::Path, env: &[(&str, &str)]) -> String {
    let fake = FakeProcess::start(&[]);
    run_ok(
        Command::new(program).envs(env.iter().copied()),
        &fake.url,
        APP_SECRET,
    )
}

#[test]
fn cpp_wrapper_end_to_end() {
    let Some(compiler) = cxx() else { return };
    let program = compile_cpp(&compiler, "cpp-client", &[]);
    check_output(&run_client(&program, &[]));
}

#[test]
fn cpp_wrapper_under_address_and_undefined_sanitizers() {
    let Some(compiler) = cxx() else { return };
    let program = compile_cpp(
        &compiler,
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
    let Some(compiler) = cxx() else { return };
    let program = compile_cpp(&compiler, "cpp-client-valgrind", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = assert_no_leaks(&program, &fake.url, APP_SECRET);
    if valgrind().is_some() {
        check_output(&stdout);
    }
}

#[test]
fn cpp_wrapper_below_cpp17_says_what_it_needs() {
    let Some(compiler) = cxx() else { return };
    let output = Command::new(&compiler)
        .args(["-std=c++14", "-fsyntax-only"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(repo().join("examples/cpp/client.cpp"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("enos_token.hpp needs C++17 or later"),
        "{stderr}"
    );
}
