//! The shared token cache: one token per gateway and app key for all the
//! processes of one host that are given the same directory.
//!
//! Each (gateway URL, app key) has a file of its own in the directory, named
//! by a hash of the two, holding the token, when its request was sent, its
//! lifetime and a "pause until" after a failed refresh: never the secret.
//! Every process maps the file (`MAP_SHARED`) and reads it like a seqlock:
//! the `generation` word is odd while a write is in progress and grows by two
//! with every write, so a reader copies the fields between two equal, even
//! readings, and the cached-token path only compares one atomic load with the
//! generation it last saw: no system call.
//!
//! A process that is about to fetch takes the file's lock (a POSIX record
//! lock, which the kernel drops with the process and a forked child does not
//! inherit, plus an in-process claim so that two clients of one process take
//! turns), re-reads the file, and fetches only if no sibling did meanwhile.
//! A writer that dies mid-write leaves an odd generation: readers then see no
//! token, and the next writer, under the lock, writes the whole file again.
//!
//! What is refused: a directory that is a symbolic link, not ours, or
//! writable by group or others; a token file that is a symbolic link, not a
//! regular file, not ours, has other links, or is readable or writable by
//! anyone but us. Content that does not check out (wrong magic, wrong key,
//! bad checksum, impossible length) is ignored and overwritten.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::fork::ForkSafeMutex;
use crate::response::MAX_TOKEN_BYTES;

const MAGIC: u64 = u64::from_le_bytes(*b"ENOSTOK1");
const GENERATION: usize = 8;
const KEY_CHECK: usize = 16;
const SENT_WALL_MS: usize = 24;
const EXPIRE_S: usize = 32;
/// Token length, and [`INVALIDATED`].
const LENGTH: usize = 40;
const CHECKSUM: usize = 48;
const PAUSE_UNTIL_WALL_MS: usize = 56;
const TOKEN: usize = 64;
const FILE_SIZE: usize = 12 * 1024;
const INVALIDATED: u64 = 1 << 63;

/// A validated directory for shared token files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedCacheDirectory(PathBuf);

impl SharedCacheDirectory {
    /// Checks `path` (creating it, mode 0700, if it does not exist).
    pub(crate) fn open(path: &str) -> Result<Self, Error> {
        let refuse = |why: String| {
            Err(Error::invalid_argument(format!(
                "shared cache directory {path} {why}"
            )))
        };
        if path.is_empty() {
            return Err(Error::invalid_argument("shared cache directory is empty"));
        }
        let directory = PathBuf::from(path);
        if std::fs::symlink_metadata(&directory).is_err() {
            match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
                // A sibling process created it first: checked below all the same.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return refuse(format!("cannot be created: {e}"));
                }
                _ => {}
            }
        }
        let metadata = match std::fs::symlink_metadata(&directory) {
            Ok(metadata) => metadata,
            Err(e) => return refuse(format!("cannot be read: {e}")),
        };
        if metadata.file_type().is_symlink() {
            return refuse("is a symbolic link".into());
        }
        if !metadata.is_dir() {
            return refuse("is not a directory".into());
        }
        // SAFETY: geteuid cannot fail.
        if metadata.uid() != unsafe { libc::geteuid() } {
            return refuse(format!("belongs to another user (uid {})", metadata.uid()));
        }
        if metadata.mode() & 0o022 != 0 {
            return refuse(format!(
                "is writable by others (mode {:04o}); use mode 0700",
                metadata.mode() & 0o7777
            ));
        }
        Ok(SharedCacheDirectory(directory))
    }

    /// The shared slot for `gateway_url` and `app_key`, opened once per
    /// process (clients of one process share it).
    pub(crate) fn slot(&self, gateway_url: &str, app_key: &str) -> Result<Arc<SharedSlot>, Error> {
        static SLOTS: ForkSafeMutex<Option<HashMap<PathBuf, Weak<SharedSlot>>>> =
            ForkSafeMutex::new(None);
        let digest = Sha256::digest(format!("{gateway_url}\0{app_key}").as_bytes());
        let file = self.0.join(format!("{}.token", hex::encode(&digest[..20])));
        let key_check = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut slots = SLOTS.lock();
        let slots = slots.get_or_insert_with(HashMap::new);
        if let Some(slot) = slots.get(&file).and_then(Weak::upgrade) {
            return Ok(slot);
        }
        let slot = Arc::new(SharedSlot::open(&file, key_check)?);
        slots.retain(|_, slot| slot.strong_count() > 0);
        slots.insert(file, Arc::downgrade(&slot));
        Ok(slot)
    }
}

/// One shared token file, mapped into this process.
pub(crate) struct SharedSlot {
    file: File,
    map: *mut u8,
    key_check: u64,
    /// The process id of the thread of this process that holds the lock (0:
    /// none). A value inherited from a parent is another process's: free.
    holder: AtomicU64,
    path: PathBuf,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for SharedSlot {}
unsafe impl Sync for SharedSlot {}

impl std::fmt::Debug for SharedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlot")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once.
        unsafe { libc::munmap(self.map.cast(), FILE_SIZE) };
    }
}

