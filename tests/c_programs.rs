//! Real C programs against the real shared library and the real fake-gateway
//! binary: compiled with `-Wall -Wextra -Werror -pedantic`, run, their output
//! checked, and run again under valgrind for leaks.
//!
//! valgrind and libcurl's headers (for `api_call.c`) are optional on a
//! developer's machine: without them those checks print what they did not
//! run. CI sets `ENOS_REQUIRE_ALL=1`, which turns a missing tool into a
//! failure, so nothing is skipped there.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use support::{APP_KEY, APP_SECRET};

/// `target/debug` (or wherever this test binary's profile directory is).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the shared library as it ships (without the fake gateway), once
/// per test run: `cargo test` builds only what the Rust tests link.
fn build_shared_library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let lib_dir = profile_dir();
            let mut cargo = Command::new(env!("CARGO"));
            cargo.args(["build", "--lib", "--quiet"]);
            if lib_dir.ends_with("release") {
                cargo.arg("--release");
            }
            let output = cargo.current_dir(repo()).output().expect("cargo runs");
            assert!(
                output.status.success(),
                "cargo build --lib failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(lib_dir.join("libenos_token.so").exists());
            lib_dir
        })
        .clone()
}

/// Compiles `examples/c/<name>.c` against `include/` and the shared library.
pub fn compile_c(name: &str) -> PathBuf {
    compile_c_with(name, &[])
}

/// As [`compile_c`], linking `extra` libraries too (e.g. `-lcurl`).
pub fn compile_c_with(name: &str, extra: &[&str]) -> PathBuf {
    let lib_dir = build_shared_library();
    let out_dir = lib_dir.join("c-programs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(name);
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-pthread",
        ])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(repo().join("examples/c").join(format!("{name}.c")))
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lenos_token")
        .args(extra)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&binary)
        .output()
        .expect("a C compiler (cc) is installed");
    assert!(
        output.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// The `enos-fake-gateway` binary, running until dropped.
pub struct FakeProcess {
    child: Child,
    pub url: String,
}

impl FakeProcess {
    pub fn start(extra: &[&str]) -> FakeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_enos-fake-gateway"))
            .args(["--port", "0", "--max-seconds", "300", "--app"])
            .arg(format!("{APP_KEY}:{APP_SECRET}"))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the fake gateway starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("enos-fake-gateway listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        FakeProcess { child, url }
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command, url: &str, secret: &str) -> Output {
    command
        .env("ENOS_GATEWAY_URL", url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", secret)
        .env_remove("ENOS_CA_FILE")
        .env("NO_PROXY", "*")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn refresh_example_prints_a_token_and_its_successor() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    let output = run(&mut Command::new(&program), &fake.url, APP_SECRET);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let token = lines[0]
        .strip_prefix("token: ")
        .and_then(|l| l.strip_suffix(" (expires in 7200 s)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let refreshed = lines[1]
        .strip_prefix("refreshed: ")
        .and_then(|l| l.strip_suffix(" (expires in 7200 s)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!token.is_empty() && !refreshed.is_empty());
    assert_ne!(token, refreshed, "the refreshed token is a new one");
}

#[test]
fn refresh_example_reports_errors_without_the_secret() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    let wrong = "wrong-secret-1b7e";
    let output = run(&mut Command::new(&program), &fake.url, wrong);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(
            "enos_client_get_token failed: ENOS_ERR_SERVICE: gateway status 1003: encryption not valid"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("  gateway status: 1003\n  HTTP status: 200\n"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong));

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = run(
        &mut Command::new(&program),
        &format!("http://127.0.0.1:{port}"),
        APP_SECRET,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "enos_client_get_token failed: ENOS_ERR_CONNECT: connect to 127.0.0.1:{port} refused\n"
        )
    );
}

/// valgrind, or `None` when it is missing and not required.
pub fn valgrind() -> Option<&'static str> {
    let present = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        missing_tool("valgrind", "leak check");
    }
    present.then_some("valgrind")
}

/// Fails under `ENOS_REQUIRE_ALL=1` (CI); otherwise says what was not run.
fn missing_tool(tool: &str, check: &str) {
    if std::env::var("ENOS_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{tool} is required (ENOS_REQUIRE_ALL=1) but not installed");
    }
    eprintln!("NOT RUN: {check} ({tool} is not installed; CI requires it)");
}

/// Whether libcurl's development files are installed.
fn have_libcurl_headers() -> bool {
    let present = Command::new("curl-config")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        missing_tool("libcurl headers (curl-config)", "examples/c/api_call.c");
    }
    present
}

/// Runs `program` under memcheck and checks: no error, nothing definitely lost.
pub fn assert_no_leaks(program: &Path, url: &str, secret: &str) -> String {
    assert_no_leaks_with(program, url, secret, &[])
}

/// As [`assert_no_leaks`], with extra environment variables.
pub fn assert_no_leaks_with(
    program: &Path,
    url: &str,
    secret: &str,
    env: &[(&str, &str)],
) -> String {
    let Some(valgrind) = valgrind() else {
        return String::new();
    };
    let output = run(
        Command::new(valgrind)
            .args([
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--error-exitcode=99",
            ])
            .arg(program)
            .envs(env.iter().copied()),
        url,
        secret,
    );
    let report = text(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(99),
        "valgrind found errors:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes") || report.contains("no leaks are possible"),
        "{report}"
    );
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    text(&output.stdout)
}

#[test]
fn refresh_example_leaks_nothing_under_valgrind() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    assert_no_leaks(&program, &fake.url, APP_SECRET);
    assert_no_leaks(&program, &fake.url, "wrong-secret"); // the error path too
}

#[test]
fn api_call_example_passes_the_signed_echo_api() {
    if !have_libcurl_headers() {
        return;
    }
    let program = compile_c_with("api_call", &["-lcurl"]);
    let fake = FakeProcess::start(&[]);
    let output = run(&mut Command::new(&program), &fake.url, APP_SECRET);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains(r#""msg":"signature ok""#), "{stdout}");
    assert!(
        stdout.contains(r#""query":"pageSize=10&orgId=o15""#),
        "{stdout}"
    );
    assert!(stdout.ends_with("HTTP status: 200\n"), "{stdout}");

    // A query with a stray % is signed exactly as sent, and the gateway agrees.
    let odd_query = run(
        Command::new(&program).env("ENOS_API_QUERY", "pageSize=10&orgId=o15&x=%zz"),
        &fake.url,
        APP_SECRET,
    );
    assert!(odd_query.status.success(), "{}", text(&odd_query.stdout));

    let valgrind_stdout = assert_no_leaks(&program, &fake.url, APP_SECRET);
    if valgrind().is_some() {
        assert!(
            valgrind_stdout.contains("signature ok"),
            "{valgrind_stdout}"
        );
    }
}

#[test]
fn threads_example_shares_one_token_fetch() {
    let program = compile_c("threads");
    let fake = FakeProcess::start(&[]);
    let output = run(
        Command::new(&program)
            .env("ENOS_THREADS", "8")
            .env("ENOS_CALLS", "5000"),
        &fake.url,
        APP_SECRET,
    );
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("calls: 40000 in 8 threads, failures: 0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("thread 0 saw 1 distinct token(s)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("counters: gets=1 refreshes=0 retries=0 failures=0 "),
        "{stdout}"
    );

    let stdout = assert_no_leaks_with(
        &program,
        &fake.url,
        APP_SECRET,
        &[("ENOS_THREADS", "4"), ("ENOS_CALLS", "200")],
    );
    if valgrind().is_some() {
        assert!(stdout.contains("failures: 0"), "{stdout}");
    }
}
