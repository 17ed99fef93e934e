//! Running real programs (C, C++, Python, Node) against the real shared
//! library and the real `enos-fake-gateway` binary, and the optional tools
//! that check them (valgrind).
//!
//! Optional tools are optional on a developer's machine: without one, the
//! check that needs it prints `NOT RUN` and why. CI sets `ENOS_REQUIRE_ALL=1`,
//! which turns a missing tool into a failure, so nothing is skipped there.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{APP_KEY, APP_SECRET};

/// `target/debug` (or wherever this test binary's profile directory is).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the shared library as it ships (without the fake gateway), once
/// per test run: `cargo test` builds only what the Rust tests link.
pub fn build_shared_library() -> PathBuf {
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

/// The strict flags every C program is compiled with.
pub const C_FLAGS: [&str; 6] = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-pthread",
];

/// Compiles `examples/c/<name>.c` against `include/` and the shared library.
pub fn compile_c(name: &str) -> PathBuf {
    compile_c_with(name, &[])
}

/// As [`compile_c`], linking `extra` libraries too (e.g. `-lcurl`).
pub fn compile_c_with(name: &str, extra: &[&str]) -> PathBuf {
    let source = repo().join("examples/c").join(format!("{name}.c"));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    compile(&compiler, &C_FLAGS, &source, name, extra)
}

/// Compiles `source` with `compiler` and `flags` against `include/` and the
/// shared library, into `<profile dir>/c-programs/<output>`.
pub fn compile(
    compiler: &str,
    flags: &[&str],
    source: &Path,
    output: &str,
    extra: &[&str],
) -> PathBuf {
    let lib_dir = build_shared_library();
    let out_dir = lib_dir.join("c-programs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(output);
    // Tests compile the same program at once: each writes a file of its
    // own, then renames it into place (a program running from the old file
    // keeps it), so no test runs a half-written binary.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let unique = out_dir.join(format!(
        "{output}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let output = Command::new(compiler)
        .args(flags)
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(source)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lenos_token")
        .args(extra)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&unique)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} runs: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&unique, &binary).unwrap();
    binary
}

/// The `enos-fake-gateway` binary, running until dropped.
pub struct FakeProcess {
    child: Child,
    pub url: String,
}

impl FakeProcess {
    /// The fake with the test app (`--app KEY:SECRET`) and `extra` arguments.
    pub fn start(extra: &[&str]) -> FakeProcess {
        FakeProcess::start_with(|command| {
            command
                .arg("--app")
                .arg(format!("{APP_KEY}:{APP_SECRET}"))
                .args(extra);
        })
    }

    /// The fake on a free port, with what `configure` adds to its command.
    pub fn start_with(configure: impl FnOnce(&mut Command)) -> FakeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_enos-fake-gateway"));
        command.args(["--port", "0", "--max-seconds", "300"]);
        configure(&mut command);
        let mut child = command
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

impl FakeProcess {
    /// POSTs `body` to `path` on the (plain HTTP) fake; the whole answer.
    pub fn post(&self, path: &str, body: &str) -> String {
        self.request("POST", path, body)
    }

    /// GETs `path` from the (plain HTTP) fake; the whole answer.
    pub fn request_get(&self, path: &str) -> String {
        self.request("GET", path, "")
    }

    /// The fake's counters (`GET /fake/control/stats`) as JSON.
    pub fn stats(&self) -> serde_json::Value {
        self.get_json("/fake/control/stats")
    }

    /// The JSON body of a GET of `path` (a control endpoint).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let answer = self.request("GET", path, "");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }

