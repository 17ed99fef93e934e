//! Files both ways from C: `examples/c/files.c` (the guide's upload and
//! download) and `tests/c/request_object.c` (every function's NULL
//! arguments and refusals, callback parts and outputs, one request sent
//! from four threads) against the real fake-gateway binary, plainly, under
//! valgrind and with AddressSanitizer.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use support::APP_SECRET;
use support::programs::*;

/// A fresh folder under the test profile's directory.
fn scratch(name: &str) -> PathBuf {
    let dir = profile_dir()
        .join("c-files")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The size and SHA-256 the fake serves for `file_uri`.
fn served_digest(fake: &FakeProcess, file_uri: &str) -> (u64, String) {
    let answer = fake.request_get(&format!("/fake/control/file-digest?fileUri={file_uri}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    (
        value["bytes"].as_u64().unwrap(),
        value["sha256"].as_str().unwrap().to_string(),
    )
}

#[test]
fn the_files_example_uploads_a_measurement_point_and_downloads_a_file() {
    let program = compile_c("files");
    let fake = FakeProcess::start(&[]);
    let dir = scratch("example");
    let message = dir.join("message.json");
    std::fs::write(
        &message,
        br#"{"payload":[{"measurepoints":{"temp":21.5}}]}"#,
    )
    .unwrap();
    let photo = dir.join("photo.jpg");
    std::fs::write(
        &photo,
        (0..700_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let csv = dir.join("readings.csv");
    std::fs::write(&csv, "t,v\n1,2\n").unwrap();
    let args = [
        "upload",
        message.to_str().unwrap(),
        photo.to_str().unwrap(),
        csv.to_str().unwrap(),
    ];
    let stdout = run_ok(Command::new(&program).args(args), &fake.url, APP_SECRET);
    assert!(stdout.starts_with("HTTP 200\n"), "{stdout}");
    for file in [&message, &photo, &csv] {
        assert!(
            stdout.contains(&sha256_of(file)),
            "{} intact: {stdout}",
            file.display()
        );
    }
    assert!(stdout.contains("\"filename\":\"photo.jpg\""), "{stdout}");

    let uri = "enos-connect://fake/20000000.bin";
    let output = dir.join("download.bin");
    let stdout = run_ok(
        Command::new(&program).args(["download", uri, output.to_str().unwrap()]),
        &fake.url,
        APP_SECRET,
    );
    assert!(
        stdout.starts_with("HTTP 200, 20000000 bytes written"),
        "{stdout}"
    );
    assert_eq!(sha256_of(&output), served_digest(&fake, uri).1);

    // Cut after 3 MB: resumed, every byte once.
    fake.post(
        "/fake/control/fault",
        r#"{"fault":"cut-download","bytes":3000000}"#,
    );
    let stdout = run_ok(
        Command::new(&program).args(["download", uri, output.to_str().unwrap()]),
        &fake.url,
        APP_SECRET,
    );
    assert!(
        stdout.contains("20000000 bytes written") && stdout.contains("(2 attempt(s))"),
        "{stdout}"
    );
    assert_eq!(sha256_of(&output), served_digest(&fake, uri).1);
    assert_eq!(fake.stats()["rangeRequests"], 1);

    assert_no_leaks_running(&program, &args, &fake.url, APP_SECRET, &[]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_request_object(program: &Path, runner: Option<&str>, env: &[(&str, &str)]) {
    let fake = FakeProcess::start(&[]);
    let dir = scratch(&format!("object-{}", runner.unwrap_or("plain")));
    let dir_arg = dir.to_str().unwrap();
    let stdout = match runner {
        Some("valgrind") => {
            assert_no_leaks_running(program, &[dir_arg], &fake.url, APP_SECRET, env)
        }
        _ => run_ok(
            Command::new(program).arg(dir_arg).envs(env.iter().copied()),
            &fake.url,
            APP_SECRET,
        ),
    };
    if runner == Some("valgrind") && valgrind().is_none() {
        return;
    }
    assert_eq!(stdout, "request object: ok\n");
    let (size, digest) = served_digest(&fake, "enos-connect://fake/3000000.bin");
    let written = dir.join("callback.bin");
    assert_eq!(std::fs::metadata(&written).unwrap().len(), size);
    assert_eq!(sha256_of(&written), digest);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_request_object_from_c_plainly_and_under_valgrind() {
    let program = compile(
        "cc",
        &C_FLAGS,
        &repo().join("tests/c/request_object.c"),
        "request_object",
        &[],
    );
    check_request_object(&program, None, &[]);
    check_request_object(&program, Some("valgrind"), &[]);
}

#[test]
fn the_request_object_from_c_under_address_and_undefined_sanitizers() {
    let sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all",
    ];
    let flags: Vec<&str> = C_FLAGS.iter().chain(&sanitizers).copied().collect();
    let program = compile(
        "cc",
        &flags,
        &repo().join("tests/c/request_object.c"),
        "request_object-asan",
        &[],
    );
    check_request_object(
        &program,
        None,
        &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")],
    );
}

fn check_async_calls(program: &Path, valgrind: bool, env: &[(&str, &str)]) {
    let fake = FakeProcess::start(&[]);
    let stdout = if valgrind {
        if valgrind_missing() {
            return;
        }
        assert_no_leaks_running(program, &["--valgrind"], &fake.url, APP_SECRET, env)
    } else {
        run_ok(
            Command::new(program).envs(env.iter().copied()),
            &fake.url,
            APP_SECRET,
        )
    };
    assert_eq!(stdout, "async calls: ok\n");
    // The queued call that was cancelled never reached the gateway (any
    // call the fake answered is in its log, by path).
    let calls = fake.request_get("/fake/control/calls");
    assert!(calls.contains("/fake/v1/echo"), "{calls}");
    assert!(
        !calls.contains("never-sent"),
        "the cancelled queued call was sent"
    );
}

fn valgrind_missing() -> bool {
    valgrind().is_none()
}

#[test]
fn calls_in_flight_from_c_plainly_and_under_valgrind() {
    let program = compile(
        "cc",
        &C_FLAGS,
        &repo().join("tests/c/async_calls.c"),
        "async_calls",
        &[],
    );
    check_async_calls(&program, false, &[]);
    check_async_calls(&program, true, &[]);
}

#[test]
fn calls_in_flight_from_c_under_address_and_undefined_sanitizers() {
    let sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all",
    ];
    let flags: Vec<&str> = C_FLAGS.iter().chain(&sanitizers).copied().collect();
    let program = compile(
        "cc",
        &flags,
        &repo().join("tests/c/async_calls.c"),
        "async_calls-asan",
        &[],
    );
    check_async_calls(
        &program,
        false,
        &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")],
    );
}

#[test]
fn the_in_flight_example_polls_its_calls_and_cancels_a_slow_one() {
    let program = compile_c("in_flight");
    let fake = FakeProcess::start(&[]);
    let args = ["pump-1", "pump-2", "meter-7"];
    let stdout = run_ok(Command::new(&program).args(args), &fake.url, APP_SECRET);
    // The calls answer after 150, 100 and 50 ms: they complete in that order.
    assert_eq!(
        stdout,
        "meter-7: HTTP 200\npump-2: HTTP 200\npump-1: HTTP 200\n\
         slow: ENOS_ERR_CANCELLED (GET /fake/v1/echo?delayMs: cancelled after its request was sent)\n",
    );
    assert_no_leaks_running(&program, &args, &fake.url, APP_SECRET, &[]);
}
