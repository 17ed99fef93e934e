//! The `enos-token` command line, as real processes against the fake
//! gateway program: a token kept between invocations, headers curl accepts,
//! signed calls with bodies from a file and from standard input, exit codes,
//! and a doctor that names what is wrong, never the secret.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::programs::*;
use support::{APP_KEY, APP_SECRET};

/// A private runtime directory (the token cache's parent), removed when dropped.
struct RuntimeDirectory(PathBuf);

impl RuntimeDirectory {
    fn new(name: &str) -> RuntimeDirectory {
        let path = std::env::temp_dir().join(format!("enos-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        RuntimeDirectory(path)
    }
}

impl Drop for RuntimeDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cli(url: &str, runtime: &RuntimeDirectory, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enos-token"));
    command
        .args(args)
        .env("ENOS_GATEWAY_URL", url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", APP_SECRET)
        .env_remove("ENOS_APP_SECRET_FILE")
        .env_remove("ENOS_CA_FILE")
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .env("NO_PROXY", "*");
    command
}

fn output(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(!all.contains(APP_SECRET), "the secret in the output: {all}");
    output
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

#[test]
fn a_token_is_kept_between_invocations_unless_told_not_to() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("token");
    let first = output(&mut cli(&fake.url, &runtime, &["token"]));
    let second = output(&mut cli(&fake.url, &runtime, &["token"]));
    assert_eq!(code(&first), 0, "{}", text(&first.stderr));
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(
        fake.stats()["getRequests"].as_u64(),
        Some(1),
        "one Get for both"
    );
    let json = output(&mut cli(&fake.url, &runtime, &["token", "--json"]));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        format!("{}\n", value["accessToken"].as_str().unwrap()),
        text(&first.stdout)
    );
    assert!(value["expiresIn"].as_u64().unwrap() > 7000);
    for _ in 0..2 {
        assert_eq!(
            code(&output(&mut cli(
                &fake.url,
                &runtime,
                &["token", "--no-cache"]
            ))),
            0
        );
    }
    assert_eq!(
        fake.stats()["getRequests"].as_u64(),
        Some(3),
        "--no-cache fetches"
    );
}

#[test]
fn headers_are_accepted_by_the_signed_api_when_curl_sends_them() {
    if !on_path("curl", "the CLI's headers with curl") {
        return;
    }
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("headers");
    let headers = output(&mut cli(
        &fake.url,
        &runtime,
        &["headers", "--query", "orgId=o1", "--data", "{\"k\":\"v\"}"],
    ));
    assert_eq!(code(&headers), 0, "{}", text(&headers.stderr));
    let file = runtime.0.join("headers.txt");
    std::fs::write(&file, &headers.stdout).unwrap();
    let curl = Command::new("curl")
        .args(["-s", "--noproxy", "*", "-H"])
        .arg(format!("@{}", file.display()))
        .args([
            "-H",
            "Content-Type: application/json",
            "--data",
            "{\"k\":\"v\"}",
        ])
        .arg(format!("{}/fake/v1/echo?orgId=o1", fake.url))
        .output()
        .unwrap();
    assert!(
        text(&curl.stdout).contains("signature ok"),
        "{}",
        text(&curl.stdout)
    );
}

#[test]
fn request_sends_bodies_from_files_and_standard_input_and_exits_by_status() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("request");
    let got = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo?a=1"],
    ));
    assert_eq!(code(&got), 0, "{}", text(&got.stderr));
    assert!(text(&got.stdout).contains("signature ok"));

    let body_file = runtime.0.join("body.json");
    std::fs::write(&body_file, "{\"from\":\"file\"}").unwrap();
    let data = format!("@{}", body_file.display());
    let posted = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "POST", "/fake/v1/echo", "--data", &data],
    ));
    assert_eq!(code(&posted), 0);
    assert!(
        text(&posted.stdout).contains(r#"\"from\":\"file\""#),
        "{}",
        text(&posted.stdout)
    );

    let mut child = cli(
        &fake.url,
        &runtime,
        &[
            "request",
            "POST",
            "/fake/v1/echo",
            "--data",
            "@-",
            "--include",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"from\":\"stdin\"}")
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(code(&piped), 0);
    let stdout = text(&piped.stdout);
    assert!(stdout.starts_with("HTTP/1.1 200\n"), "{stdout}");
    assert!(
        stdout.contains("content-type: application/json"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"\"from\":\"stdin\""#), "{stdout}");

    // A 500 from the API: exit 1, its body printed.
    fake.post("/fake/control/fault", r#"{"fault":"http500","times":1}"#);
    let failed = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo"],
    ));
    assert_eq!(code(&failed), 1);
    assert!(text(&failed.stdout).contains("500 Internal Server Error"));

    // A token a sibling retired is renewed, and the call succeeds.
    let current = text(&output(&mut cli(&fake.url, &runtime, &["token"])).stdout);
    let sibling = support::client(&fake.url);
    sibling.refresh_token(current.trim()).unwrap();
    let renewed = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo"],
    ));
    assert_eq!(code(&renewed), 0, "{}", text(&renewed.stdout));
    assert_eq!(fake.stats()["echoRejected"].as_u64(), Some(1));
}

