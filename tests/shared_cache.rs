//! A fleet of real processes sharing one app key through a shared token
//! cache, against the fake-gateway binary: one token and one refresh for
//! all, no API call with a retired token, a lock holder killed or stopped
//! mid-fetch, a corrupt, truncated or unallocatable file, two spellings of
//! one directory, fleet-wide timestamps, and the options checked through
//! the C ABI.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::programs::*;
use support::{APP_KEY, APP_SECRET};

fn fleet_program() -> PathBuf {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            compile(
                "cc",
                &C_FLAGS,
                &repo().join("tests/c/fleet.c"),
                "fleet",
                &[],
            )
        })
        .clone()
}

/// A private directory for the shared files, removed when dropped.
struct CacheDirectory(PathBuf);

impl CacheDirectory {
    fn new(name: &str) -> CacheDirectory {
        let path = std::env::temp_dir().join(format!("enos-fleet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        CacheDirectory(path)
    }
}

impl Drop for CacheDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fleet_command(fake: &FakeProcess, directory: &CacheDirectory, margin_s: u32) -> Command {
    let mut command = Command::new(fleet_program());
    command
        .env("ENOS_GATEWAY_URL", &fake.url)
        .env("ENOS_APP_KEY", APP_KEY)
        .env("ENOS_APP_SECRET", APP_SECRET)
        .env("ENOS_SHARED_CACHE", &directory.0)
        .env("ENOS_MARGIN_S", margin_s.to_string())
        .env("NO_PROXY", "*");
    command
}

#[test]
fn eight_processes_share_one_token_and_one_refresh() {
    // Tokens live 6 s, refreshed 4 s (+ up to 0.4 s) before expiry: a
    // refresh is due every 1.6-2 s; 8 processes for 7 s.
    let fake = FakeProcess::start(&["--token-lifetime", "6"]);
    let directory = CacheDirectory::new("eight");
    let children: Vec<_> = (0..8)
        .map(|_| {
            fleet_command(&fake, &directory, 4)
                .args(["run", "7"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut calls, mut rejected) = (0, 0);
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
        let numbers: Vec<u64> = stdout
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "{stdout}");
        assert_eq!(numbers[2], 0, "errors: {stdout}");
        calls += numbers[0];
        rejected += numbers[1];
    }
    let stats = fake.stats();
    let token_requests =
        stats["getRequests"].as_u64().unwrap() + stats["refreshRequests"].as_u64().unwrap();
    assert!(calls > 1000, "{calls} API calls");
    // One Get, then one Refresh per 1.6-2 s for the fleet: at most 6 in 7 s
    // (without the shared cache each process would fetch on its own).
    assert!(
        token_requests <= 6,
        "{token_requests} token requests: {stats}"
    );
    // The fake retires a token when it answers its Refresh: a call that was
    // handed the old token before the new one reached the file (one round
    // trip) can still be rejected, at most one per process and refresh. A
    // sibling still serving the old token after the switch would be
    // rejected every 10 ms, hundreds of times.
    let refreshes = stats["refreshRequests"].as_u64().unwrap();
    assert!(
        rejected <= 8 * refreshes,
        "{rejected} rejected calls: {stats}"
    );
}

#[test]
fn a_process_killed_while_holding_the_lock_blocks_nobody() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("killed");
    let answer = fake.post(
        "/fake/control/fault",
        r#"{"fault":"delay","ms":20000,"times":1}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut holder = fleet_command(&fake, &directory, 600)
        .arg("once")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until its Get is at the gateway (it holds the fleet's lock).
    let until = Instant::now() + Duration::from_secs(10);
    while fake.stats()["getRequests"].as_u64() == Some(0) {
        assert!(Instant::now() < until, "the first process never fetched");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let started = Instant::now();
    let stdout = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    assert!(stdout.starts_with("token: "), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_corrupt_file_is_ignored_and_rewritten() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("corrupt");
    let first = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    let file = std::fs::read_dir(&directory.0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    for byte in &mut bytes[64..80] {
        *byte ^= 0x5a; // the token's first bytes
    }
    std::fs::write(&file, &bytes).unwrap();
    let second = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    assert_eq!(
        second, first,
        "fetched again: the gateway hands out its current token"
    );
    assert_eq!(fake.stats()["getRequests"].as_u64(), Some(2));
    let third = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    assert_eq!(third, first);
    assert_eq!(
        fake.stats()["getRequests"].as_u64(),
        Some(2),
        "read from the rewritten file"
    );
}

#[test]
fn unsafe_directories_are_refused_through_the_c_abi() {
    use enos_token::ffi::builder::enos_client_builder_set_shared_cache;
    use enos_token::ffi::builder::{enos_client_builder_free, enos_client_builder_new};
    use enos_token::ffi::enos_status::*;
    use std::os::unix::fs::PermissionsExt;

    let directory = CacheDirectory::new("abi");
    std::fs::create_dir_all(&directory.0).unwrap();
    std::fs::set_permissions(&directory.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = std::ffi::CString::new(directory.0.to_str().unwrap()).unwrap();
    let mut builder = std::ptr::null_mut();
    unsafe {
        enos_client_builder_new(
            c"http://127.0.0.1:1".as_ptr(),
            c"k".as_ptr(),
            c"s".as_ptr(),
            &mut builder,
        );
        assert_eq!(
            enos_client_builder_set_shared_cache(builder, path.as_ptr()),
            ENOS_ERR_INVALID_ARGUMENT
        );
        let message =
            std::ffi::CStr::from_ptr(enos_token::ffi::last_error::enos_last_error_message());
        assert!(
            message.to_str().unwrap().contains("writable by others"),
            "{message:?}"
        );
        assert_eq!(
            enos_client_builder_set_shared_cache(builder, std::ptr::null()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_shared_cache(std::ptr::null_mut(), path.as_ptr()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_shared_cache(builder, c"".as_ptr()),
            ENOS_OK,
            "off"
        );
        std::fs::set_permissions(&directory.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            enos_client_builder_set_shared_cache(builder, path.as_ptr()),
            ENOS_OK
        );
        enos_client_builder_free(builder);
    }
}

fn token_file(directory: &CacheDirectory) -> PathBuf {
    std::fs::read_dir(&directory.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "token"))
        .unwrap()
}

fn wait_for_gets(fake: &FakeProcess, count: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while fake.stats()["getRequests"].as_u64() < Some(count) {
        assert!(Instant::now() < until, "no Get reached the fake");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_file_truncated_between_two_calls_of_a_running_process_is_survived() {
    use std::io::{BufRead, BufReader, Write};
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("truncated");
    let mut child = fleet_command(&fake, &directory, 600)
        .arg("twice")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("token: "), "{first}");
    // A cleanup script (or a careless sibling) truncates the file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(token_file(&directory))
        .unwrap()
        .set_len(0)
        .unwrap();
    child.stdin.take().unwrap().write_all(b"again\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{:?} {}",
        output.status,
        text(&output.stderr)
    );
    assert_eq!(
        text(&output.stdout),
        first,
        "the same token, from its own cache"
    );
    // The next process finds no token, fetches, and makes the file whole.
    let next = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    assert_eq!(next, first);
    assert!(std::fs::metadata(token_file(&directory)).unwrap().len() > 8192);
    let again = run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    assert_eq!(again, first);
    assert_eq!(
        fake.stats()["getRequests"].as_u64(),
        Some(2),
        "read from the repaired file"
    );
}

/// A 64 KiB tmpfs (mounting needs root), unmounted when dropped.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(name: &str) -> Option<SmallTmpfs> {
        let path = std::env::temp_dir().join(format!("enos-tmpfs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_dir(&path);
            missing_tool("mount (as root)", "the full-disk test");
            return None;
        }
        Some(SmallTmpfs(path))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_file_system_leaves_the_client_working_alone_with_a_warning() {
    let Some(tmpfs) = SmallTmpfs::mount("full") else {
        return;
    };
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory(tmpfs.0.join("cache"));
    std::fs::create_dir(&directory.0).unwrap();
    std::fs::set_permissions(
        &directory.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut filler = std::fs::File::create(tmpfs.0.join("filler")).unwrap();
    while std::io::Write::write_all(&mut filler, &[0x55; 4096]).is_ok() {}
    let output = run(
        fleet_command(&fake, &directory, 600)
            .arg("once")
            .env("ENOS_LOG", "1"),
        &fake.url,
        APP_SECRET,
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{:?} {stderr}", output.status);
    assert!(stdout.starts_with("token: "), "{stdout}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("without sharing"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        warning.contains(directory.0.to_str().unwrap())
            && warning.contains("No space left on device"),
        "{warning}"
    );
}

#[test]
fn a_stopped_lock_holder_does_not_freeze_the_fleet() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("stopped");
    fake.post(
        "/fake/control/fault",
        r#"{"fault":"delay","ms":3000,"times":1}"#,
    );
    let holder = fleet_command(&fake, &directory, 600)
        .arg("once")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_gets(&fake, 1); // it holds the fleet's lock
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(holder.id() as libc::pid_t, libc::SIGSTOP) };
    let started = Instant::now();
    let sibling = run(
        fleet_command(&fake, &directory, 600)
            .arg("once")
            .env("ENOS_TIMEOUT_MS", "2000")
            .env("ENOS_LOG", "1"),
        &fake.url,
        APP_SECRET,
    );
    let took = started.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(holder.id() as libc::pid_t, libc::SIGCONT) };
    let stderr = text(&sibling.stderr);
    assert!(sibling.status.success(), "{stderr}");
    assert!(text(&sibling.stdout).starts_with("token: "));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        stderr.contains(&format!("locked by process {}", holder.id())),
        "{stderr}"
    );
    let holder = holder.wait_with_output().unwrap();
    assert!(holder.status.success());
    assert_eq!(text(&holder.stdout), text(&sibling.stdout), "one token");
}

fn shared_client(fake: &FakeProcess, directory: &str) -> enos_token::Client {
    let mut builder = support::builder(&fake.url);
    builder.shared_cache(directory).unwrap();
    builder.build().unwrap()
}

#[test]
fn two_spellings_of_the_directory_in_one_process_make_one_get() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("spellings");
    std::fs::create_dir_all(directory.0.join("sub")).unwrap();
    let plain = directory.0.to_str().unwrap().to_string();
    let detour = format!("{plain}/sub/..");
    fake.post(
        "/fake/control/fault",
        r#"{"fault":"delay","ms":500,"times":1}"#,
    );
    let first = shared_client(&fake, &plain);
    let second = shared_client(&fake, &detour);
    let fetching = std::thread::spawn(move || first.access_token().unwrap());
    wait_for_gets(&fake, 1);
    let token = second.access_token().unwrap();
    assert_eq!(fetching.join().unwrap(), token);
    assert_eq!(fake.stats()["getRequests"].as_u64(), Some(1));
}

#[test]
fn freeing_an_alias_client_mid_fetch_keeps_the_fleet_waiting_for_the_holder() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("alias");
    std::fs::create_dir_all(directory.0.join("sub")).unwrap();
    let plain = directory.0.to_str().unwrap().to_string();
    fake.post(
        "/fake/control/fault",
        r#"{"fault":"delay","ms":2000,"times":1}"#,
    );
    let holder = shared_client(&fake, &plain);
    let fetching = std::thread::spawn(move || holder.access_token().unwrap());
    wait_for_gets(&fake, 1);
    drop(shared_client(&fake, &format!("{plain}/sub/..")));
    let sibling = run_ok(
        fleet_command(&fake, &directory, 600)
            .arg("once")
            .env("ENOS_TIMEOUT_MS", "10000"),
        &fake.url,
        APP_SECRET,
    );
    let token = fetching.join().unwrap();
    assert_eq!(sibling, format!("token: {token}\n"));
    assert_eq!(
        fake.stats()["getRequests"].as_u64(),
        Some(1),
        "the sibling waited"
    );
}

#[test]
fn two_unrelated_processes_never_send_the_same_timestamp() {
    let fake = FakeProcess::start(&[]);
    let directory = CacheDirectory::new("timestamps");
    run_ok(
        fleet_command(&fake, &directory, 600).arg("once"),
        &fake.url,
        APP_SECRET,
    );
    let children: Vec<_> = (0..2)
        .map(|_| {
            fleet_command(&fake, &directory, 600)
                .args(["timestamps", "3000"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut drawn = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        for timestamp in text(&output.stdout).split_whitespace() {
            drawn += 1;
            assert!(
                seen.insert(timestamp.to_string()),
                "{timestamp} drawn twice"
            );
        }
    }
    assert_eq!(drawn, 6000);
}
