//! The fake gateway as a program: secrets that stay out of `ps`, and a
//! control request that would exhaust its memory is refused.

mod support;

use support::programs::FakeProcess;
use support::{APP_KEY, APP_SECRET};

fn get(fake: &FakeProcess, key: &str, secret: &str) -> Result<String, enos_token::Error> {
    let mut builder = enos_token::ClientBuilder::new(&fake.url, key, secret)?;
    builder.proxy("")?;
    Ok(builder.build()?.get_token()?.access_token)
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
