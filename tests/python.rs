//! The Python ctypes package `examples/python/` against the real shared
//! library and the fake gateway binary: its standard `unittest` suite
//! (16 threads sharing a client, and AsyncClient's calls in flight, included).

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
    // The two modules: test_enos_token (27) and test_calls_in_flight (7).
    assert_eq!(ran, 34, "expected the whole suite to run:\n{report}");
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
    assert_eq!(lines.len(), 9, "{stdout}");
    assert!(
        lines[0].starts_with("token: fk00… expires in 7200 s"),
        "{stdout}"
    );
    assert_eq!(lines[1], "refreshed: new token");
    assert_eq!(lines[2], "request: 200 signature ok");
    assert_eq!(
        lines[3],
        "headers: apim-accesstoken, apim-signature, apim-timestamp"
    );
    assert!(
        lines[4].starts_with("error: ENOS_ERR_SERVICE 1003 gateway status 1003"),
        "{stdout}"
    );
    assert_eq!(lines[5], "upload: 200 example.py");
    assert_eq!(lines[6], "download: 200 3000000 bytes");
    assert_eq!(lines[7], "async: 100 calls, {200}");
    assert_eq!(lines[8], "async: cancelled after 0.2 s");
}

/// The wheel as a user installs it: built by the documented command, for
/// this platform, carrying the library and the fake; installed into a fresh
/// venv, the package's test suite passes with no environment variable.
#[test]
fn python_wheel_installs_and_runs_without_environment_variables() {
    let Some(python) = tool("python3", "--version", "the Python wheel test") else {
        return;
    };
    let work = std::env::temp_dir().join(format!("enos-wheel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("run")).unwrap();
    let wheels = work.join("wheels");
    let built = Command::new("bash")
        .arg(repo().join("examples/python/build_wheel.sh"))
        .arg("--debug")
        .arg(&wheels)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built.stderr));
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel");
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.contains("linux") && !name.contains("none-any"),
        "{name}"
    );

    let venv = work.join("venv");
    let made = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-index"])
        .arg(&wheel)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", text(&installed.stderr));

    for suite in ["test_enos_token.py", "test_calls_in_flight.py"] {
        std::fs::copy(
            repo().join("examples/python").join(suite),
            work.join("run").join(suite),
        )
        .unwrap();
    }
    let tests = Command::new(venv.join("bin/python"))
        .args(["-m", "unittest", "-v"])
        .current_dir(work.join("run"))
        .env_remove("ENOS_TOKEN_LIB")
        .env_remove("ENOS_FAKE_GATEWAY")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let report = text(&tests.stderr);
    assert!(
        tests.status.success() && report.trim_end().ends_with("OK"),
        "{report}"
    );
    let loaded = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import enos_token; print(enos_token.load_library()._name)",
        ])
        .current_dir(work.join("run"))
        .env_remove("ENOS_TOKEN_LIB")
        .output()
        .unwrap();
    let path = text(&loaded.stdout);
    assert!(
        path.contains("site-packages/enos_token/libenos_token.so"),
        "{path}"
    );
    // The command line comes with the wheel, as the venv's enos-token script.
    let cli = Command::new(venv.join("bin/enos-token"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        text(&cli.stdout),
        format!("enos-token {}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        text(&cli.stderr)
    );
    let _ = std::fs::remove_dir_all(&work);
}
