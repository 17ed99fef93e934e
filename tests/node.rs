//! The Node.js example `examples/node/` (koffi) against the real shared
//! library and the fake gateway binary: `node --test` runs a Get, a Refresh
//! and error paths. koffi comes from the npm registry (`npm ci` in
//! `examples/node`, which `tests/run.sh` does).

mod support;

use std::process::Command;

use support::programs::*;

/// The suite measures time (calls in flight within a second, the event
/// loop's lag): the tests of this file run one at a time, never beside a
/// package build.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((node, folder)) = node_and_folder("the Node.js tests") else {
        return;
    };
    let library = build_shared_library().join("libenos_token.so");
    let output = output_within(
        Command::new(node)
            .arg("--test")
            .current_dir(&folder)
            .env("ENOS_TOKEN_LIB", &library)
            .env("ENOS_FAKE_GATEWAY", env!("CARGO_BIN_EXE_enos-fake-gateway")),
        PROGRAM_TIME_LIMIT,
    );
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        text(&output.stderr)
    );
    assert!(report.contains("\n# pass 17\n"), "{report}");
    assert!(report.contains("\n# fail 0\n"), "{report}");
}

#[test]
fn node_readme_example_runs() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(lines[5], "upload: 200 example.js");
    assert_eq!(lines[6], "download: 200 3000000 bytes");
    assert_eq!(lines[0], "token: fk00… expires in 7200 s");
    assert_eq!(lines[1], "refreshed: new token");
    assert_eq!(lines[2], "access token is current: true");
    assert_eq!(lines[3], "request: 200 signature ok");
    assert!(
        lines[4].starts_with("error: ENOS_ERR_SERVICE 1003 gateway status 1003"),
        "{stdout}"
    );
}

/// The package as a user installs it: packed by the documented command with
/// the library inside, installed into an empty folder (koffi from npm), then
/// used with no environment variable.
#[test]
fn node_package_installs_from_the_packed_tarball() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((node, _)) = node_and_folder("the Node.js package test") else {
        return;
    };
    let work = std::env::temp_dir().join(format!("enos-npm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let app = work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let packed = Command::new("bash")
        .arg(repo().join("examples/node/pack.sh"))
        .arg("--debug")
        .arg(&work)
        .output()
        .unwrap();
    assert!(packed.status.success(), "{}", text(&packed.stderr));
    let tarball = work.join("enos-token-0.1.0.tgz");
    assert!(tarball.exists(), "{}", text(&packed.stdout));
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(&tarball)
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", text(&installed.stderr));
    assert!(
        app.join("node_modules/enos-token/native/libenos_token.so")
            .exists()
    );
    assert!(app.join("node_modules/enos-token/enos_token.d.ts").exists());

    let fake = FakeProcess::start(&[]);
    let script = format!(
        "const enos = require('enos-token');
         const client = new enos.Client({url:?}, {key:?}, {secret:?}, {{ proxy: '' }});
         console.log(client.accessToken().length > 0, enos.version());
         client.close();
         try {{ enos.version('/nonexistent/libenos_token.so'); }}
         catch (e) {{ console.log(e instanceof enos.LibraryNotFoundError, e.message.includes('/nonexistent/libenos_token.so')); }}",
        url = fake.url,
        key = support::APP_KEY,
        secret = support::APP_SECRET,
    );
    let ran = Command::new(node)
        .args(["-e", &script])
        .current_dir(&app)
        .env_remove("ENOS_TOKEN_LIB")
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert_eq!(
        text(&ran.stdout),
        format!("true {}\ntrue true\n", env!("CARGO_PKG_VERSION")),
        "{}",
        text(&ran.stderr)
    );

    // The command line comes with the package.
    let cli = Command::new("npx")
        .args(["--no-install", "enos-token", "--version"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert_eq!(
        text(&cli.stdout),
        format!("enos-token {}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        text(&cli.stderr)
    );

    // The guide's example, pasted into the application as it is.
    std::fs::copy(
        repo().join("examples/node/example.js"),
        app.join("example.js"),
    )
    .unwrap();
    let stdout = run_ok(
        Command::new(node)
            .arg("example.js")
            .current_dir(&app)
            .env_remove("ENOS_TOKEN_LIB"),
        &fake.url,
        support::APP_SECRET,
    );
    assert!(stdout.starts_with("token: fk00… expires in"), "{stdout}");

    // TypeScript: a file importing the package type-checks with plain
    // `tsc --strict` in a project that installed only TypeScript (6, whose
    // `types` default is empty): no undeclared need of @types/node.
    let installed = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "typescript@6",
        ])
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", text(&installed.stderr));
    assert!(!app.join("node_modules/@types/node").exists());
    std::fs::write(
        app.join("app.ts"),
        "import * as enos from 'enos-token';\n\
         async function main(): Promise<void> {\n\
           const client: enos.Client = new enos.Client('http://127.0.0.1:1', 'k', 's', { proxy: '' });\n\
           const headers: Record<string, string> = client.authHeaders('a=1', '{}');\n\
           const response = await client.request('GET', '/x', { signal: AbortSignal.timeout(1000) });\n\
           const message: string = response.json().msg;\n\
           const typed = response.json<{ data: { k: number } }>();\n\
           const counters: enos.Counters = client.counters();\n\
           console.log(Object.keys(headers).length, message, typed.data.k, counters.apiCalls);\n\
           client.close();\n\
         }\n\
         main();\n",
    )
    .unwrap();
    let checked = Command::new(node)
        .args([
            "node_modules/typescript/bin/tsc",
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "app.ts",
        ])
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "tsc --strict: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    let _ = std::fs::remove_dir_all(&work);
}
