//! The fake gateway as a program: secrets that stay out of `ps`, and a
//! control request that would exhaust its memory is refused.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use support::{APP_KEY, APP_SECRET};

struct Fake(Child, String);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(configure: impl FnOnce(&mut Command)) -> Fake {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enos-fake-gateway"));
    command.args(["--port", "0", "--max-seconds", "60"]);
    configure(&mut command);
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .trim_start_matches("enos-fake-gateway listening on ")
        .to_string();
    Fake(child, url)
}

fn get(fake: &Fake, key: &str, secret: &str) -> Result<String, enos_token::Error> {
    let mut builder = enos_token::ClientBuilder::new(&fake.1, key, secret)?;
    builder.proxy("")?;
    Ok(builder.build()?.get_token()?.access_token)
}

fn post(fake: &Fake, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(fake.1.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn app_secrets_from_the_environment_or_a_file() {
    let fake = start(|command| {
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
    let fake = start(|command| {
        command.arg("--apps-file").arg(&file);
    });
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok());
    assert!(get(&fake, "other", "other-secret").is_ok());
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn an_oversized_fault_beyond_the_cap_is_refused_and_the_fake_lives_on() {
    let fake = start(|command| {
        command.args(["--app", &format!("{APP_KEY}:{APP_SECRET}")]);
    });
    let answer = post(
        &fake,
        "/fake/control/fault",
        r#"{"fault":"oversized","bytes":1000000000000}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("at most 67108864"), "{answer}");
    assert!(get(&fake, APP_KEY, APP_SECRET).is_ok(), "still serving");
}