#[test]
fn usage_and_configuration_errors_have_their_exit_codes() {
    let runtime = RuntimeDirectory::new("usage");
    let help = output(&mut cli("http://127.0.0.1:1", &runtime, &["--help"]));
    assert_eq!(code(&help), 0);
    assert!(text(&help.stdout).contains("Exit codes"));
    for command in ["token", "headers", "request", "doctor"] {
        let help = output(&mut cli(
            "http://127.0.0.1:1",
            &runtime,
            &[command, "--help"],
        ));
        assert_eq!(code(&help), 0);
        let text = text(&help.stdout);
        assert!(
            text.starts_with(&format!("enos-token {command}")) && text.contains("Examples:"),
            "{text}"
        );
    }
    let version = output(&mut cli("http://127.0.0.1:1", &runtime, &["--version"]));
    assert_eq!(
        text(&version.stdout),
        format!("enos-token {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["token", "--frobnicate"][..],
        &["frob"],
        &[],
        &["request", "GET"],
    ] {
        assert_eq!(
            code(&output(&mut cli("http://127.0.0.1:1", &runtime, args))),
            2,
            "{args:?}"
        );
    }
    let refused = output(&mut cli(
        "http://127.0.0.1:1",
        &runtime,
        &["token", "--secret", APP_SECRET],
    ));
    assert_eq!(code(&refused), 2);
    assert!(text(&refused.stderr).contains("never a flag"));
    let missing =
        output(cli("http://127.0.0.1:1", &runtime, &["token"]).env_remove("ENOS_APP_KEY"));
    assert_eq!(code(&missing), 3);
    assert!(text(&missing.stderr).contains("the app key (ENOS_APP_KEY or --app-key)"));
    // A library failure: 10 + its status (3, connect).
    let closed = output(&mut cli(
        &format!("http://127.0.0.1:{}", support::closed_port()),
        &runtime,
        &["token", "--no-cache"],
    ));
    assert_eq!(code(&closed), 13, "{}", text(&closed.stderr));
}

fn doctor(url: &str, runtime: &RuntimeDirectory, extra: &[(&str, &str)]) -> (i32, String) {
    doctor_with(url, runtime, &[], extra)
}

fn doctor_with(
    url: &str,
    runtime: &RuntimeDirectory,
    flags: &[&str],
    extra: &[(&str, &str)],
) -> (i32, String) {
    let mut args = vec!["doctor"];
    args.extend_from_slice(flags);
    let mut command = cli(url, runtime, &args);
    command.envs(extra.iter().copied());
    let output = output(&mut command);
    (code(&output), text(&output.stdout))
}

#[test]
fn the_doctor_names_what_is_wrong() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("doctor");
    let (code, report) = doctor(&fake.url, &runtime, &[]);
    assert_eq!(code, 0, "{report}");
    for step in [
        "configuration",
        "token cache",
        "gateway URL",
        "DNS",
        "TCP connect",
        "clock",
        "Get",
    ] {
        assert!(
            report.contains(&format!("OK   {step}:")),
            "{step}: {report}"
        );
    }
    // A Refresh retires every other holder's token: only when asked.
    assert!(report.contains("SKIP Refresh: not tried"), "{report}");
    assert_eq!(fake.stats()["refreshRequests"], 0, "{report}");
    assert!(
        report.contains(&format!("set, {} characters", APP_SECRET.len())),
        "{report}"
    );

    let (code, report) = doctor(
        &fake.url,
        &runtime,
        &[("ENOS_APP_SECRET", "not-the-secret")],
    );
    assert_eq!(code, 18, "a gateway status: 10 + ENOS_ERR_SERVICE");
    assert!(
        report.contains("FAIL Get") && report.contains("wrong app secret"),
        "{report}"
    );

    let port = support::closed_port();
    let (code, report) = doctor(&format!("http://127.0.0.1:{port}"), &runtime, &[]);
    assert_eq!(code, 13, "the network: 10 + ENOS_ERR_CONNECT");
    assert!(
        report.contains(&format!("FAIL TCP connect: connect to 127.0.0.1:{port}")),
        "{report}"
    );
    assert!(!report.contains("Get:"), "stops at the failure: {report}");

    fake.post("/fake/control/clock", r#"{"skewMs":-120000}"#);
    let (code, report) = doctor(&fake.url, &runtime, &[]);
    assert_eq!(code, 1, "the clock has no library status");
    assert!(
        report.contains("FAIL clock: the local clock is 120 s ahead of the gateway's"),
        "{report}"
    );

    let endpoint = format!("{}/apim-token-service/v2.0/token/get", fake.url);
    let (code, report) = doctor(&endpoint, &runtime, &[]);
    assert_eq!(code, 3, "the configuration");
    assert!(
        report.contains("FAIL gateway URL") && report.contains("not the token endpoint"),
        "{report}"
    );

    // A dead proxy is named as the proxy, with how to bypass it. (An
    // explicit one: a loopback gateway never takes the environment's.)
    let dead = support::closed_port();
    let mut command = cli(
        &fake.url,
        &runtime,
        &["--proxy", &format!("http://127.0.0.1:{dead}"), "doctor"],
    );
    let out = output(&mut command);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(13), "{report}");
    assert!(
        report.contains(&format!(
            "FAIL TCP connect: connect to the proxy 127.0.0.1:{dead}"
        )) && report.contains("no_proxy=127.0.0.1 or --proxy \"\""),
        "{report}"
    );
}