    fn request(&self, method: &str, path: &str, body: &str) -> String {
        use std::io::{Read, Write};
        // The host and port (the URL may carry the fake's path prefix).
        let authority = self.url.trim_start_matches("http://");
        let address = authority.split('/').next().unwrap();
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }
}

impl FakeProcess {
    /// Stops the fake and returns what it wrote to stderr (which the
    /// `configure` of [`FakeProcess::start_with`] must have piped).
    pub fn stop_and_read_stderr(mut self) -> String {
        use std::io::Read;
        self.child.kill().unwrap();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .expect("stderr was piped")
            .read_to_string(&mut log)
            .unwrap();
        log
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(command: &mut Command, url: &str, secret: &str) -> Output {
    command
        .env("ENOS_GATEWAY_URL", url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", secret)
        .env_remove("ENOS_CA_FILE")
        .env("NO_PROXY", "*");
    output_within(command, PROGRAM_TIME_LIMIT)
}

/// Longer than any program here takes under valgrind on a loaded 2-core
/// machine; a hung program (a deadlock, or AddressSanitizer's symbolizer
/// stuck behind an exiting thread) fails its test instead of CI's clock.
pub const PROGRAM_TIME_LIMIT: Duration = Duration::from_secs(240);

/// `command`'s output, or a failure with what it printed so far if it runs
/// longer than `limit` (it is killed).
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0) // its own children are killed with it
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?} does not start: {error}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let (finished_sender, finished) = std::sync::mpsc::channel();
    let pid = child.id();
    let mut stdout_bytes = Vec::new();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            // SAFETY: a plain signal to our child's process group; the child
            // is not reaped before the channel says so, so the id is ours.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            return true;
        }
        false
    });
    let _ = stdout.read_to_end(&mut stdout_bytes);
    let stderr_bytes = reading.join().unwrap();
    let _ = finished_sender.send(());
    let killed = watchdog.join().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !killed,
        "{command:?} ran longer than {limit:?} and was killed; it printed:\n{}\n{}",
        text(&stdout_bytes),
        text(&stderr_bytes)
    );
    Output {
        status,
        stdout: stdout_bytes,
        stderr: stderr_bytes,
    }
}

/// [`run`], requiring success; returns the program's standard output.
pub fn run_ok(command: &mut Command, url: &str, secret: &str) -> String {
    let output = run(command, url, secret);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    stdout
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// valgrind, or `None` when it is missing and not required.
pub fn valgrind() -> Option<&'static str> {
    tool("valgrind", "--version", "leak check")
}

/// Fails under `ENOS_REQUIRE_ALL=1` (CI); otherwise says what was not run.
pub fn missing_tool(tool: &str, check: &str) {
    if std::env::var("ENOS_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{tool} is required (ENOS_REQUIRE_ALL=1) but not installed");
    }
    not_run(check, &format!("{tool} is not installed; CI requires it"));
}

/// Says that `check` did not run and why: on stderr (which cargo shows only
/// for failing tests) and in `$ENOS_NOT_RUN_FILE`, which `tests/run.sh`
/// repeats in its last lines.
pub fn not_run(check: &str, why: &str) {
    let line = format!("{check} ({why})");
    eprintln!("NOT RUN: {line}");
    if let Ok(file) = std::env::var("ENOS_NOT_RUN_FILE") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
        {
            let _ = file.write_all(format!("{line}\n").as_bytes()); // one append
        }
    }
}

/// `program` if `program <version_flag>` runs, else `None` (see [`missing_tool`]).
pub fn tool<'a>(program: &'a str, version_flag: &str, check: &str) -> Option<&'a str> {
    let present = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        missing_tool(program, check);
    }
    present.then_some(program)
}

/// Whether `program` is on the PATH (for tools with no zero-exit version flag).
pub fn on_path(program: &str, check: &str) -> bool {
    let present = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        missing_tool(program, check);
    }
    present
}

/// Whether libcurl's development files are installed.
pub fn have_libcurl_headers() -> bool {
    tool("curl-config", "--version", "examples/c/api_call.c").is_some()
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
    assert_no_leaks_running(program, &[], url, secret, env)
}

/// As [`assert_no_leaks_with`], with arguments for the program.
pub fn assert_no_leaks_running(
    program: &Path,
    args: &[&str],
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
            .args(args)
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
