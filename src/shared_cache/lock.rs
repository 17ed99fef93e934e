//! The fleet's lock on a shared token file, the writes only its holder
//! makes, and the fleet's request timestamps.
//!
//! The lock is an open-file-description lock (`F_OFD_SETLK`) on the file's
//! first byte: the kernel drops it when its holder dies, closing another
//! descriptor of the same file never drops it, and a forked child, which
//! shares its parent's description, opens its own before it locks. Threads
//! of one process take turns through an in-process claim first.
//!
//! The holder writes its process id and a lease end (its fetch deadline)
//! beside the record. A waiter waits at most until the lease ends or half
//! of its own remaining time has passed, whichever comes first, then
//! fetches on its own: a stopped or hung holder costs the fleet one extra
//! fetch, never a timeout.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::record::{self, SharedToken};
use super::{LAST_TIMESTAMP, LEASE, SharedSlot, UNREADABLE, allocate, monotonic_ns};
use crate::time::timestamp::{MAX_AHEAD_MS, TimestampUse, wall_clock_ms};

/// The byte locked while fetching.
const FETCH_BYTE: i64 = 0;
/// The byte locked while drawing a timestamp.
const TIMESTAMP_BYTE: i64 = 1;
/// A fleet's sequence this far ahead of the wall clock is not believed.
const MAX_FLEET_AHEAD_MS: i64 = 3_600_000;
/// How long a timestamp draw waits for the fleet's timestamp lock (held for
/// two system calls) before it falls back to the process's own sequence.
const TIMESTAMP_PATIENCE: Duration = Duration::from_millis(50);

/// Why this process did not get the fleet's lock: it then fetches on its
/// own and does not write the file.
#[derive(Debug)]
pub(crate) struct LockRefused(pub(crate) String);

impl SharedSlot {
    /// Takes the fleet's lock for a fetch that must end by `deadline`,
    /// waiting at most until the holder's lease ends or half of the time
    /// left has passed, whichever comes first.
    pub(crate) fn lock(&self, deadline: Instant) -> Result<FleetLock<'_>, LockRefused> {
        let started = Instant::now();
        let patience = started + deadline.saturating_duration_since(started) / 2;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = self.take(deadline)? {
                return Ok(lock);
            }
            let now = Instant::now();
            let (holder, lease_end) = self.lease(now);
            let give_up_at = lease_end.map_or(patience, |end| end.min(patience));
            if now >= give_up_at {
                let who = match holder {
                    0 => "another fetch".to_string(),
                    pid => format!("process {pid}"),
                };
                let why = if lease_end.is_some_and(|end| end <= patience) {
                    "whose fetch ran past its deadline (stopped or hung?)"
                } else {
                    "for half of this call's time"
                };
                return Err(LockRefused(format!(
                    "the shared cache file {} is locked by {who}, {why}; fetching alone",
                    self.path.display()
                )));
            }
            std::thread::sleep(pause.min(give_up_at - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// The lock if it is free now.
    pub(crate) fn try_lock(&self) -> Option<FleetLock<'_>> {
        self.take(Instant::now() + Duration::from_secs(1))
            .ok()
            .flatten()
    }

    /// One attempt: the in-process claim, then the kernel's lock.
    fn take(&self, deadline: Instant) -> Result<Option<FleetLock<'_>>, LockRefused> {
        if !claim(&self.holder) {
            return Ok(None);
        }
        let refuse = |why: String| {
            self.holder.store(0, Ordering::Release);
            LockRefused(format!(
                "the shared cache file {} {why}",
                self.path.display()
            ))
        };
        self.own_description().map_err(refuse)?;
        match self.lock_byte(FETCH_BYTE, libc::F_WRLCK) {
            Ok(true) => {}
            Ok(false) => {
                self.holder.store(0, Ordering::Release);
                return Ok(None);
            }
            Err(e) => return Err(refuse(format!("cannot be locked: {e}"))),
        }
        let lease_end = monotonic_ns().saturating_add(
            deadline
                .saturating_duration_since(Instant::now())
                .as_nanos() as u64,
        );
        let mut lease = [0u8; 16];
        lease[..8].copy_from_slice(&u64::from(crate::fork::process_id()).to_le_bytes());
        lease[8..].copy_from_slice(&lease_end.to_le_bytes());
        let _ = self.write_at(LEASE as u64, &lease); // a lease only shortens waits
        Ok(Some(FleetLock { slot: self }))
    }

    /// The holder's process id (0: unknown) and when its lease ends, on
    /// this process's clock (`None`: no lease written).
    fn lease(&self, now: Instant) -> (u64, Option<Instant>) {
        let mut lease = [0u8; 16];
        if self.read_at(LEASE as u64, &mut lease) != 16 {
            return (0, None);
        }
        let holder = u64::from_le_bytes(lease[..8].try_into().expect("8 bytes"));
        let end_ns = u64::from_le_bytes(lease[8..].try_into().expect("8 bytes"));
        if end_ns == 0 {
            return (holder, None);
        }
        let left = Duration::from_nanos(end_ns.saturating_sub(monotonic_ns()));
        (holder, Some(now + left.min(Duration::from_secs(24 * 3600))))
    }