#[test]
fn the_doctor_names_the_issuer_of_an_untrusted_certificate() {
    let tls = support::tls_dir();
    let fake = FakeProcess::start(&[
        "--tls-cert",
        tls.join("localhost.crt").to_str().unwrap(),
        "--tls-key",
        tls.join("localhost.key").to_str().unwrap(),
    ]);
    let url = fake.url.replace("127.0.0.1", "localhost");
    let runtime = RuntimeDirectory::new("doctor-tls");
    let other_ca = tls.join("other-ca.crt");
    let (code, report) = doctor(
        &url,
        &runtime,
        &[("ENOS_CA_FILE", other_ca.to_str().unwrap())],
    );
    assert_eq!(code, 15, "TLS: 10 + ENOS_ERR_TLS");
    assert!(
        report.contains("FAIL TLS") && report.contains("issued by \"CN=enos-token test CA\""),
        "{report}"
    );
    // https:// to... this TLS port over http://: the scheme leads the advice.
    let plain = url.replace("https://", "http://");
    let (_, report) = doctor(&plain, &runtime, &[]);
    assert!(
        report.contains("use https://") && report.contains("→ the server speaks the other scheme"),
        "{report}"
    );
    let ca = tls.join("ca.crt");
    let (code, report) = doctor(&url, &runtime, &[("ENOS_CA_FILE", ca.to_str().unwrap())]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("OK   TLS: handshake OK, trusting the CA in"),
        "{report}"
    );
    assert!(
        report.contains("certificate issued by CN=enos-token test CA, valid until 2126-"),
        "{report}"
    );
}

