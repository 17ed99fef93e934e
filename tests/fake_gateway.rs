//! The fake gateway as a program: secrets that stay out of `ps`, and a
//! control request that would exhaust its memory is refused.

mod support;

use support::programs::FakeProcess;
use support::{APP_KEY, APP_SECRET};

fn get(fake: &FakeProcess, key: &str, secret: &str) -> Result<String, enos_token::Error> {
    let mut builder = enos_token::ClientBuilder::new(&fake.url, key, secret)?;
    builder.proxy("")?;
    Ok(builder.build()?.get_token()?.access_token.clone())
}

#[test]
fn app_secrets_from_the_environment_or_a_file() {
    let fake = FakeProcess::start_with(|command| {
        command
            .args(["--app", APP_KEY])
            .env("ENOS_FAKE_APP_SECRET", APP_SECRET);
    });
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok());
    assert_eq!(
        get(&fake, APP_KEY, "wrong").unwrap_err().service_status(),
        1003
    );

    let file = std::env::temp_dir().join(format!("enos-fake-apps-{}", std::process::id()));
    std::fs::write(
        &file,
        format!("{APP_KEY}:{APP_SECRET}\nother:other-secret\n"),
    )
    .unwrap();
    let fake = FakeProcess::start_with(|command| {
        command.arg("--apps-file").arg(&file);
    });
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok());
    assert!(get(&fake, "other", "other-secret").is_ok());
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn an_oversized_fault_beyond_the_cap_is_refused_and_the_fake_lives_on() {
    let fake = FakeProcess::start(&[]);
    let answer = fake.post(
        "/fake/control/fault",
        r#"{"fault":"oversized","bytes":1000000000000}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("at most 68719476736"), "{answer}");
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok(), "still serving");
}

fn client_of(fake: &FakeProcess) -> enos_token::Client {
    let mut builder = enos_token::ClientBuilder::new(&fake.url, APP_KEY, APP_SECRET).unwrap();
    builder.proxy("").unwrap();
    builder.build().unwrap()
}

