//! The shared file on its own: what is refused, what is ignored, torn and
//! truncated files, the lock and its lease across real processes, and the
//! fleet's timestamps.

use std::os::unix::fs::{DirBuilderExt, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::record::{self, SharedToken};
use super::*;
use crate::error::{Error, ErrorKind};
use crate::time::timestamp::{TimestampUse, wall_clock_ms};

/// A fresh directory, mode 0700, removed when dropped.
struct Directory(PathBuf);

impl Directory {
    fn new(name: &str) -> Directory {
        let path = std::env::temp_dir().join(format!(
            "enos-shared-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        Directory(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn slot(&self, app_key: &str) -> Arc<SharedSlot> {
        open_slot(self.path(), app_key)
    }

    fn token_file(&self) -> PathBuf {
        let mut files = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path());
        files.next().unwrap()
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_slot(path: &str, app_key: &str) -> Arc<SharedSlot> {
    SharedCacheDirectory::open(path)
        .unwrap()
        .slot("http://gw:1", app_key)
        .unwrap()
        .unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, Error>, part: &str) {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    assert!(error.message().contains(part), "{error}");
}

fn now() -> i64 {
    wall_clock_ms()
}

fn lock(slot: &SharedSlot) -> FleetLock<'_> {
    slot.lock(Instant::now() + Duration::from_secs(5)).unwrap()
}

#[test]
fn a_token_written_by_one_is_read_by_all_and_the_generation_moves() {
    let directory = Directory::new("roundtrip");
    let slot = directory.slot("app");
    assert_eq!(slot.read(now()), None, "a new file holds no token");
    let before = slot.generation();
    assert!(lock(&slot).publish("tok-1", 1_000, 7200, 0));
    let after = slot.generation();
    assert_ne!(after, before);
    let read = slot.read(now()).unwrap();
    assert_eq!(
        (read.token.as_str(), read.sent_wall_ms, read.expire_s),
        ("tok-1", 1_000, 7200)
    );
    assert_eq!(read.generation, after);
    assert!(!read.invalidated);

    let lock = slot.try_lock().unwrap();
    assert!(!lock.invalidate("another-token", now()));
    assert!(lock.invalidate("tok-1", now()));
    drop(lock);
    assert!(slot.read(now()).unwrap().invalidated);
    let metadata = std::fs::metadata(directory.token_file()).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), FILE_SIZE as u64, "allocated when opened");
    assert_eq!(slot.take_warning(), None);
}

#[test]
fn two_app_keys_in_one_directory_never_share() {
    let directory = Directory::new("two-apps");
    let (a, b) = (directory.slot("app-a"), directory.slot("app-b"));
    lock(&a).publish("tok-a", 1, 60, 0);
    assert_eq!(b.read(now()), None);
    assert_eq!(std::fs::read_dir(&directory.0).unwrap().count(), 2);
}

fn file_of(directory: &Directory) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(directory.token_file())
        .unwrap()
}

#[test]
fn a_torn_or_damaged_record_is_ignored_and_rewritten() {
    let directory = Directory::new("corrupt");
    let slot = directory.slot("app");
    lock(&slot).publish("tok-1", 1, 60, 0);
    let file = file_of(&directory);
    // A flipped byte in the token: the checksum no longer matches.
    file.write_at(b"X", record::TOKEN as u64 + 2).unwrap();
    assert_eq!(slot.read(now()), None);
    let warning = slot.take_warning().unwrap();
    assert!(warning.contains("damaged"), "{warning}");
    assert_eq!(slot.read(now()), None);
    assert_eq!(slot.take_warning(), None, "one warning per record");
    lock(&slot).publish("tok-3", 1, 60, 0);
    assert_eq!(
        slot.read(now()).unwrap().token,
        "tok-3",
        "the next writer repairs it"
    );
    // An impossible length.
    file.write_at(&(1u64 << 40).to_le_bytes(), 40).unwrap();
    assert_eq!(slot.read(now()), None);
}

