//! The shared token cache: one token per gateway and app key for all the
//! processes of one host that are given the same directory.
//!
//! Each (gateway URL, app key) has a file of its own in the directory, named
//! by a hash of the two, holding the token, when its request was sent, its
//! lifetime and a "pause until" after a failed refresh: never the secret.
//! The file is read and written with `pread`/`pwrite` only, never mapped: a
//! file that a sibling or a cleanup script truncates, or that a full disk
//! keeps short, reads as empty, and never raises a signal in the host. Its
//! blocks are allocated when it is created (`posix_fallocate`); a directory
//! where that fails (full, read-only, over quota) is not used, and the
//! client works on its own.
//!
//! Every write replaces the whole record (one `pwrite`) under a new
//! generation number; the cached-token path reads just that number (one
//! `pread` of 8 bytes) to see whether a sibling wrote. A torn or damaged
//! record fails its checksum and reads as empty; a whole one is believed
//! only if it passes the checks a gateway answer passes (`record.rs`).
//!
//! A process that is about to fetch takes the file's lock (an
//! open-file-description lock, see `lock.rs`), re-reads the file, and
//! fetches only if no sibling did meanwhile. The directory is opened once and
//! checked through its descriptor, and the file is opened relative to it
//! (`directory.rs`).

mod directory;
mod lock;
mod record;

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use directory::{SharedCacheDirectory, Unavailable};
pub(crate) use lock::{FleetLock, LockRefused};
pub(crate) use record::SharedToken;
use record::{Decoded, GENERATION, RECORD_BYTES};

use crate::fork::ForkSafeMutex;

/// How long a fleet holds back after a failed refresh while its token is
/// still valid; a record's pause is believed up to this far ahead. The
/// managed token's policy (`managed::FAILED_REFRESH_PAUSE`) is this value.
pub(crate) const PAUSE_AFTER_FAILED_REFRESH: std::time::Duration =
    std::time::Duration::from_secs(30);

const MAGIC: u64 = u64::from_le_bytes(*b"ENOSTOK2");
const KEY_CHECK: usize = 16;
/// The lock holder's process id and lease end (`CLOCK_MONOTONIC` ns), after
/// the record.
const LEASE: usize = RECORD_BYTES;
/// The fleet's request timestamps (see `lock.rs`): the current epoch
/// (8 bytes), then per epoch slot the last timestamp drawn and the wall
/// clock when it was drawn (UNIX ms, 8 bytes each).
const TIMESTAMPS: usize = LEASE + 16;
/// Every file is allocated to this size when it is opened.
const FILE_SIZE: usize = TIMESTAMPS + 8 + 16 * lock::EPOCH_SLOTS;
/// What [`SharedSlot::generation`] returns for a file too short to hold a
/// record (truncated): a value no writer uses.
const UNREADABLE: u64 = u64::MAX;
/// The cached path reads the file's generation at most this often (1 ms).
const GENERATION_CHECK_INTERVAL_NS: u64 = 1_000_000;

/// One shared token file, opened by this process.
pub(crate) struct SharedSlot {
    /// The file. After a fork it is re-opened (and put in place with
    /// `dup3`, so the number never changes) before it is locked, since a
    /// lock belongs to an open file description, which a fork shares.
    file: OwnedFd,
    /// The fork generation the file's description was opened in.
    opened_in: ForkSafeMutex<u64>,
    directory: Arc<OwnedFd>,
    name: CString,
    /// `(st_dev, st_ino)`: how the process tells files apart.
    identity: (u64, u64),
    key_check: u64,
    /// The process id of the thread of this process that holds the lock (0:
    /// none). A value inherited from a parent is another process's: free.
    holder: AtomicU64,
    /// The same for drawing a timestamp.
    timestamp_holder: AtomicU64,
    /// The fleet's timestamp epoch as this process last saw it.
    epoch_hint: AtomicU64,
    /// For messages.
    path: PathBuf,
    /// The generation of the last record refused, warned about once.
    refused_generation: AtomicU64,
    /// The generation last read or written by this process, and when the
    /// cached path reads it from the file next (monotonic ns).
    seen_generation: AtomicU64,
    next_generation_check_ns: AtomicU64,
    /// A warning for the next caller to log, outside every lock.
    warning: ForkSafeMutex<Option<String>>,
}