const MEASUREPOINTS: &str = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn request_uploads_form_parts_and_streams_a_download_to_a_file() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("files");
    let message = runtime.0.join("msg.json");
    std::fs::write(&message, br#"{"payload":[]}"#).unwrap();
    let data = runtime.0.join("reading.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&data, &content).unwrap();
    let upload = output(&mut cli(
        &fake.url,
        &runtime,
        &[
            "request",
            "POST",
            MEASUREPOINTS,
            "-F",
            &format!("enos-message=<{};type=application/json", message.display()),
            "-F",
            &format!("enos-file=@{};filename=r1.bin", data.display()),
            "-F",
            "note=hello;type=text/plain",
        ],
    ));
    assert_eq!(code(&upload), 0, "{}", text(&upload.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&upload.stdout).unwrap();
    let parts = answer["data"]["parts"].as_array().unwrap();
    assert_eq!(parts[0]["contentType"], "application/json");
    assert_eq!(parts[0]["sha256"], sha256_hex(br#"{"payload":[]}"#));
    assert_eq!(parts[1]["filename"], "r1.bin");
    assert_eq!(parts[1]["sha256"], sha256_hex(&content));
    assert_eq!(parts[2]["contentType"], "text/plain");

    let uri = "enos-connect://fake/3000000.bin";
    let digest = fake.request_get(&format!("/fake/control/file-digest?fileUri={uri}"));
    let expected = digest.split("\"sha256\":\"").nth(1).unwrap()[..64].to_string();
    let path = format!("/connect-service/v2.1/files?action=download&fileUri={uri}");
    let target = runtime.0.join("fw.bin");
    fake.post(
        "/fake/control/fault",
        r#"{"fault":"cut-download","bytes":1000000}"#,
    );
    let download = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", &path, "-o", target.to_str().unwrap()],
    ));
    assert_eq!(code(&download), 0, "{}", text(&download.stderr));
    assert!(download.stdout.is_empty(), "the body went to the file");
    assert!(
        !text(&download.stderr).contains('['),
        "no progress bar when stderr is not a terminal"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(&target).unwrap()),
        expected,
        "resumed, exact"
    );

    let small = output(&mut cli(
        &fake.url,
        &runtime,
        &[
            "request",
            "GET",
            &path.replace("3000000", "1000"),
            "-o",
            "-",
        ],
    ));
    assert_eq!(small.stdout.len(), 1000, "-o - is standard output");
}

#[test]
fn request_sends_headers_and_names_what_it_refuses() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("headers-form");
    let echo = output(&mut cli(
        &fake.url,
        &runtime,
        &[
            "request",
            "GET",
            "/fake/v1/echo",
            "-H",
            "X-Trace: 42",
            "-H",
            "Accept: application/json",
        ],
    ));
    assert_eq!(code(&echo), 0, "{}", text(&echo.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&echo.stdout).unwrap();
    assert_eq!(answer["data"]["headers"]["x-trace"], "42");
    for (args, says) in [
        (vec!["-H", "apim-signature: forged"], "apim-signature"),
        (vec!["-H", "no colon"], "'Name: value'"),
        (
            vec!["-F", "enos-file=@/nonexistent/fw.bin"],
            "/nonexistent/fw.bin",
        ),
        (vec!["-F", "no-equals"], "name=value"),
        (
            vec!["--data", "@/nonexistent/body.json"],
            "/nonexistent/body.json",
        ),
        (vec!["--data", "{}", "-F", "a=b"], "exclusive"),
        (
            vec!["-o", "/nonexistent/dir/out.bin"],
            "/nonexistent/dir/out.bin",
        ),
    ] {
        let mut all = vec!["request", "POST", MEASUREPOINTS];
        all.extend(args.iter().copied());
        let refused = output(&mut cli(&fake.url, &runtime, &all));
        assert_eq!(code(&refused), 2, "{args:?}: {}", text(&refused.stderr));
        assert!(
            text(&refused.stderr).contains(says),
            "{args:?}: {}",
            text(&refused.stderr)
        );
    }
}

#[test]
fn a_large_transfer_shows_a_progress_bar_on_a_terminal() {
    // `script` (util-linux) runs the command on a pseudo-terminal.
    if !on_path("script", "the progress bar on a terminal") {
        return;
    }
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("progress");
    let target = runtime.0.join("big.bin");
    let path =
        "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/30000000.bin";
    let command = format!(
        "{} request GET '{path}' -o {}",
        env!("CARGO_BIN_EXE_enos-token"),
        target.display()
    );
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    let session = output(
        script
            .env("ENOS_GATEWAY_URL", &fake.url)
            .env("ENOS_APP_KEY", APP_KEY)
            .env("ENOS_APP_SECRET", APP_SECRET)
            .env("XDG_RUNTIME_DIR", &runtime.0)
            .env("NO_PROXY", "*"),
    );
    assert_eq!(code(&session), 0, "{}", text(&session.stdout));
    let shown = text(&session.stdout);
    assert!(shown.contains("100% 28.6/28.6 MiB received"), "{shown}");
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 30_000_000);
}

