//! The Go package (`examples/go`): `go test` and `go run` of its example,
//! through cgo and pkg-config, against the library built here and the fake.
//! Go's caches stay inside target/.

mod support;

use std::process::Command;
use std::time::Duration;

use support::programs::*;

/// `go` with pkg-config pointing at this checkout's header and library.
fn go(args: &[&str]) -> Option<Command> {
    tool("go", "version", "the Go package tests")?;
    let library_dir = build_shared_library();
    let config_dir = library_dir.join("go-pkgconfig");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("enos-token.pc"),
        format!(
            "Name: enos-token\nDescription: this checkout\nVersion: {}\nCflags: -I{}\nLibs: -L{} -lenos_token\n",
            env!("CARGO_PKG_VERSION"),
            repo().join("include").display(),
            library_dir.display()
        ),
    )
    .unwrap();
    let target = repo().join("target");
    let mut command = Command::new("go");
    command
        .args(args)
        .current_dir(repo().join("examples/go"))
        .env("PKG_CONFIG_PATH", &config_dir)
        .env(
            "CGO_LDFLAGS",
            format!("-Wl,-rpath,{}", library_dir.display()),
        )
        .env("GOCACHE", target.join("go-cache"))
        .env("GOPATH", target.join("go-path"))
        .env("GOFLAGS", "-mod=mod")
        .env("ENOS_FAKE_GATEWAY", env!("CARGO_BIN_EXE_enos-fake-gateway"));
    Some(command)
}

#[test]
fn go_test_passes_against_the_fake() {
    let Some(mut command) = go(&["test", "-count=1", "./..."]) else {
        return;
    };
    // `go test` stops a test binary after 10 minutes by itself; the
    // compile before it is bounded here too.
    let output = output_within(&mut command, Duration::from_secs(900));
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("ok  \tenos-token.local/enostoken"),
        "{report}"
    );
}

#[test]
fn go_run_the_example() {
    let Some(mut command) = go(&["run", "./cmd/example"]) else {
        return;
    };
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut command, &fake.url, support::APP_SECRET);
    assert!(stdout.starts_with("token: fk00… ("), "{stdout}");
    assert!(
        stdout.ends_with("headers: 3\nupload: 200\ndownload: 200 3000000 bytes\ndeadline: true\n"),
        "{stdout}"
    );
}
