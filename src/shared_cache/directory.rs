//! The shared cache's directory: opened once, checked through its
//! descriptor (owner, mode, and every ancestor, as OpenSSH's StrictModes
//! checks them), and the token files opened relative to that descriptor, so
//! that renaming or swapping the path afterwards cannot redirect them.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};

use super::{SharedSlot, UNREADABLE, allocate, identity_of, open_file_at, stat_of};
use crate::error::Error;
use crate::fork::ForkSafeMutex;

/// `(st_dev, st_ino)`: what tells two files apart, however they are named.
type FileIdentity = (u64, u64);

/// Why a directory or file cannot be used right now although the setting
/// is sound: a full, read-only or failing file system. The client then
/// works without sharing (and logs this once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unavailable(pub(crate) String);

/// A checked directory for shared token files.
#[derive(Clone)]
pub(crate) struct SharedCacheDirectory {
    path: String,
    opened: Result<Arc<OwnedFd>, Unavailable>,
}

impl std::fmt::Debug for SharedCacheDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCacheDirectory")
            .field("path", &self.path)
            .field("usable", &self.opened.is_ok())
            .finish()
    }
}

/// I/O failures that say "not now", not "wrong setting".
fn is_unavailable(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EROFS
                | libc::EIO
                | libc::ENOMEM
                | libc::EMFILE
                | libc::ENFILE
        )
    )
}

impl SharedCacheDirectory {
    /// Opens and checks `path` (creating it, mode 0700, if it does not exist).
    pub(crate) fn open(path: &str) -> Result<Self, Error> {
        if path.is_empty() {
            return Err(Error::invalid_argument("shared cache directory is empty"));
        }
        let refuse =
            |why: String| Error::invalid_argument(format!("shared cache directory {path} {why}"));
        let unavailable = |why: String| {
            Ok(SharedCacheDirectory {
                path: path.to_string(),
                opened: Err(Unavailable(format!("shared cache directory {path} {why}"))),
            })
        };
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            // It exists (or a sibling created it first): checked below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if is_unavailable(&e) => return unavailable(format!("cannot be created: {e}")),
            Err(e) => return Err(refuse(format!("cannot be created: {e}"))),
        }
        let c_path = CString::new(path).map_err(|_| refuse("has a NUL byte in its name".into()))?;
        // SAFETY: a NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(match e.raw_os_error() {
                _ if is_link => refuse("is a symbolic link".into()),
                Some(libc::ENOTDIR) => refuse("is not a directory".into()),
                _ if is_unavailable(&e) => return unavailable(format!("cannot be opened: {e}")),
                _ => refuse(format!("cannot be opened: {e}")),
            });
        }
        // SAFETY: a descriptor we own from here on.
        let directory = unsafe { OwnedFd::from_raw_fd(fd) };
        let stat = stat_of(fd).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        if stat.st_uid != me {
            return Err(refuse(format!(
                "belongs to another user (uid {})",
                stat.st_uid
            )));
        }
        if stat.st_mode & 0o022 != 0 {
            return Err(refuse(format!(
                "is writable by others (mode {:04o}); use mode 0700",
                stat.st_mode & 0o7777
            )));
        }
        check_ancestors(&directory, path, me).map_err(refuse)?;
        Ok(SharedCacheDirectory {
            path: path.to_string(),
            opened: Ok(Arc::new(directory)),
        })
    }

    /// The shared slot for `gateway_url` and `app_key`, opened once per
    /// process and file (clients of one process share it, however they
    /// spelled the directory). `Ok(Err(_))`: the file cannot be used now.
    pub(crate) fn slot(
        &self,
        gateway_url: &str,
        app_key: &str,
    ) -> Result<Result<Arc<SharedSlot>, Unavailable>, Error> {
        static SLOTS: ForkSafeMutex<Option<HashMap<FileIdentity, Weak<SharedSlot>>>> =
            ForkSafeMutex::new(None);
        let directory = match &self.opened {
            Ok(directory) => directory,
            Err(unavailable) => return Ok(Err(unavailable.clone())),
        };
        let digest = Sha256::digest(format!("{gateway_url}\0{app_key}").as_bytes());
        let name = format!("{}.token", hex::encode(&digest[..20]));
        let key_check = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let path = Path::new(&self.path).join(&name);
        let shown = path.display();
        let refuse =
            |why: String| Error::invalid_argument(format!("shared cache file {shown} {why}"));
        let unavailable =
            |why: String| Ok(Err(Unavailable(format!("shared cache file {shown} {why}"))));
        let name = CString::new(name).expect("hex has no NUL");
        let file = match open_file_at(directory, &name, libc::O_CREAT) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refuse("is a symbolic link".into()));
            }
            Err(e) if is_unavailable(&e) => return unavailable(format!("cannot be created: {e}")),
            Err(e) => return Err(refuse(format!("cannot be opened: {e}"))),
        };
        check_file(file.as_raw_fd()).map_err(refuse)?;
        let identity =
            identity_of(file.as_raw_fd()).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        let opened = SLOTS
            .lock()
            .as_ref()
            .and_then(|slots| slots.get(&identity)?.upgrade());
        if let Some(slot) = opened {
            return Ok(Ok(slot)); // `file` is closed: the slot has its own
        }
        // Its blocks, now: a file system that cannot give them would
        // otherwise fail a later write.
        if let Err(e) = allocate(file.as_raw_fd()) {
            return unavailable(format!("cannot be allocated: {e}"));
        }
        let slot = Arc::new(SharedSlot {
            file,
            opened_in: ForkSafeMutex::new(crate::fork::generation()),
            directory: directory.clone(),
            name,
            identity,
            key_check,
            holder: AtomicU64::new(0),
            timestamp_holder: AtomicU64::new(0),
            epoch_hint: AtomicU64::new(0),
            path,
            refused_generation: AtomicU64::new(u64::MAX),
            seen_generation: AtomicU64::new(UNREADABLE),
            next_generation_check_ns: AtomicU64::new(0),
            warning: ForkSafeMutex::new(None),
        });
        let mut slots = SLOTS.lock();
        let slots = slots.get_or_insert_with(HashMap::new);
        if let Some(slot) = slots.get(&identity).and_then(Weak::upgrade) {
            return Ok(Ok(slot)); // another thread opened it meanwhile
        }
        slots.retain(|_, slot| slot.strong_count() > 0);
        slots.insert(identity, Arc::downgrade(&slot));
        Ok(Ok(slot))
    }
}

