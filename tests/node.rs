//! The Node.js example `examples/node/` (koffi) against the real shared
//! library and the fake gateway binary: `node --test` runs a Get, a Refresh
//! and error paths. koffi comes from the npm registry (`npm ci` in
//! `examples/node`, which `tests/run.sh` does).

mod support;

use std::process::Command;

use support::programs::*;

#[test]
fn node_example_tests() {
    let Some(node) = tool("node", "--version", "the Node.js tests") else {
        return;
    };
    let folder = repo().join("examples/node");
    if !folder.join("node_modules/koffi").exists() {
        missing_tool("koffi (run `npm ci` in examples/node)", "the Node.js tests");
        return;
    }
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
    assert!(report.contains("\n# pass 5\n"), "{report}");
    assert!(report.contains("\n# fail 0\n"), "{report}");
}
