//! fork() in a real C host program, against the real shared library and the
//! real fake-gateway binary: a child never uses its parent's connections
//! (over HTTP and HTTPS), never waits for the parent's fetch, and frees a
//! client whose background thread lives in the parent without hanging.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use support::programs::*;
use support::{APP_SECRET, tls_file};

const APP_B: (&str, &str) = ("second-app-key", "second-app-secret-77c2");

fn fork_program() -> PathBuf {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let source = repo().join("tests/c/fork_safety.c");
            compile("cc", &C_FLAGS, &source, "fork_safety", &[])
        })
        .clone()
}

fn run_mode(fake: &FakeProcess, mode: &str, extra_env: &[(&str, &str)]) -> String {
    run_ok(
        Command::new(fork_program())
            .args([mode, "12"])
            .env("ENOS_APP_KEY_B", APP_B.0)
            .env("ENOS_APP_SECRET_B", APP_B.1)
            .envs(extra_env.iter().copied()),
        &fake.url,
        APP_SECRET,
    )
}

fn start_fake(extra: &[&str]) -> FakeProcess {
    let app_b = format!("{}:{}", APP_B.0, APP_B.1);
    let mut args = vec!["--app", &app_b];
    args.extend_from_slice(extra);
    FakeProcess::start(&args)
}

#[test]
fn one_shot_calls_in_parent_and_child_each_get_their_own_apps_token() {
    let fake = start_fake(&[]);
    let stdout = run_mode(&fake, "oneshot", &[]);
    assert_eq!(stdout, "fork safety: ok\n");
}

#[test]
fn a_client_used_by_parent_and_child_at_once_over_http() {
    let fake = start_fake(&[]);
    assert_eq!(run_mode(&fake, "client", &[]), "fork safety: ok\n");
}

#[test]
fn a_client_used_by_parent_and_child_at_once_over_https() {
    let (cert, key) = (tls_file("localhost.crt"), tls_file("localhost.key"));
    let fake = start_fake(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(fake.url.starts_with("https://"), "{}", fake.url);
    let ca = tls_file("ca.crt");
    let stdout = run_mode(&fake, "client", &[("ENOS_TEST_CA_FILE", &ca)]);
    assert_eq!(stdout, "fork safety: ok\n");
}

#[test]
fn a_child_forked_during_a_fetch_gets_a_token_of_its_own() {
    let fake = start_fake(&[]);
    let answer = fake.post(
        "/fake/control/fault",
        r#"{"fault":"delay","ms":1500,"times":1}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(run_mode(&fake, "inflight", &[]), "fork safety: ok\n");
}
