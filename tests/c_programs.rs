//! Real C programs against the real shared library and the real fake-gateway
//! binary: compiled with `-Wall -Wextra -Werror -pedantic`, run, their output
//! checked, and run again under valgrind for leaks.
//!
//! valgrind and libcurl's headers (for `api_call.c`) are optional on a
//! developer's machine: without them those checks print what they did not
//! run. CI sets `ENOS_REQUIRE_ALL=1`, which turns a missing tool into a
//! failure, so nothing is skipped there.

mod support;

use std::process::Command;

use support::APP_SECRET;
use support::programs::*;

#[test]
fn the_readme_first_program_calls_an_api_or_says_why_not() {
    let program = compile_c("first");
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(
        Command::new(&program).arg("/fake/v1/echo?orgId=o1"),
        &fake.url,
        APP_SECRET,
    );
    assert!(stdout.starts_with("HTTP 200\n{"), "{stdout}");
    assert!(stdout.contains("signature ok"), "{stdout}");
    // The default path is EnOS's asset API, which the fake mocks.
    let stdout = run_ok(&mut Command::new(&program), &fake.url, APP_SECRET);
    assert!(stdout.starts_with("HTTP 200\n{"), "{stdout}");
    assert!(stdout.contains("\"Inverter 1\""), "{stdout}");
    // A 404 is the API's answer, not a failure.
    let stdout = run_ok(
        Command::new(&program).arg("/no/such/api"),
        &fake.url,
        APP_SECRET,
    );
    assert!(stdout.starts_with("HTTP 404\n"), "{stdout}");
    assert_no_leaks(&program, &fake.url, APP_SECRET);
    // Unset configuration is named, not a NULL.
    let unset = Command::new(&program)
        .env_remove("ENOS_GATEWAY_URL")
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(
        text(&unset.stderr).contains("set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET"),
        "{}",
        text(&unset.stderr)
    );
    let output = run(&mut Command::new(&program), &fake.url, "wrong-secret-1b7e");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("enos-token: gateway status 1003"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret"), "{stderr}");
}

#[test]
fn refresh_example_prints_a_token_and_its_successor() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    let output = run(&mut Command::new(&program), &fake.url, APP_SECRET);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let token = lines[0]
        .strip_prefix("token: ")
        .and_then(|l| l.strip_suffix(" (expires in 7200 s)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let refreshed = lines[1]
        .strip_prefix("refreshed: ")
        .and_then(|l| l.strip_suffix(" (expires in 7200 s)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!token.is_empty() && !refreshed.is_empty());
    assert_ne!(token, refreshed, "the refreshed token is a new one");
}

#[test]
fn refresh_example_reports_errors_without_the_secret() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    let wrong = "wrong-secret-1b7e";
    let output = run(&mut Command::new(&program), &fake.url, wrong);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(
            "enos_client_get_token failed: ENOS_ERR_SERVICE: gateway status 1003: encryption not valid"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("  gateway status: 1003\n  HTTP status: 200\n"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong));

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = run(
        &mut Command::new(&program),
        &format!("http://127.0.0.1:{port}"),
        APP_SECRET,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "enos_client_get_token failed: ENOS_ERR_CONNECT: connect to 127.0.0.1:{port} refused\n"
        )
    );
}

#[test]
fn refresh_example_leaks_nothing_under_valgrind() {
    let program = compile_c("refresh");
    let fake = FakeProcess::start(&[]);
    assert_no_leaks(&program, &fake.url, APP_SECRET);
    assert_no_leaks(&program, &fake.url, "wrong-secret"); // the error path too
}

#[test]
fn api_call_example_passes_the_signed_echo_api() {
    if !have_libcurl_headers() {
        return;
    }
    let program = compile_c_with("api_call", &["-lcurl"]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut Command::new(&program), &fake.url, APP_SECRET);
    assert!(stdout.contains(r#""msg":"signature ok""#), "{stdout}");
    assert!(
        stdout.contains(r#""query":"pageSize=10&orgId=o15""#),
        "{stdout}"
    );
    assert!(stdout.ends_with("HTTP status: 200\n"), "{stdout}");

    // A query with a stray % is signed exactly as sent, and the gateway agrees.
    let odd_query = run(
        Command::new(&program).env("ENOS_API_QUERY", "pageSize=10&orgId=o15&x=%zz"),
        &fake.url,
        APP_SECRET,
    );
    assert!(odd_query.status.success(), "{}", text(&odd_query.stdout));

    let valgrind_stdout = assert_no_leaks(&program, &fake.url, APP_SECRET);
    if valgrind().is_some() {
        assert!(
            valgrind_stdout.contains("signature ok"),
            "{valgrind_stdout}"
        );
    }
}

#[test]
fn threads_example_shares_one_token_fetch() {
    let program = compile_c("threads");
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(
        Command::new(&program)
            .env("ENOS_THREADS", "8")
            .env("ENOS_CALLS", "5000"),
        &fake.url,
        APP_SECRET,
    );
    assert!(
        stdout.contains("calls: 40000 in 8 threads, failures: 0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("thread 0 saw 1 distinct token(s)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("counters: gets=1 refreshes=0 retries=0 failures=0 "),
        "{stdout}"
    );

    let stdout = assert_no_leaks_with(
        &program,
        &fake.url,
        APP_SECRET,
        &[("ENOS_THREADS", "4"), ("ENOS_CALLS", "200")],
    );
    if valgrind().is_some() {
        assert!(stdout.contains("failures: 0"), "{stdout}");
    }
}

#[test]
fn pooled_calls_spawn_no_thread_and_look_up_no_name() {
    let source = repo().join("tests/c/thread_count.c");
    // Not -pedantic: the interposer casts dlsym's result to a function pointer.
    let flags = [
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pthread",
        "-rdynamic",
    ];
    let program = compile("cc", &flags, &source, "thread_count", &[]);
    let fake = FakeProcess::start(&[]);
    let by_name = fake.url.replace("127.0.0.1", "localhost");
    let stdout = run_ok(&mut Command::new(&program), &by_name, APP_SECRET);
    // The first call resolves "localhost" once, on a helper thread that
    // honours the deadline: this also shows that the interposition counts
    // the library's threads.
    assert_eq!(
        stdout,
        "first call: threads 1, lookups 1\npooled calls: threads 0, lookups 0\n"
    );
}

#[test]
fn c_examples_under_address_and_undefined_sanitizers() {
    let sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all",
    ];
    let flags: Vec<&str> = C_FLAGS.iter().chain(&sanitizers).copied().collect();
    let fake = FakeProcess::start(&[]);
    for name in ["refresh", "threads"] {
        let source = repo().join("examples/c").join(format!("{name}.c"));
        let program = compile("cc", &flags, &source, &format!("{name}-asan"), &[]);
        let output = run(
            Command::new(&program)
                .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
                .env("ENOS_THREADS", "4")
                .env("ENOS_CALLS", "500"),
            &fake.url,
            APP_SECRET,
        );
        assert!(
            output.status.success(),
            "{name} under ASan/UBSan:\n{}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
}

#[test]
fn the_last_error_may_be_passed_back_in_and_never_outlives_a_success() {
    let sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all",
    ];
    let flags: Vec<&str> = C_FLAGS.iter().chain(&sanitizers).copied().collect();
    let source = repo().join("tests/c/last_error.c");
    let program = compile("cc", &flags, &source, "last_error-asan", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(
        Command::new(&program).env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"),
        &fake.url,
        APP_SECRET,
    );
    assert_eq!(stdout, "last error: ok\n");
}

#[test]
fn strings_are_zeroed_before_they_are_freed() {
    // Not -pedantic: the program defines free() to watch the library's calls.
    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-rdynamic"];
    let source = repo().join("tests/c/wipe.c");
    let program = compile("cc", &flags, &source, "wipe", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut Command::new(&program), &fake.url, APP_SECRET);
    assert_eq!(stdout, "wiped: yes\n");
}

#[test]
fn no_copy_of_a_token_stays_in_memory_after_everything_is_freed() {
    // Not -pedantic: _GNU_SOURCE and pointer arithmetic over mappings.
    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror"];
    let source = repo().join("tests/c/heap_wipe.c");
    let program = compile("cc", &flags, &source, "heap_wipe", &[]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut Command::new(&program), &fake.url, APP_SECRET);
    assert_eq!(stdout, "copies 0\n");
}

#[test]
fn timestamps_follow_the_wall_clock_back_after_it_was_stepped() {
    // Not -pedantic: the program defines clock_gettime() and casts dlsym's result.
    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-rdynamic"];
    let source = repo().join("tests/c/clock_step.c");
    let program = compile("cc", &flags, &source, "clock_step", &["-ldl"]);
    let fake = FakeProcess::start(&[]);
    let stdout = run_ok(&mut Command::new(&program), &fake.url, APP_SECRET);
    let value = |name: &str| -> i64 {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_suffix(" ms")?.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"))
    };
    assert!(
        value("fast: ") >= 86_000_000,
        "the clock interposition works: {stdout}"
    );
    assert!(value("ahead: ") <= 1000, "{stdout}");
    // Token requests follow the clock back too: the Gets sent while it was
    // a day fast, then the one after it was corrected.
    let seen = fake.get_json("/fake/control/token-requests");
    let gets: Vec<(i64, i64)> = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "get" && r["status"] == 0)
        .map(|r| {
            (
                r["timestamp"].as_i64().unwrap(),
                r["atWallMs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(gets.len() >= 3, "{seen}");
    let (fast_get, fast_at) = gets[gets.len() - 2];
    assert!(
        fast_get - fast_at >= 86_000_000,
        "sent a day fast: {gets:?}"
    );
    let (corrected, at) = gets[gets.len() - 1];
    assert!(
        (corrected - at).abs() <= 1000,
        "the Get after the correction is {} ms from the real clock: {gets:?}",
        corrected - at
    );
}

#[test]
fn the_header_version_macros_match_the_library_and_cargo_toml() {
    let program = compile(
        "cc",
        &C_FLAGS,
        &repo().join("tests/c/version.c"),
        "version",
        &[],
    );
    let stdout = run_ok(&mut Command::new(&program), "http://unused", APP_SECRET);
    let version = env!("CARGO_PKG_VERSION");
    let (major, minor, patch) = (
        env!("CARGO_PKG_VERSION_MAJOR").parse::<u32>().unwrap(),
        env!("CARGO_PKG_VERSION_MINOR").parse::<u32>().unwrap(),
        env!("CARGO_PKG_VERSION_PATCH").parse::<u32>().unwrap(),
    );
    let number = (major << 16) | (minor << 8) | patch;
    assert_eq!(
        stdout,
        format!("header {version} library {version} num {number:06x}\n")
    );
}