/// A record with a valid checksum, as a same-user process could plant it.
fn plant(directory: &Directory, slot: &SharedSlot, token: &str, sent_wall_ms: i64, expire_s: i64) {
    let planted = SharedToken {
        generation: 0,
        token: token.to_string(),
        sent_wall_ms,
        expire_s,
        invalidated: false,
        pause_until_wall_ms: 0,
    };
    let generation = slot.generation().wrapping_add(1);
    let bytes = record::encode(slot.key_check, generation, &planted);
    file_of(directory).write_at(&bytes, 0).unwrap();
}

#[test]
fn planted_records_are_checked_like_a_gateway_answer() {
    let directory = Directory::new("planted");
    let slot = directory.slot("app");
    let ten_years_ms = 10 * 365 * 24 * 3600 * 1000;
    let cases = [
        (
            "fk-EVIL\r\nX-Injected: yes",
            now(),
            7200,
            "control or non-ASCII",
        ),
        ("fk-caf\u{e9}", now(), 7200, "control or non-ASCII"),
        ("fk-future", now() + ten_years_ms, 7200, "in the future"),
        ("fk-forever", now(), 100 * 365 * 24 * 3600, "out of range"),
    ];
    for (token, sent, expire, why) in cases {
        plant(&directory, &slot, token, sent, expire);
        assert_eq!(slot.read(now()), None, "{token:?} was served");
        let warning = slot.take_warning().unwrap();
        assert!(
            warning.contains(why) && warning.contains("ignored"),
            "{warning}"
        );
        assert!(!warning.contains("fk-"), "no token in {warning}");
    }
    plant(&directory, &slot, "fk-fine", now(), 7200);
    assert_eq!(slot.read(now()).unwrap().token, "fk-fine");
}

#[test]
fn a_truncated_file_reads_as_empty_and_is_grown_by_the_next_writer() {
    let directory = Directory::new("truncated");
    let slot = directory.slot("app");
    lock(&slot).publish("tok-1", now(), 60, 0);
    file_of(&directory).set_len(0).unwrap();
    assert_eq!(slot.generation(), UNREADABLE);
    assert_eq!(slot.read(now()), None, "no signal, no token");
    file_of(&directory).set_len(100).unwrap(); // shorter than a record
    assert_eq!(slot.read(now()), None);
    assert!(lock(&slot).publish("tok-2", now(), 60, 0));
    assert_eq!(slot.read(now()).unwrap().token, "tok-2");
    assert_eq!(
        std::fs::metadata(directory.token_file()).unwrap().len(),
        FILE_SIZE as u64
    );
}

#[test]
fn unsafe_directories_and_files_are_refused() {
    let directory = Directory::new("unsafe");
    std::fs::set_permissions(&directory.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        SharedCacheDirectory::open(directory.path()),
        "writable by others (mode 0777)",
    );
    std::fs::set_permissions(&directory.0, std::fs::Permissions::from_mode(0o700)).unwrap();

    let link = directory.0.with_extension("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&directory.0, &link).unwrap();
    refused(
        SharedCacheDirectory::open(link.to_str().unwrap()),
        "is a symbolic link",
    );
    std::fs::remove_file(&link).unwrap();

    let opened = SharedCacheDirectory::open(directory.path()).unwrap();
    drop(opened.slot("http://gw:1", "app").unwrap());
    let file = directory.token_file();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        opened.slot("http://gw:1", "app"),
        "is open to others (mode 0644)",
    );

    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
    refused(opened.slot("http://gw:1", "app"), "is a symbolic link");
    std::fs::remove_file(&file).unwrap();

    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        drop(opened.slot("http://gw:1", "app").unwrap());
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        refused(
            opened.slot("http://gw:1", "app"),
            "belongs to another user (uid 65534)",
        );
    } else {
        not_run(
            "the other-owner case of the shared cache",
            "it needs root; CI runs as root",
        );
    }
    refused(SharedCacheDirectory::open(""), "is empty");
    let plain_file = directory.0.join("plain");
    std::fs::write(&plain_file, b"x").unwrap();
    refused(
        SharedCacheDirectory::open(plain_file.to_str().unwrap()),
        "is not a directory",
    );
}

