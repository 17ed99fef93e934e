//! The Python ctypes package `examples/python/` against the real shared
//! library and the fake gateway binary: its standard `unittest` suite
//! (16 threads sharing a client included).

mod support;

use std::process::Command;

use support::programs::*;

#[test]
fn python_package_unit_tests() {
    let Some(python) = tool("python3", "--version", "the Python package tests") else {
        return;
    };
    let library = build_shared_library().join("libenos_token.so");
    let output = Command::new(python)
        .args(["-m", "unittest", "-v"])
        .current_dir(repo().join("examples/python"))
        .env("ENOS_TOKEN_LIB", &library)
        .env("ENOS_FAKE_GATEWAY", env!("CARGO_BIN_EXE_enos-fake-gateway"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let report = text(&output.stderr);
    assert!(output.status.success(), "{report}");
    let ran = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split(' ')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    assert!(ran >= 15, "expected the whole suite to run:\n{report}");
    assert!(report.trim_end().ends_with("OK"), "{report}");
}

#[test]
fn python_readme_example_runs() {
    let Some(python) = tool("python3", "--version", "the Python example") else {
        return;
    };
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(
        Command::new(python)
            .arg("example.py")
            .current_dir(repo().join("examples/python"))
            .env(
                "ENOS_TOKEN_LIB",
                build_shared_library().join("libenos_token.so"),
            )
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        &fake.url,
        support::APP_SECRET,
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("token: fk00… expires in 7200 s"),
        "{stdout}"
    );
    assert_eq!(lines[1], "refreshed: new token");
    assert_eq!(
        lines[2],
        "headers: apim-accesstoken, apim-signature, apim-timestamp"
    );
    assert!(
        lines[3].starts_with("error: ENOS_ERR_SERVICE 1003 gateway status 1003"),
        "{stdout}"
    );
}