    /// A non-blocking open-file-description lock (or unlock) of one byte:
    /// `Ok(false)` if another description holds it.
    fn lock_byte(&self, byte: i64, kind: libc::c_int) -> std::io::Result<bool> {
        // SAFETY: a zeroed flock is valid (l_pid must be 0 for OFD locks).
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = byte as libc::off_t;
        lock.l_len = 1;
        // SAFETY: a valid descriptor and lock description.
        if unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES | libc::EINTR) => Ok(false),
            _ => Err(error),
        }
    }

    /// A request timestamp that no process of the fleet has used: the
    /// process's own sequence for `usage`, raised above the last one any
    /// sibling drew from this file (for either use), as the process's own
    /// sequence does within a process family (a burst runs ahead of the wall
    /// clock; a wall clock stepped back by more than a second, or a value an
    /// hour ahead, starts again from the clock). Falls back to the process's
    /// own sequence when the file cannot be locked within a few milliseconds.
    pub(crate) fn next_timestamp_ms(&self, usage: TimestampUse) -> i64 {
        let own = usage.next();
        if self.own_description().is_err() {
            return own;
        }
        let give_up_at = Instant::now() + TIMESTAMP_PATIENCE;
        while !claim(&self.timestamp_holder) {
            if Instant::now() >= give_up_at {
                return own;
            }
            std::thread::yield_now();
        }
        let mut drawn = own;
        loop {
            match self.lock_byte(TIMESTAMP_BYTE, libc::F_WRLCK) {
                Ok(true) => {
                    let mut last = [0u8; 16];
                    let (last, last_wall) = match self.read_at(LAST_TIMESTAMP as u64, &mut last) {
                        16 => (
                            i64::from_le_bytes(last[..8].try_into().expect("8 bytes")),
                            i64::from_le_bytes(last[8..].try_into().expect("8 bytes")),
                        ),
                        _ => (0, 0),
                    };
                    let wall = wall_clock_ms();
                    let stepped_back = wall.saturating_add(MAX_AHEAD_MS) < last_wall;
                    let implausible = last > wall.saturating_add(MAX_FLEET_AHEAD_MS);
                    if !stepped_back && !implausible {
                        drawn = own.max(last.saturating_add(1));
                    }
                    let mut record = [0u8; 16];
                    record[..8].copy_from_slice(&drawn.to_le_bytes());
                    let latest_wall = if stepped_back {
                        wall
                    } else {
                        wall.max(last_wall)
                    };
                    record[8..].copy_from_slice(&latest_wall.to_le_bytes());
                    let _ = self.write_at(LAST_TIMESTAMP as u64, &record);
                    let _ = self.lock_byte(TIMESTAMP_BYTE, libc::F_UNLCK);
                    break;
                }
                Ok(false) if Instant::now() < give_up_at => {
                    std::thread::sleep(Duration::from_micros(100));
                }
                _ => break,
            }
        }
        self.timestamp_holder.store(0, Ordering::Release);
        usage.at_least(drawn);
        drawn
    }
}

/// Claims an in-process turn (`holder` holds the claiming process's id): a
/// value inherited from a parent process is free.
fn claim(holder: &AtomicU64) -> bool {
    let me = u64::from(crate::fork::process_id());
    let current = holder.load(Ordering::Acquire);
    current != me
        && holder
            .compare_exchange(current, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// The fleet's lock on a shared file: only its holder writes the record.
pub(crate) struct FleetLock<'a> {
    slot: &'a SharedSlot,
}

impl FleetLock<'_> {
    /// The slot's file as it is now (the holder's view: no one else writes).
    pub(crate) fn read(&self, now_wall_ms: i64) -> Option<SharedToken> {
        self.slot.read(now_wall_ms)
    }

    /// The file's generation now.
    pub(crate) fn generation(&self) -> u64 {
        self.slot.generation()
    }

    /// Writes a token; false if the file system refused (then the fleet
    /// goes on without it).
    pub(crate) fn publish(
        &self,
        token: &str,
        sent_wall_ms: i64,
        expire_s: i64,
        pause_until_wall_ms: i64,
    ) -> bool {
        self.write(&SharedToken {
            generation: 0,
            token: token.to_string(),
            sent_wall_ms,
            expire_s,
            invalidated: false,
            pause_until_wall_ms,
        })
    }

    /// Marks the file's token as rejected by the gateway, if it is `token`.
    pub(crate) fn invalidate(&self, token: &str, now_wall_ms: i64) -> bool {
        match self.slot.read(now_wall_ms) {
            Some(current) if current.token == token && !current.invalidated => {
                self.write(&SharedToken {
                    generation: 0,
                    token: current.token.clone(),
                    sent_wall_ms: current.sent_wall_ms,
                    expire_s: current.expire_s,
                    invalidated: true,
                    pause_until_wall_ms: 0,
                })
            }
            _ => false,
        }
    }

    /// Replaces the record in one `pwrite`, under a new generation (above
    /// the last one, and above any used before the file was re-created).
    fn write(&self, token: &SharedToken) -> bool {
        let slot = self.slot;
        if token.token.is_empty() || token.token.len() > crate::response::MAX_TOKEN_BYTES {
            return false;
        }
        // A file truncated by someone is grown (and its blocks allocated) again.
        if allocate(slot.file.as_raw_fd()).is_err() {
            return false;
        }
        let previous = match slot.generation() {
            UNREADABLE => 0,
            generation => generation,
        };
        let wall_ns = (wall_clock_ms().max(0) as u64).saturating_mul(1_000_000);
        let generation = previous.saturating_add(1).max(wall_ns).min(UNREADABLE - 1);
        let mut bytes = record::encode(slot.key_check, generation, token);
        let written = slot.write_at(0, &bytes).is_ok();
        crate::secret::wipe(&mut bytes);
        if written {
            slot.seen_generation.store(generation, Ordering::Release);
        }
        written
    }
}

impl Drop for FleetLock<'_> {
    fn drop(&mut self) {
        let _ = self.slot.write_at(LEASE as u64, &[0u8; 16]);
        let _ = self.slot.lock_byte(FETCH_BYTE, libc::F_UNLCK);
        self.slot.holder.store(0, Ordering::Release);
    }
}