/// A token file must be a regular file of ours, with no other link, that
/// nobody else can read or write.
fn check_file(fd: RawFd) -> Result<(), String> {
    let stat = stat_of(fd).map_err(|e| format!("cannot be read: {e}"))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("is not a regular file".into());
    }
    // SAFETY: geteuid cannot fail.
    if stat.st_uid != unsafe { libc::geteuid() } {
        return Err(format!("belongs to another user (uid {})", stat.st_uid));
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(format!(
            "is open to others (mode {:04o}); it holds a token: use mode 0600",
            stat.st_mode & 0o7777
        ));
    }
    if stat.st_nlink != 1 {
        return Err("has other hard links".into());
    }
    Ok(())
}

/// Refuses a directory with an ancestor that someone else could change:
/// one owned by a user other than root or us, or writable by group or
/// others without the sticky bit (as `/tmp` has). The ancestors are walked
/// through `..` from the opened directory, so they are the real ones.
fn check_ancestors(directory: &OwnedFd, path: &str, me: u32) -> Result<(), String> {
    let named = ancestor_names(directory, path);
    let mut current = stat_of(directory.as_raw_fd()).map_err(|e| format!("cannot be read: {e}"))?;
    let mut current_fd: Option<OwnedFd> = None;
    for depth in 1.. {
        let from = current_fd.as_ref().unwrap_or(directory).as_raw_fd();
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        let parent = unsafe {
            libc::openat(
                from,
                c"..".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if parent < 0 {
            return Err(format!(
                "cannot have its parent directories checked: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a descriptor we own from here on.
        let parent = unsafe { OwnedFd::from_raw_fd(parent) };
        let stat = stat_of(parent.as_raw_fd()).map_err(|e| format!("cannot be read: {e}"))?;
        if (stat.st_dev, stat.st_ino) == (current.st_dev, current.st_ino) {
            return Ok(()); // the root is its own parent
        }
        let name = || {
            named
                .get(depth)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| format!("{depth} levels up"))
        };
        let sticky = stat.st_mode & libc::S_ISVTX != 0;
        if stat.st_uid != 0 && stat.st_uid != me {
            return Err(format!(
                "is inside {}, which belongs to another user (uid {}) who could replace it; use a directory of your own",
                name(),
                stat.st_uid
            ));
        }
        if stat.st_mode & 0o022 != 0 && !sticky {
            return Err(format!(
                "is inside {}, which others can write to (mode {:04o}) without the sticky bit, so they could replace it; use a directory of your own",
                name(),
                stat.st_mode & 0o7777
            ));
        }
        current = stat;
        current_fd = Some(parent);
    }
    unreachable!("the loop returns")
}

/// The directory's path and its ancestors', for messages: the kernel's name
/// for the descriptor when there is one, else the path as given.
fn ancestor_names(directory: &OwnedFd, path: &str) -> Vec<PathBuf> {
    let real = std::fs::read_link(format!("/proc/self/fd/{}", directory.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
        .unwrap_or_else(|_| PathBuf::from(path));
    real.ancestors().map(Path::to_path_buf).collect()
}
