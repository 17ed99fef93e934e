//! The Python ctypes package `examples/python/` against the real shared
//! library and the fake gateway binary: its standard `unittest` suite
//! (16 threads sharing a client, and AsyncClient's calls in flight, included).

mod support;

use std::process::Command;

use support::programs::*;

/// The suite measures time (calls in flight within a second, the event
/// loop's lag): the tests of this file run one at a time, never beside a
/// package build.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn python_package_unit_tests() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(python) = tool("python3", "--version", "the Python package tests") else {
        return;
    };
    let library = build_shared_library().join("libenos_token.so");
    let output = output_within(
        Command::new(python)
            .args(["-m", "unittest", "-v"])
            .current_dir(repo().join("examples/python"))
            .env("ENOS_TOKEN_LIB", &library)
            .env("ENOS_FAKE_GATEWAY", env!("CARGO_BIN_EXE_enos-fake-gateway"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        PROGRAM_TIME_LIMIT,
    );
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
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        name.contains("-py3-none-manylinux_2_") && name.ends_with(".whl"),
        "any Python 3, a manylinux platform: {name}"
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
    pytest_fixtures_work(&venv, &work);
    second_python_installs(&wheel, &work, python);
    let _ = std::fs::remove_dir_all(&work);
}

/// Another Python 3 than `python`, if this machine has one (on the PATH as
/// python3.N, or under pyenv): its path.
fn second_python(python: &str) -> Option<std::path::PathBuf> {
    let version = |program: &std::path::Path| {
        Command::new(program)
            .args(["-c", "import sys; print(sys.version_info[:2])"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| text(&o.stdout))
    };
    let first = version(std::path::Path::new(python))?;
    let on_path = (8..=14).map(|minor| std::path::PathBuf::from(format!("python3.{minor}")));
    let pyenv = std::env::var("HOME")
        .ok()
        .and_then(|home| std::fs::read_dir(format!("{home}/.pyenv/versions")).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path().join("bin/python3")));
    on_path
        .chain(pyenv)
        .find(|candidate| version(candidate).is_some_and(|v| v != first && v.starts_with("(3, ")))
}

/// The same wheel in a venv of a second Python version: it installs, loads
/// its library and gets a token from the fake it carries.
fn second_python_installs(wheel: &std::path::Path, work: &std::path::Path, python: &str) {
    let Some(other) = second_python(python) else {
        not_run(
            "the wheel in a second Python version",
            "this machine has one Python 3 only, and none can be fetched from a package registry",
        );
        return;
    };
    let venv = work.join("venv-second");
    let made = Command::new(&other)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-index"])
        .arg(wheel)
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "{} refused the wheel: {}",
        other.display(),
        text(&installed.stderr)
    );
    let script = "import enos_token, enos_token.testing\n\
                  with enos_token.testing.FakeGateway() as fake:\n\
                  \x20   client = enos_token.Client(fake.url, fake.app_key, fake.app_secret, proxy='')\n\
                  \x20   print(len(client.access_token()) > 0, enos_token.version())\n\
                  \x20   client.close()\n";
    let ran = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .current_dir(work)
        .env_remove("ENOS_TOKEN_LIB")
        .env_remove("ENOS_FAKE_GATEWAY")
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert_eq!(
        text(&ran.stdout),
        format!("True {}\n", env!("CARGO_PKG_VERSION")),
        "{}: {}",
        other.display(),
        text(&ran.stderr)
    );
}

/// The pytest plugin, enabled by the documented line in `conftest.py`, in
/// the venv the wheel was installed into (pytest from PyPI).
fn pytest_fixtures_work(venv: &std::path::Path, work: &std::path::Path) {
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "pytest"])
        .output()
        .unwrap();
    if !installed.status.success() {
        not_run(
            "the pytest fixtures",
            &format!(
                "pytest could not be installed: {}",
                text(&installed.stderr).trim()
            ),
        );
        return;
    }
    let suite = work.join("pytest-suite");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("conftest.py"),
        "pytest_plugins = [\"enos_token.pytest_plugin\"]\n",
    )
    .unwrap();
    std::fs::write(
        suite.join("test_with_fixtures.py"),
        "def test_reads_assets(enos_client):\n\
         \x20   response = enos_client.request('GET', '/asset-service/v2.1/assets?orgId=o1')\n\
         \x20   assert response.status == 200\n\
         \x20   assert response.json()['data'][0]['name']['defaultValue'] == 'Inverter 1'\n\
         \n\
         def test_steers_the_fake(enos_fake_gateway, enos_client):\n\
         \x20   enos_fake_gateway.control('/fake/control/outage', {'status': 503, 'times': 1})\n\
         \x20   assert enos_client.request('GET', '/fake/v1/echo').attempts == 2\n\
         \x20   enos_fake_gateway.control('/fake/control/expire-tokens')\n\
         \x20   assert enos_fake_gateway.control('/fake/control/stats')['getRequests'] == 1\n",
    )
    .unwrap();
    let ran = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(&suite)
        .env_remove("ENOS_TOKEN_LIB")
        .env_remove("ENOS_FAKE_GATEWAY")
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    let report = text(&ran.stdout);
    assert!(ran.status.success(), "{report}{}", text(&ran.stderr));
    assert!(report.contains("2 passed"), "{report}");
}