/// A fault meant for an API call is not taken by the token Get that comes
/// first, and the other way round.
#[test]
fn a_fault_waits_for_the_kind_of_request_it_targets() {
    let fake = FakeProcess::start(&[]);
    let queued = fake.post(
        "/fake/control/fault",
        r#"{"fault":"not-json","target":"api"}"#,
    );
    assert!(queued.starts_with("HTTP/1.1 200"), "{queued}");
    let client = client_of(&fake);
    client
        .access_token()
        .expect("the Get passes the API's fault");
    let answer = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(answer.body(), b"this is not JSON");

    fake.post(
        "/fake/control/fault",
        r#"{"fault":"not-json","target":"token"}"#,
    );
    let answer = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(answer.status(), 200, "the call passes the token fault");
    let echoed: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    assert_eq!(echoed["msg"], "signature ok");
    let error = client.get_token().unwrap_err();
    assert!(error.message().contains("not JSON"), "{error}");

    let refused = fake.post(
        "/fake/control/fault",
        r#"{"fault":"not-json","target":"apis"}"#,
    );
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert!(
        refused.contains(r#"\"token\" (Get and Refresh), \"api\""#),
        "{refused}"
    );
}

/// The client's default API answer limit is 64 MiB: the fake can send more,
/// generated as it goes.
#[test]
fn an_oversized_answer_can_exceed_the_default_api_limit() {
    let fake = FakeProcess::start(&[]);
    let over = (64 << 20) + 1;
    fake.post(
        "/fake/control/fault",
        &format!(r#"{{"fault":"oversized","bytes":{over},"target":"api"}}"#),
    );
    let client = client_of(&fake);
    let error = client
        .request("GET", "/fake/v1/echo", None, b"")
        .unwrap_err();
    assert_eq!(error.kind(), enos_token::ErrorKind::BadResponse, "{error}");
    assert!(
        error
            .message()
            .contains("the limit set with enos_client_builder_set_max_response_bytes"),
        "{error}"
    );
    let answer = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(answer.status(), 200, "the fake lives on");
}

fn fake_binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_enos-fake-gateway"))
}

#[test]
fn the_program_explains_itself() {
    let version = fake_binary().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("enos-fake-gateway {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = fake_binary().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for part in [
        "demo-app-key:demo-app-secret",
        "(default 7200)",
        "/fake/control/fault",
        "delay (ms)",
        "ENOS_FAKE_APP_SECRET",
        "tests/data/tls",
    ] {
        assert!(help.contains(part), "--help lacks {part:?}:\n{help}");
    }
    let unknown = fake_binary().arg("--bogus").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown option --bogus"));

    let fake = FakeProcess::start(&[]);
    let listing = fake.request_get("/");
    assert!(listing.starts_with("HTTP/1.1 200"), "{listing}");
    assert!(
        listing.contains("/apim-token-service/v2.0/token/refresh"),
        "{listing}"
    );
}

#[test]
fn verbose_logs_each_request_without_secrets() {
    let fake = FakeProcess::start_with(|command| {
        command
            .args(["-v", "--app"])
            .arg(format!("{APP_KEY}:{APP_SECRET}"))
            .stderr(std::process::Stdio::piped());
    });
    let mut builder = enos_token::ClientBuilder::new(&fake.url, APP_KEY, APP_SECRET).unwrap();
    builder.proxy("").unwrap();
    let token = builder
        .build()
        .unwrap()
        .get_token()
        .unwrap()
        .access_token
        .clone();
    let log = fake.stop_and_read_stderr();
    assert!(
        log.contains("enos-fake-gateway: POST /apim-token-service/v2.0/token/get"),
        "{log}"
    );
    assert!(!log.contains(APP_SECRET) && !log.contains(&token), "{log}");
}

#[test]
fn half_sent_requests_never_take_more_than_the_connection_cap() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let fake = support::fake();
    let address = fake
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let cap = enos_token::fake::MAX_CONNECTIONS;
    let mut idle: Vec<_> = (0..cap + 44)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream
                .write_all(b"POST /apim-token-service/v2.0/token/get HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    let accepted = || fake.stats().connections as usize;
    let until = Instant::now() + Duration::from_secs(10);
    while accepted() < cap {
        assert!(Instant::now() < until, "only {} accepted", accepted());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted(), cap, "a thread per connection beyond the cap");
    // Closing some lets the waiting ones in, and the fake still serves.
    idle.drain(..100);
    while accepted() < cap + 44 {
        assert!(Instant::now() < until, "only {} accepted", accepted());
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(idle);
    let client = support::client(&fake.url());
    assert!(client.get_token().is_ok());
}

/// Started behind a path prefix, the fake prints the gateway URL with it,
/// serves the token service only there, and answers its control API with or
/// without it.
#[test]
fn behind_a_path_prefix_the_banner_shows_the_url_to_use() {
    let fake = FakeProcess::start(&["--path-prefix", "/gw/enos"]);
    assert!(fake.url.ends_with("/gw/enos"), "{}", fake.url);
    let client = client_of(&fake);
    client.access_token().unwrap();
    let answer = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(fake.get_json("/fake/control/stats")["getRequests"], 1);
    assert_eq!(
        fake.get_json("/gw/enos/fake/control/stats")["getRequests"],
        1
    );
    let unprefixed = fake.post("/apim-token-service/v2.0/token/get", "{}");
    assert!(unprefixed.starts_with("HTTP/1.1 404"), "{unprefixed}");
}

/// Every control action the fake answers is in `--help` and in
/// tests/README.md: read from the source, so a new one cannot go undocumented.
#[test]
fn every_control_is_documented() {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/fake/endpoints.rs"),
    )
    .unwrap();
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/README.md"),
    )
    .unwrap();
    let help = fake_binary().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let mut actions = Vec::new();
    for method in ["GET", "POST"] {
        let opening = format!("(\"{method}\", \"");
        for (at, _) in source.match_indices(&opening) {
            let rest = &source[at + opening.len()..];
            let action = rest.split('"').next().unwrap();
            actions.push(format!("{method} /fake/control/{action}"));
        }
    }
    assert!(actions.len() >= 12, "{actions:?}");
    for action in &actions {
        let path = action.split(' ').nth(1).unwrap();
        assert!(help.contains(path), "--help lacks {action}:\n{help}");
        assert!(
            readme.contains(&format!("`{action}")),
            "tests/README.md lacks {action}"
        );
    }
}

/// With a timestamp window, a clock far from the fake's is refused as a
/// gateway that checks timestamps would refuse it, and the message says
/// what to check.
#[test]
fn a_timestamp_window_refuses_a_far_clock_for_tokens_and_calls() {
    let fake = FakeProcess::start(&["--timestamp-window", "30"]);
    let client = client_of(&fake);
    client
        .access_token()
        .expect("a clock within the window passes");
    let answer = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(answer.status(), 200);

    // The fake's clock two minutes ahead: the caller's is two minutes behind.
    fake.post("/fake/control/clock", r#"{"skewMs":120000}"#);
    let error = client_of(&fake).get_token().unwrap_err();
    assert_eq!(error.service_status(), 1004, "{error}");
    assert!(
        error.message().contains("behind the gateway's clock")
            && error.message().contains("check the caller's clock"),
        "{error}"
    );
    let answer = client
        .request("GET", "/fake/v1/echo", None, b"")
        .map(|answer| answer.status());
    assert!(
        matches!(answer, Ok(401)) || answer.as_ref().is_err_and(|e| e.service_status() == 1004),
        "the call is refused: {answer:?}"
    );
    assert!(fake.stats()["echoRejected"].as_u64().unwrap() >= 1);

    let off = fake.post("/fake/control/timestamp-window", r#"{"seconds":0}"#);
    assert!(off.starts_with("HTTP/1.1 200"), "{off}");
    assert!(client_of(&fake).get_token().is_ok(), "no window: any clock");
}