#[test]
fn an_ancestor_others_can_write_to_is_refused_unless_sticky() {
    let parent = Directory::new("ancestor");
    let inner = parent.0.join("a/b/cache");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&inner)
        .unwrap();
    let open_a = parent.0.join("a");
    std::fs::set_permissions(&open_a, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        SharedCacheDirectory::open(inner.to_str().unwrap()),
        &format!(
            "is inside {}, which others can write to (mode 0777)",
            open_a.display()
        ),
    );
    // A sticky directory (like /tmp) lets nobody rename what is not theirs.
    std::fs::set_permissions(&open_a, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(SharedCacheDirectory::open(inner.to_str().unwrap()).is_ok());
    std::fs::set_permissions(&open_a, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_file_is_opened_in_the_directory_that_was_checked() {
    let parent = Directory::new("swap");
    let checked = parent.0.join("cache");
    let opened = SharedCacheDirectory::open(checked.to_str().unwrap()).unwrap();
    // The path now names another directory (a swap between the builder's
    // check and the build).
    let moved = parent.0.join("cache-moved");
    std::fs::rename(&checked, &moved).unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&checked)
        .unwrap();
    drop(opened.slot("http://gw:1", "app").unwrap().unwrap());
    assert_eq!(
        std::fs::read_dir(&checked).unwrap().count(),
        0,
        "not redirected"
    );
    assert_eq!(std::fs::read_dir(&moved).unwrap().count(), 1);
}

#[test]
fn two_spellings_of_one_directory_share_one_slot() {
    let directory = Directory::new("spellings");
    std::fs::create_dir(directory.0.join("sub")).unwrap();
    let plain = directory.slot("app");
    let detour = format!("{}/sub/../", directory.path());
    let link = directory.0.with_extension("alias");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&directory.0, &link).unwrap();
    let through_parent_link = format!("{}/.", link.display());
    for spelling in [detour, through_parent_link] {
        let other = open_slot(&spelling, "app");
        assert!(Arc::ptr_eq(&plain, &other), "{spelling}");
    }
    std::fs::remove_file(&link).unwrap();
}

/// Runs `child` in a forked process that reports one byte through a pipe
/// and then waits to be killed; returns its pid and the byte.
fn in_child(child: impl FnOnce() -> u8) -> (libc::pid_t, u8) {
    let mut pipe = [0; 2];
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child only locks, writes to the pipe and sleeps.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let byte = child();
        unsafe { libc::write(pipe[1], [byte].as_ptr().cast(), 1) };
        std::thread::sleep(Duration::from_secs(30));
        unsafe { libc::_exit(0) };
    }
    let mut byte = [0u8];
    assert_eq!(
        unsafe { libc::read(pipe[0], byte.as_mut_ptr().cast(), 1) },
        1
    );
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
    (pid, byte[0])
}

fn kill(pid: libc::pid_t) {
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

#[test]
fn the_lock_excludes_other_processes_and_dies_with_its_holder() {
    let directory = Directory::new("lock");
    let slot = directory.slot("app");
    let (child, held) = in_child(|| {
        let lock = slot.lock(Instant::now() + Duration::from_secs(60));
        std::mem::forget(lock);
        1
    });
    assert_eq!(held, 1, "the child took the lock");
    assert!(slot.try_lock().is_none(), "held by the child");
    // Closing another descriptor of the file drops nothing (a POSIX record
    // lock would be dropped for the whole process).
    drop(std::fs::File::open(directory.token_file()).unwrap());
    assert!(slot.try_lock().is_none(), "still held by the child");
    // Its lease runs 60 s: this waiter gives up after half of its 100 ms.
    let started = Instant::now();
    let refused = slot
        .lock(Instant::now() + Duration::from_millis(100))
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        refused.0.contains(&format!("locked by process {child}")),
        "{}",
        refused.0
    );
    // The holder dies (as with kill -9): the kernel drops its lock.
    kill(child);
    assert!(slot.lock(Instant::now() + Duration::from_secs(5)).is_ok());
}

