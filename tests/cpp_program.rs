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
        "unset variable: ENOS_ERR_NULL_ARGUMENT gateway URL is NULL (an unset environment variable?): pass the value",
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

/// The C++ guide's first snippet, as printed, inside the `main` a reader
/// would write around it: it compiles (strictly) and runs.
#[test]
fn the_guides_snippet_compiles_and_runs_as_printed() {
    let Some(compiler) = cxx() else { return };
    let guide = std::fs::read_to_string(repo().join("examples/cpp/README.md")).unwrap();
    let start = guide
        .find("<!-- snippet: cpp examples/cpp/client.cpp -->")
        .unwrap();
    let code = &guide[start..];
    let code = &code[code.find("```cpp\n").unwrap() + 7..];
    let snippet = &code[..code.find("```").unwrap()];
    let program = format!(
        "#include <cstdlib>\n#include <iostream>\n#include <mutex>\n#include <string>\n#include <vector>\n\
         #include \"enos_token.hpp\"\n\
         int main() {{\n\
           const char *gateway = std::getenv(\"ENOS_GATEWAY_URL\");\n\
           const char *app_key = std::getenv(\"ENOS_APP_KEY\");\n\
           const char *app_secret = std::getenv(\"ENOS_APP_SECRET\");\n\
           try {{\n{snippet}  }} catch (const enos::Error &e) {{\n\
             std::cerr << e.status_name() << \": \" << e.what() << \"\\n\";\n\
             return 1;\n\
           }}\n\
           return 0;\n\
         }}\n"
    );
    let source = profile_dir()
        .join("c-programs")
        .join("cpp_guide_snippet.cpp");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(&source, program).unwrap();
    let binary = compile(&compiler, &STRICT, &source, "cpp-guide-snippet", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut Command::new(&binary), &fake.url, APP_SECRET);
    assert!(
        stdout.starts_with("get: fk00… expires in 7200 s"),
        "{stdout}"
    );
    assert!(stdout.contains("request: HTTP 200"), "{stdout}");
    // With the gateway unset: an enos::Error naming it, not std::logic_error.
    let unset = Command::new(&binary)
        .env_remove("ENOS_GATEWAY_URL")
        .env("ENOS_APP_KEY", support::APP_KEY)
        .env("ENOS_APP_SECRET", APP_SECRET)
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(1));
    assert!(
        text(&unset.stderr).starts_with("ENOS_ERR_NULL_ARGUMENT: gateway URL is NULL"),
        "{}",
        text(&unset.stderr)
    );
}