impl std::fmt::Debug for SharedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlot")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SharedSlot {
    /// The file's generation: one `pread` of 8 bytes.
    pub(crate) fn generation(&self) -> u64 {
        let mut bytes = [0u8; 8];
        let generation = match self.read_at(GENERATION as u64, &mut bytes) {
            8 => u64::from_le_bytes(bytes).min(UNREADABLE - 1),
            _ => UNREADABLE,
        };
        self.seen_generation.store(generation, Ordering::Release);
        generation
    }

    /// The cached path's check: the file's generation as read at most
    /// [`GENERATION_CHECK_INTERVAL_NS`] before `now_ns` (monotonic), by this
    /// or another thread of the process, or as this process last wrote it.
    /// A `pread` costs ten cached calls; a sibling's token is seen within
    /// that interval.
    pub(crate) fn generation_at(&self, now_ns: u64) -> u64 {
        let due = self.next_generation_check_ns.load(Ordering::Relaxed);
        let mine = now_ns >= due
            && self
                .next_generation_check_ns
                .compare_exchange(
                    due,
                    now_ns.saturating_add(GENERATION_CHECK_INTERVAL_NS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if mine {
            self.generation()
        } else {
            self.seen_generation.load(Ordering::Acquire)
        }
    }

    /// The token in the file, if a whole and believable one is there when
    /// the wall clock reads `now_wall_ms`. A record that is whole but not
    /// believable is ignored, with a warning for [`SharedSlot::take_warning`].
    pub(crate) fn read(&self, now_wall_ms: i64) -> Option<SharedToken> {
        let mut buffer = vec![0u8; RECORD_BYTES];
        let mut outcome = Decoded::Empty;
        // A torn record is a write in progress: a few more tries.
        for _ in 0..3 {
            let read = self.read_at(0, &mut buffer);
            outcome = record::decode(&buffer[..read], self.key_check, now_wall_ms);
            if outcome != Decoded::Torn {
                break;
            }
            std::thread::yield_now();
        }
        crate::secret::wipe(&mut buffer);
        match outcome {
            Decoded::Token(token) => Some(token),
            Decoded::Empty => None,
            Decoded::Torn => {
                self.warn_once("its record is damaged (checksum mismatch)".into());
                None
            }
            Decoded::Refused(why) => {
                self.warn_once(why);
                None
            }
        }
    }

    fn warn_once(&self, why: String) {
        let generation = self.generation();
        if self.refused_generation.swap(generation, Ordering::Relaxed) != generation {
            *self.warning.lock() = Some(format!(
                "shared cache file {} ignored: {why}; fetching a token instead",
                self.path.display()
            ));
        }
    }

    /// A warning about the file's content, once, for the caller to log.
    pub(crate) fn take_warning(&self) -> Option<String> {
        self.warning.lock().take()
    }

    /// `pread` until `buffer` is full or the file ends; the bytes read.
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buffer.len() {
            // SAFETY: a valid descriptor and the unfilled part of `buffer`.
            let read = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    buffer[done..].as_mut_ptr().cast(),
                    buffer.len() - done,
                    (offset + done as u64) as libc::off_t,
                )
            };
            match read {
                n if n > 0 => done += n as usize,
                0 => break,
                _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        done
    }

    /// `pwrite` all of `bytes` at `offset`.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            // SAFETY: a valid descriptor and the unwritten part of `bytes`.
            let written = unsafe {
                libc::pwrite(
                    self.file.as_raw_fd(),
                    bytes[done..].as_ptr().cast(),
                    bytes.len() - done,
                    (offset + done as u64) as libc::off_t,
                )
            };
            match written {
                n if n > 0 => done += n as usize,
                _ => {
                    let error = std::io::Error::last_os_error();
                    if error.kind() != std::io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes this process's descriptor its own after a fork (a lock is held
    /// by an open file description, which parent and child share), before
    /// anything is locked. Fails if the file was replaced meanwhile.
    fn own_description(&self) -> Result<(), String> {
        let mut opened_in = self.opened_in.lock();
        let now = crate::fork::generation();
        if *opened_in == now {
            return Ok(());
        }
        let reopened = open_file_at(&self.directory, &self.name, 0)
            .map_err(|e| format!("cannot be opened again after fork(): {e}"))?;
        if identity_of(reopened.as_raw_fd()).ok() != Some(self.identity) {
            return Err("was replaced since it was first opened".into());
        }
        // SAFETY: both descriptors are valid; dup3 replaces ours atomically,
        // so a concurrent pread reads one file or the other, both this one.
        let done =
            unsafe { libc::dup3(reopened.as_raw_fd(), self.file.as_raw_fd(), libc::O_CLOEXEC) };
        if done < 0 {
            return Err(format!(
                "cannot be opened again after fork(): {}",
                std::io::Error::last_os_error()
            ));
        }
        *opened_in = now;
        Ok(())
    }
}

/// `openat(directory, name)` for reading and writing, never through a
/// symbolic link, with `extra` flags (`O_CREAT`).
fn open_file_at(
    directory: &OwnedFd,
    name: &CString,
    extra: libc::c_int,
) -> std::io::Result<OwnedFd> {
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let fd: RawFd = unsafe {
        libc::openat(
            directory.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | extra,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we own from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat` of a descriptor.
fn stat_of(fd: RawFd) -> std::io::Result<libc::stat> {
    // SAFETY: a zeroed stat is valid; fstat fills it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a valid stat.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat)
}

fn identity_of(fd: RawFd) -> std::io::Result<(u64, u64)> {
    let stat = stat_of(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Gives the file all of its [`FILE_SIZE`] bytes, if it has fewer.
fn allocate(fd: RawFd) -> std::io::Result<()> {
    if stat_of(fd)?.st_size >= FILE_SIZE as libc::off_t {
        return Ok(());
    }
    // SAFETY: a valid descriptor; returns an error number, not -1.
    match unsafe { libc::posix_fallocate(fd, 0, FILE_SIZE as libc::off_t) } {
        0 => Ok(()),
        error => Err(std::io::Error::from_raw_os_error(error)),
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock for every process of
/// the host, for lock leases.
fn monotonic_ns() -> u64 {
    // SAFETY: a zeroed timespec is valid; clock_gettime fills it.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

#[cfg(test)]
mod tests;