#[test]
fn a_forked_child_does_not_share_its_parents_lock() {
    let directory = Directory::new("fork");
    let slot = directory.slot("app");
    let held = slot.try_lock().unwrap();
    let (child, took) = in_child(|| u8::from(slot.try_lock().is_some()));
    assert_eq!(took, 0, "the child got a lock its parent holds");
    kill(child);
    drop(held);
    let (child, took) = in_child(|| u8::from(slot.try_lock().is_some()));
    assert_eq!(took, 1, "free once the parent let go");
    kill(child);
}

#[test]
fn a_waiter_gives_up_when_the_holders_lease_ends() {
    let directory = Directory::new("lease");
    let slot = directory.slot("app");
    let (child, _) = in_child(|| {
        // A fetch due to end in 200 ms, whose holder then stops.
        std::mem::forget(slot.lock(Instant::now() + Duration::from_millis(200)));
        1
    });
    let started = Instant::now();
    let refused = slot
        .lock(Instant::now() + Duration::from_secs(20))
        .err()
        .unwrap();
    let waited = started.elapsed();
    kill(child);
    assert!(
        waited < Duration::from_secs(5),
        "waited {waited:?}, not the lease"
    );
    assert!(refused.0.contains("ran past its deadline"), "{}", refused.0);
}

#[test]
fn processes_creating_the_directory_at_once_all_succeed() {
    let parent = Directory::new("race");
    let path = parent.0.join("cache");
    let path = path.to_str().unwrap().to_string();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || SharedCacheDirectory::open(&path).map(|_| ()))
        })
        .collect();
    for thread in threads {
        assert!(thread.join().unwrap().is_ok());
    }
}

/// Writes `(value, drawn_at)` into the timestamp slot of epoch 0.
fn plant_timestamp(directory: &Directory, value: i64, drawn_at: i64) {
    let mut slot = value.to_le_bytes().to_vec();
    slot.extend_from_slice(&drawn_at.to_le_bytes());
    file_of(directory)
        .write_at(&slot, (TIMESTAMPS + 8) as u64)
        .unwrap();
}

#[test]
fn timestamps_drawn_from_the_file_rise_above_every_siblings() {
    let directory = Directory::new("timestamps");
    let slot = directory.slot("app");
    // A sibling that drew a timestamp 500 ms ahead (a burst): the next one
    // here is above it, not the wall clock.
    let ahead = now() + 500;
    plant_timestamp(&directory, ahead, now());
    assert!(slot.next_timestamp_ms(TimestampUse::ApiCall) > ahead);
    let drawn: Vec<i64> = (0..100)
        .map(|_| slot.next_timestamp_ms(TimestampUse::ApiCall))
        .collect();
    assert!(drawn.windows(2).all(|w| w[0] < w[1]), "{drawn:?}");
    // The wall clock was stepped back by 5 s: the fleet's sequence starts
    // again from it instead of staying in the future.
    let before_the_step = now() + 5_000;
    plant_timestamp(&directory, before_the_step, before_the_step);
    assert!(slot.next_timestamp_ms(TimestampUse::ApiCall) < before_the_step);
    // A value hours ahead (a liar) is not followed either.
    let far = now() + 7_200_000;
    plant_timestamp(&directory, far, now());
    assert!(slot.next_timestamp_ms(TimestampUse::ApiCall) < far);
}

