//! The Node.js example `examples/node/` (koffi) against the real shared
//! library and the fake gateway binary: `node --test` runs a Get, a Refresh
//! and error paths. koffi comes from the npm registry (`npm ci` in
//! `examples/node`, which `tests/run.sh` does).

mod support;

use std::process::Command;

use support::programs::*;

/// `node` and the example folder, when node and koffi are installed.
fn node_and_folder(check: &str) -> Option<(&'static str, std::path::PathBuf)> {
    let node = tool("node", "--version", check)?;
    let folder = repo().join("examples/node");
    if !folder.join("node_modules/koffi").exists() {
        missing_tool("koffi (run `npm ci` in examples/node)", check);
        return None;
    }
    Some((node, folder))
}

#[test]
fn node_example_tests() {
    let Some((node, folder)) = node_and_folder("the Node.js tests") else {
        return;
    };
    let library = build_shared_library().join("libenos_token.so");
    let output = Command::new(node)
        .arg("--test")
        .current_dir(&folder)
        .env("ENOS_TOKEN_LIB", &library)
        .env("ENOS_FAKE_GATEWAY", env!("CARGO_BIN_EXE_enos-fake-gateway"))
        .output()
        .unwrap();
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        text(&output.stderr)
    );
    assert!(report.contains("\n# pass 7\n"), "{report}");
    assert!(report.contains("\n# fail 0\n"), "{report}");
}

#[test]
fn node_readme_example_runs() {
    let Some((node, folder)) = node_and_folder("the Node.js example") else {
        return;
    };
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(
        Command::new(node)
            .arg("example.js")
            .current_dir(&folder)
            .env(
                "ENOS_TOKEN_LIB",
                build_shared_library().join("libenos_token.so"),
            ),
        &fake.url,
        support::APP_SECRET,
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "token: fk00… expires in 7200 s");
    assert_eq!(lines[1], "refreshed: new token");
    assert_eq!(lines[2], "access token is current: true");
    assert!(
        lines[3].starts_with("error: ENOS_ERR_SERVICE 1003 gateway status 1003"),
        "{stdout}"
    );
}