#[test]
fn request_retries_an_outage_says_so_with_verbose_and_exits_with_the_final_answer() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("retries");
    fake.post("/fake/control/outage", r#"{"status":503,"times":1}"#);
    let retried = output(&mut cli(
        &fake.url,
        &runtime,
        &[
            "request",
            "GET",
            "/fake/v1/echo",
            "--retries",
            "1",
            "--retry-base-ms",
            "5",
            "-v",
        ],
    ));
    assert_eq!(code(&retried), 0, "{}", text(&retried.stderr));
    let stderr = text(&retried.stderr);
    assert!(
        stderr.contains("enos-token: info: GET /fake/v1/echo: HTTP 503; retrying in "),
        "{stderr}"
    );
    assert!(stderr.contains("(2 attempts)"), "{stderr}");
    fake.post("/fake/control/outage", r#"{"status":503,"times":1}"#);
    let once = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo", "--retries", "0"],
    ));
    assert_eq!(code(&once), 1, "the 503 is the final answer");
    assert!(
        text(&once.stderr).is_empty(),
        "quiet without -v: {}",
        text(&once.stderr)
    );
    let bad = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/x", "--retries", "many"],
    ));
    assert_eq!(code(&bad), 2);
    assert!(text(&bad.stderr).contains("--retries takes a whole number"));
}

#[test]
fn ctrl_c_cancels_a_request_in_flight_and_exits_130() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("sigint");
    for (method, says) in [
        ("GET", "cancelled after its request was sent"),
        ("POST", "the server may have processed it"),
    ] {
        let child = cli(
            &fake.url,
            &runtime,
            &[
                "request",
                method,
                "/fake/v1/echo?delayMs=10000",
                "--data",
                "{}",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500)); // the call is on the wire
        let interrupted = std::time::Instant::now();
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let output = child.wait_with_output().unwrap();
        assert!(
            interrupted.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            interrupted.elapsed()
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{method}: {stderr}");
        assert!(stderr.starts_with("enos-token: interrupted: "), "{stderr}");
        assert!(stderr.contains(says), "{method}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn processes_run_one_after_another_never_repeat_a_token_request_timestamp() {
    // Each `token --no-cache` is a fresh process with one Get: values drawn
    // from the past second repeated an earlier process's in about one run
    // in five (the gateway answers 1001 and the Get is sent again).
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("consecutive");
    for run in 0..300 {
        let out = output(&mut cli(&fake.url, &runtime, &["token", "--no-cache"]));
        assert_eq!(code(&out), 0, "run {run}: {}", text(&out.stderr));
    }
    let seen = fake.get_json("/fake/control/token-requests");
    let requests = seen["requests"].as_array().unwrap();
    let repeated = requests.iter().filter(|r| r["status"] == 1001).count();
    assert_eq!(repeated, 0, "answered 1001");
    assert_eq!(requests.len(), 300, "one Get per process, none sent twice");
}

#[test]
fn doctor_refresh_publishes_the_new_token_to_the_cache_the_other_commands_use() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("doctor-refresh");
    let token =
        |runtime: &RuntimeDirectory| text(&output(&mut cli(&fake.url, runtime, &["token"])).stdout);
    let before = token(&runtime);
    let (exit, report) = doctor_with(&fake.url, &runtime, &["--refresh"], &[]);
    assert_eq!(exit, 0, "{report}");
    assert!(report.contains("OK   Refresh: new token"), "{report}");
    let after = token(&runtime);
    assert_ne!(
        after, before,
        "the cache serves the refreshed token, not the retired one"
    );
    let out = output(&mut cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo"],
    ));
    assert_eq!(
        code(&out),
        0,
        "the published token works: {}",
        text(&out.stderr)
    );
}

