//! The fleet's lock on a shared token file, and the writes only its holder
//! makes (a seqlock: odd generation while writing).

use std::os::fd::AsRawFd;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::{
    CHECKSUM, EXPIRE_S, GENERATION, INVALIDATED, KEY_CHECK, LENGTH, MAGIC, PAUSE_UNTIL_WALL_MS,
    SENT_WALL_MS, SharedSlot, checksum,
};
use crate::error::{Error, ErrorKind};
use crate::response::MAX_TOKEN_BYTES;

impl SharedSlot {
    /// Takes the fleet's lock for this file, waiting at most until `deadline`.
    pub(crate) fn lock(&self, deadline: Instant) -> Result<FleetLock<'_>, Error> {
        let me = u64::from(crate::fork::process_id());
        loop {
            let holder = self.holder.load(Ordering::Acquire);
            let free_here = holder == 0 || holder != me;
            if free_here
                && self
                    .holder
                    .compare_exchange(holder, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                if self.record_lock(libc::F_WRLCK) {
                    return Ok(FleetLock { slot: self });
                }
                self.holder.store(0, Ordering::Release);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the shared cache {} stayed locked by another fetch until the deadline",
                        self.path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The lock if it is free now.
    pub(crate) fn try_lock(&self) -> Option<FleetLock<'_>> {
        self.lock(Instant::now()).ok()
    }

    /// A non-blocking POSIX record lock (or unlock) of the whole file.
    fn record_lock(&self, kind: libc::c_int) -> bool {
        // SAFETY: a zeroed flock is valid; the fields are set below.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: a valid descriptor and lock description.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLK, &lock) == 0 }
    }
}

/// The fleet's lock on a shared file: only its holder writes the file.
pub(crate) struct FleetLock<'a> {
    slot: &'a SharedSlot,
}

impl FleetLock<'_> {
    /// Writes a token (seqlock: odd generation while writing).
    pub(crate) fn publish(
        &self,
        token: &str,
        sent_wall_ms: i64,
        expire_s: i64,
        pause_until_wall_ms: i64,
    ) {
        self.write(
            token.as_bytes(),
            sent_wall_ms,
            expire_s,
            0,
            pause_until_wall_ms,
        );
    }

    /// Marks the file's token as rejected by the gateway, if it is `token`.
    pub(crate) fn invalidate(&self, token: &str) -> bool {
        match self.slot.read() {
            Some(current) if current.token == token && !current.invalidated => {
                self.write(
                    token.as_bytes(),
                    current.sent_wall_ms,
                    current.expire_s,
                    INVALIDATED,
                    0,
                );
                true
            }
            _ => false,
        }
    }

    fn write(&self, token: &[u8], sent_wall_ms: i64, expire_s: i64, flags: u64, pause_until: i64) {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let slot = self.slot;
        let generation = slot.word(GENERATION);
        let start = generation.load(Ordering::Relaxed) | 1; // odd: writing
        generation.store(start, Ordering::Relaxed);
        fence(Ordering::Release);
        let store = |offset, value: u64| slot.word(offset).store(value, Ordering::Relaxed);
        let fields = [
            sent_wall_ms as u64,
            expire_s as u64,
            token.len() as u64 | flags,
            pause_until as u64,
        ];
        store(0, MAGIC);
        store(KEY_CHECK, slot.key_check);
        for (index, byte) in token.iter().enumerate() {
            slot.byte(index).store(*byte, Ordering::Relaxed);
        }
        store(SENT_WALL_MS, fields[0]);
        store(EXPIRE_S, fields[1]);
        store(LENGTH, fields[2]);
        store(PAUSE_UNTIL_WALL_MS, fields[3]);
        store(CHECKSUM, checksum(slot.key_check, &fields, token));
        generation.store(start + 1, Ordering::Release); // even again, and new
    }
}

impl Drop for FleetLock<'_> {
    fn drop(&mut self) {
        self.slot.record_lock(libc::F_UNLCK);
        self.slot.holder.store(0, Ordering::Release);
    }
}