#[test]
fn a_sibling_stopped_while_drawing_costs_the_fleet_one_short_wait_and_no_repeat() {
    let directory = Directory::new("stalled");
    let slot = directory.slot("app");
    let first = slot.next_timestamp_ms(TimestampUse::ApiCall);
    // A sibling takes the epoch's lock byte, reads the slots, and stops
    // there (as SIGSTOP would leave it) until told to go on.
    let (mut held, mut go) = ([0; 2], [0; 2]);
    assert_eq!(unsafe { libc::pipe(held.as_mut_ptr()) }, 0);
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    // SAFETY: the child locks, reads, waits on a pipe, writes, and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let sibling = directory.slot("app");
        let _ = sibling.own_description();
        let epoch = sibling.read_timestamps().unwrap().epoch;
        assert!(
            sibling
                .lock_byte(lock::epoch_byte(epoch), libc::F_WRLCK)
                .unwrap()
        );
        let area = sibling.read_timestamps().unwrap();
        let own = crate::time::timestamp::next_request_timestamp_ms();
        unsafe { libc::write(held[1], [1u8].as_ptr().cast(), 1) };
        let mut byte = [0u8];
        unsafe { libc::read(go[0], byte.as_mut_ptr().cast(), 1) };
        // Resumed: it finishes its draw as it would have.
        let late = sibling.draw_in(&area, epoch, own, false);
        unsafe { libc::write(held[1], late.to_le_bytes().as_ptr().cast(), 8) };
        unsafe { libc::_exit(0) };
    }
    let mut byte = [0u8];
    assert_eq!(
        unsafe { libc::read(held[0], byte.as_mut_ptr().cast(), 1) },
        1
    );
    let started = Instant::now();
    let mut drawn: Vec<i64> = (0..1000)
        .map(|_| slot.next_timestamp_ms(TimestampUse::ApiCall))
        .collect();
    let took = started.elapsed();
    // With a wait per call (50 ms each, before), 1000 draws took a minute.
    assert!(took < Duration::from_secs(1), "{took:?}");
    unsafe { libc::write(go[1], [1u8].as_ptr().cast(), 1) };
    let mut late = [0u8; 8];
    assert_eq!(
        unsafe { libc::read(held[0], late.as_mut_ptr().cast(), 8) },
        8
    );
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    let late = i64::from_le_bytes(late);
    drawn.extend((0..100).map(|_| slot.next_timestamp_ms(TimestampUse::ApiCall)));
    assert!(drawn.iter().all(|&v| v > first));
    assert!(
        drawn.windows(2).all(|w| w[0] < w[1]),
        "increasing, so never repeated"
    );
    assert!(
        !drawn.contains(&late),
        "the stopped sibling's value {late} was drawn here too"
    );
    for fd in held.into_iter().chain(go) {
        unsafe { libc::close(fd) };
    }
}

#[test]
fn a_full_file_system_makes_the_file_unavailable_not_an_error() {
    let Some(mount) = SmallTmpfs::mount("unavailable") else {
        return;
    };
    let cache = mount.0.join("cache");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&cache)
        .unwrap();
    mount.fill();
    let directory = SharedCacheDirectory::open(cache.to_str().unwrap()).unwrap();
    let Unavailable(why) = directory.slot("http://gw:1", "app").unwrap().unwrap_err();
    assert!(why.contains("No space left on device"), "{why}");
    assert!(why.contains(cache.to_str().unwrap()), "{why}");
}

/// A 64 KiB tmpfs, for full-disk tests (root only), unmounted when dropped.
pub(crate) struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    pub(crate) fn mount(name: &str) -> Option<SmallTmpfs> {
        let path = std::env::temp_dir().join(format!("enos-tmpfs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(&path)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_dir(&path);
            not_run(
                "the full-disk unit test",
                "mounting a tmpfs needs root; CI runs as root",
            );
            return None;
        }
        Some(SmallTmpfs(path))
    }

    /// Fills it up.
    pub(crate) fn fill(&self) {
        let mut file = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0x55u8; 4096];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(Path::new(&self.0));
    }
}

#[test]
fn a_shared_token_debug_shows_a_hint_only() {
    let directory = Directory::new("debug");
    let slot = directory.slot("app");
    lock(&slot).publish("tok-secret-value-123", now(), 60, 0);
    let shown = format!("{:?}", slot.read(now()).unwrap());
    assert!(
        !shown.contains("secret-value") && shown.contains("tok-…(20 bytes)"),
        "{shown}"
    );
}

/// Fails under `ENOS_REQUIRE_ALL=1` (CI); otherwise says what was not run,
/// also in `$ENOS_NOT_RUN_FILE` (repeated at the end of `tests/run.sh`).
fn not_run(check: &str, why: &str) {
    if std::env::var("ENOS_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{check} did not run ({why}), and ENOS_REQUIRE_ALL=1");
    }
    eprintln!("NOT RUN: {check} ({why})");
    if let Ok(file) = std::env::var("ENOS_NOT_RUN_FILE") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
        {
            let _ = file.write_all(format!("{check} ({why})\n").as_bytes()); // one append
        }
    }
}
