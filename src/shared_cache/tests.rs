//! The shared file on its own: what is refused, what is ignored, the
//! seqlock, and the lock across real processes.

use std::os::unix::fs::PermissionsExt;

use std::time::{Duration, Instant};

use super::*;
use crate::error::ErrorKind;

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
        SharedCacheDirectory::open(self.path())
            .unwrap()
            .slot("http://gw:1", app_key)
            .unwrap()
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

fn refused(result: Result<impl std::fmt::Debug, Error>, part: &str) {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    assert!(error.message().contains(part), "{error}");
}

#[test]
fn a_token_written_by_one_is_read_by_all_and_the_generation_moves() {
    let directory = Directory::new("roundtrip");
    let slot = directory.slot("app");
    assert_eq!(slot.read(), None, "a new file holds no token");
    let before = slot.generation();
    slot.lock(Instant::now())
        .unwrap()
        .publish("tok-1", 1_000, 7200, 0);
    let after = slot.generation();
    assert!(after > before && after % 2 == 0);
    let read = slot.read().unwrap();
    assert_eq!(
        (read.token.as_str(), read.sent_wall_ms, read.expire_s),
        ("tok-1", 1_000, 7200)
    );
    assert_eq!(read.generation, after);
    assert!(!read.invalidated);

    let lock = slot.try_lock().unwrap();
    assert!(!lock.invalidate("another-token"));
    assert!(lock.invalidate("tok-1"));
    drop(lock);
    assert!(slot.read().unwrap().invalidated);
    let metadata = std::fs::metadata(directory.token_file()).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
}

#[test]
fn two_app_keys_in_one_directory_never_share() {
    let directory = Directory::new("two-apps");
    let (a, b) = (directory.slot("app-a"), directory.slot("app-b"));
    a.lock(Instant::now()).unwrap().publish("tok-a", 1, 60, 0);
    assert_eq!(b.read(), None);
    assert_eq!(std::fs::read_dir(&directory.0).unwrap().count(), 2);
}

#[test]
fn corrupt_torn_or_foreign_content_is_ignored_and_rewritten() {
    let directory = Directory::new("corrupt");
    let slot = directory.slot("app");
    slot.lock(Instant::now())
        .unwrap()
        .publish("tok-1", 1, 60, 0);
    // A flipped byte in the token: the checksum no longer matches.
    slot.byte(2).store(b'X', Ordering::Relaxed);
    assert_eq!(slot.read(), None);
    // A writer that died mid-write leaves an odd generation.
    let lock = slot.try_lock().unwrap();
    lock.publish("tok-2", 1, 60, 0);
    slot.word(GENERATION).fetch_add(1, Ordering::SeqCst);
    assert_eq!(slot.read(), None, "never a torn token");
    lock.publish("tok-3", 1, 60, 0);
    assert_eq!(
        slot.read().unwrap().token,
        "tok-3",
        "the next writer repairs it"
    );
    // An impossible length.
    slot.word(LENGTH).store(1 << 40, Ordering::SeqCst);
    assert_eq!(slot.read(), None);
    drop(lock);
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
        let c_path = CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; as root, give the file to "nobody".
        assert_eq!(unsafe { libc::chown(c_path.as_ptr(), 65534, 65534) }, 0);
        refused(
            opened.slot("http://gw:1", "app"),
            "belongs to another user (uid 65534)",
        );
    } else {
        eprintln!("NOTE: the other-owner case needs root (CI runs as root)");
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
fn the_lock_excludes_other_processes_and_dies_with_its_holder() {
    let directory = Directory::new("lock");
    let slot = directory.slot("app");
    let mut pipe = [0; 2];
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child only locks, signals through the pipe and sleeps.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let lock = slot.try_lock();
        unsafe { libc::write(pipe[1], [u8::from(lock.is_some())].as_ptr().cast(), 1) };
        std::thread::sleep(Duration::from_secs(30));
        drop(lock);
        unsafe { libc::_exit(0) };
    }
    let mut held = [0u8];
    assert_eq!(
        unsafe { libc::read(pipe[0], held.as_mut_ptr().cast(), 1) },
        1
    );
    assert_eq!(held[0], 1, "the child took the lock");
    assert!(slot.try_lock().is_none(), "held by the child");
    let error = slot
        .lock(Instant::now() + Duration::from_millis(50))
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    // The holder dies (as with kill -9): the kernel drops its lock.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
    assert!(slot.lock(Instant::now() + Duration::from_secs(5)).is_ok());
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

#[test]
fn a_shared_token_debug_shows_a_hint_only() {
    let directory = Directory::new("debug");
    let slot = directory.slot("app");
    slot.lock(Instant::now())
        .unwrap()
        .publish("tok-secret-value-123", 1, 60, 0);
    let shown = format!("{:?}", slot.read().unwrap());
    assert!(
        !shown.contains("secret-value") && shown.contains("tok-…(20 bytes)"),
        "{shown}"
    );
}