/// The token in a shared file.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SharedToken {
    pub(crate) generation: u64,
    pub(crate) token: String,
    pub(crate) sent_wall_ms: i64,
    pub(crate) expire_s: i64,
    pub(crate) invalidated: bool,
    pub(crate) pause_until_wall_ms: i64,
}

impl std::fmt::Debug for SharedToken {
    // Never the token itself: a hint of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedToken")
            .field("generation", &self.generation)
            .field("token", &crate::log::token_hint(&self.token))
            .field("sent_wall_ms", &self.sent_wall_ms)
            .field("expire_s", &self.expire_s)
            .field("invalidated", &self.invalidated)
            .field("pause_until_wall_ms", &self.pause_until_wall_ms)
            .finish()
    }
}

impl SharedSlot {
    fn open(path: &Path, key_check: u64) -> Result<Self, Error> {
        let shown = path.display();
        let refuse =
            |why: String| Error::invalid_argument(format!("shared cache file {shown} {why}"));
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| refuse("has a NUL byte in its name".into()))?;
        // SAFETY: a NUL-terminated path; the flags refuse a symbolic link.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP) => refuse("is a symbolic link".into()),
                _ => refuse(format!("cannot be opened: {e}")),
            });
        }
        // SAFETY: a file descriptor we own from here on.
        let file = unsafe { File::from_raw_fd(fd) };
        let metadata = file
            .metadata()
            .map_err(|e| refuse(format!("cannot be read: {e}")))?;
        if !metadata.is_file() {
            return Err(refuse("is not a regular file".into()));
        }
        // SAFETY: geteuid cannot fail.
        if metadata.uid() != unsafe { libc::geteuid() } {
            return Err(refuse(format!(
                "belongs to another user (uid {})",
                metadata.uid()
            )));
        }
        if metadata.mode() & 0o077 != 0 {
            return Err(refuse(format!(
                "is open to others (mode {:04o}); it holds a token: use mode 0600",
                metadata.mode() & 0o7777
            )));
        }
        if metadata.nlink() != 1 {
            return Err(refuse("has other hard links".into()));
        }
        if metadata.len() < FILE_SIZE as u64 {
            file.set_len(FILE_SIZE as u64)
                .map_err(|e| refuse(format!("cannot be sized: {e}")))?;
        }
        // SAFETY: a shared mapping of FILE_SIZE bytes of a file that has them.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(refuse(format!(
                "cannot be mapped: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(SharedSlot {
            file,
            map: map.cast(),
            key_check,
            holder: AtomicU64::new(0),
            path: path.to_path_buf(),
        })
    }

    pub(super) fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: 8-aligned offsets inside the page-aligned mapping.
        unsafe { &*self.map.add(offset).cast::<AtomicU64>() }
    }

    pub(super) fn byte(&self, index: usize) -> &AtomicU8 {
        // SAFETY: inside the mapping (TOKEN + MAX_TOKEN_BYTES < FILE_SIZE).
        unsafe { &*self.map.add(TOKEN + index).cast::<AtomicU8>() }
    }

    /// The file's generation: one atomic load, the cached path's check.
    pub(crate) fn generation(&self) -> u64 {
        self.word(GENERATION).load(Ordering::Acquire)
    }

    /// The token in the file, if a consistent, valid one is there.
    pub(crate) fn read(&self) -> Option<SharedToken> {
        for _ in 0..100 {
            let before = self.generation();
            if before % 2 == 1 {
                std::thread::yield_now(); // a write in progress (or a writer died)
                continue;
            }
            let copy = self.copy_fields(before);
            fence(Ordering::Acquire);
            if self.word(GENERATION).load(Ordering::Relaxed) == before {
                return copy;
            }
        }
        None
    }

    fn copy_fields(&self, generation: u64) -> Option<SharedToken> {
        let load = |offset| self.word(offset).load(Ordering::Relaxed);
        if load(0) != MAGIC || load(KEY_CHECK) != self.key_check {
            return None;
        }
        let length_and_flags = load(LENGTH);
        let length = (length_and_flags & !INVALIDATED) as usize;
        if length == 0 || length > MAX_TOKEN_BYTES {
            return None;
        }
        let bytes: Vec<u8> = (0..length)
            .map(|i| self.byte(i).load(Ordering::Relaxed))
            .collect();
        let fields = [
            load(SENT_WALL_MS),
            load(EXPIRE_S),
            length_and_flags,
            load(PAUSE_UNTIL_WALL_MS),
        ];
        if load(CHECKSUM) != checksum(self.key_check, &fields, &bytes) {
            return None;
        }
        let token = String::from_utf8(bytes).ok()?;
        Some(SharedToken {
            generation,
            token,
            sent_wall_ms: fields[0] as i64,
            expire_s: fields[1] as i64,
            invalidated: length_and_flags & INVALIDATED != 0,
            pause_until_wall_ms: fields[3] as i64,
        })
    }
}

/// FNV-1a over the fields and the token: catches a torn or foreign file.
pub(super) fn checksum(key_check: u64, fields: &[u64; 4], token: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    key_check.to_le_bytes().into_iter().for_each(&mut eat);
    fields
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .for_each(&mut eat);
    token.iter().copied().for_each(&mut eat);
    hash
}

mod lock;

pub(crate) use lock::FleetLock;

#[cfg(test)]
mod tests;