#[test]
fn the_doctor_shows_the_gateway_url_without_its_password() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("doctor-password");
    let with_password = fake.url.replace("http://", "http://user:hunter2@");
    let (_, report) = doctor(&with_password, &runtime, &[]);
    assert!(!report.contains("hunter2"), "{report}");
    assert!(report.contains("gateway http://…@127.0.0.1"), "{report}");
}

#[test]
fn an_unusable_default_cache_is_a_warning_and_the_commands_work_without_it() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("cache-warning");
    // A group-writable runtime directory (umask 002) and no HOME fallback.
    std::fs::set_permissions(
        &runtime.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o775),
    )
    .unwrap();
    let cache = runtime.0.join("enos-token");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o770)).unwrap();
    let mut command = cli(&fake.url, &runtime, &["token"]);
    command.env_remove("HOME").env_remove("XDG_CACHE_HOME");
    let out = output(&mut command);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one warning line: {stderr}");
    assert!(
        stderr.starts_with("enos-token: warning: the token is not kept"),
        "{stderr}"
    );
    let mut command = cli(&fake.url, &runtime, &["doctor"]);
    command.env_remove("HOME").env_remove("XDG_CACHE_HOME");
    let report = text(&output(&mut command).stdout);
    assert!(report.contains("WARN token cache:"), "{report}");

    // With the runtime directory unusable, ~/.cache is used, made private.
    let home_directory = RuntimeDirectory::new("cache-home");
    let home = home_directory.0.clone();
    let mut command = cli(&fake.url, &runtime, &["token"]);
    command.env("HOME", &home).env_remove("XDG_CACHE_HOME");
    let out = output(&mut command);
    assert_eq!((code(&out), text(&out.stderr)), (0, String::new()));
    let mode = std::fs::metadata(home.join(".cache"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert!(home.join(".cache/enos-token").is_dir());
}

#[test]
fn output_errors_are_reported_and_a_closed_pipe_ends_quietly() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("output");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for args in [
        &["request", "GET", "/fake/v1/echo"][..],
        &["token"][..],
        &["headers"][..],
        &["--help"][..],
    ] {
        let out = output(cli(&fake.url, &runtime, args).stdout(full.try_clone().unwrap()));
        assert_eq!(
            code(&out),
            4,
            "{args:?} into a full disk: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("No space left on device"),
            "{}",
            text(&out.stderr)
        );
    }
    // A reader that goes away (`| head -c1`, `| true`): killed by SIGPIPE,
    // as coreutils are, no message, no panic.
    for args in [&["doctor"][..], &["--help"][..], &["token"][..]] {
        let child = cli(&fake.url, &runtime, args)
            .stdout(pipe_without_reader())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn server_bytes_are_escaped_on_a_terminal_and_exact_in_a_pipe() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("escape");
    // A generated download: arbitrary bytes, escape characters among them.
    let path = "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/100000.bin";
    let piped = output(&mut cli(&fake.url, &runtime, &["request", "GET", path]));
    assert_eq!(code(&piped), 0);
    assert_eq!(piped.stdout.len(), 100_000, "exact bytes into a pipe");
    assert!(
        piped.stdout.contains(&0x1b),
        "the file holds escape characters"
    );
    let mut script = Command::new("script");
    script
        .args(["-qec"])
        .arg(format!(
            "{} request GET '{path}'",
            env!("CARGO_BIN_EXE_enos-token")
        ))
        .arg("/dev/null")
        .env("ENOS_GATEWAY_URL", &fake.url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", APP_SECRET)
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .env("NO_PROXY", "*");
    let Ok(on_terminal) = script.output() else {
        support::programs::missing_tool("script (util-linux)", "the terminal escaping test");
        return;
    };
    assert!(
        on_terminal.status.success(),
        "{}",
        text(&on_terminal.stderr)
    );
    assert!(
        !on_terminal.stdout.contains(&0x1b),
        "an escape character reached the terminal"
    );
    assert!(text(&on_terminal.stdout).contains("\\x1b"));
}

#[test]
fn the_command_line_never_dumps_core_and_warns_about_a_readable_secret_file() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("core");
    let mut child = cli(
        &fake.url,
        &runtime,
        &["request", "GET", "/fake/v1/echo?delayMs=3000"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let limits_path = format!("/proc/{}/limits", child.id());
    let mut limits = String::new();
    for _ in 0..200 {
        limits = std::fs::read_to_string(&limits_path).unwrap_or_default();
        if limits
            .lines()
            .any(|l| l.starts_with("Max core file size") && l.contains(" 0 "))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        limits.lines().any(
            |l| l.starts_with("Max core file size") && l.split_whitespace().nth(4) == Some("0")
        ),
        "{limits}"
    );

    let secret_file = runtime.0.join("secret");
    std::fs::write(&secret_file, format!("{APP_SECRET}\n")).unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let mut command = cli(&fake.url, &runtime, &["token"]);
    command
        .env_remove("ENOS_APP_SECRET")
        .env("ENOS_APP_SECRET_FILE", &secret_file);
    let out = output(&mut command);
    assert_eq!(code(&out), 0, "read all the same: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("can be read by group or others (mode 644: chmod 600 it)"),
        "{}",
        text(&out.stderr)
    );
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = output(&mut command);
    assert_eq!(text(&out.stderr), "", "no warning for a private file");
}

#[test]
fn timeout_from_the_flag_or_the_environment() {
    let fake = FakeProcess::start(&[]);
    let runtime = RuntimeDirectory::new("timeout");
    let slow = "/fake/v1/echo?delayMs=3000";
    let started = std::time::Instant::now();
    let out = output(&mut cli(
        &fake.url,
        &runtime,
        &["--timeout", "0.5", "request", "GET", slow],
    ));
    assert_eq!(
        code(&out),
        14,
        "10 + ENOS_ERR_TIMEOUT: {}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let mut command = cli(&fake.url, &runtime, &["request", "GET", slow]);
    command.env("ENOS_TIMEOUT_MS", "500");
    assert_eq!(code(&output(&mut command)), 14);
    let out = output(&mut cli(
        &fake.url,
        &runtime,
        &["--timeout", "soon", "token"],
    ));
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("--timeout takes seconds"),
        "{}",
        text(&out.stderr)
    );
    let mut command = cli(&fake.url, &runtime, &["token"]);
    command.env("ENOS_TIMEOUT_MS", "-1");
    let out = output(&mut command);
    assert_eq!(code(&out), 3);
    assert!(
        text(&out.stderr).contains("ENOS_TIMEOUT_MS is \"-1\""),
        "{}",
        text(&out.stderr)
    );
}

/// The write end of a pipe whose read end is already closed. (Closing the
/// read end after spawning races other test threads' spawns: a child forked
/// meanwhile holds a copy of it until its exec.)
fn pipe_without_reader() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    assert_eq!(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );
    // SAFETY: both descriptors are new and owned here.
    let (reader, writer) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    drop(reader);
    Stdio::from(writer)
}
