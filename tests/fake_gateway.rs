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
    assert!(answer.contains("at most 67108864"), "{answer}");
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok(), "still serving");
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
