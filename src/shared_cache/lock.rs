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
//!
//! Request timestamps are drawn from epochs (see
//! [`SharedSlot::next_timestamp_ms`]): each has a lock byte and a slot of
//! the file, and a sibling stopped while drawing only costs the first
//! drawer after it a 2 ms wait.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::record::{self, SharedToken};
use super::{LEASE, SharedSlot, TIMESTAMPS, UNREADABLE, allocate, monotonic_ns};
use crate::time::timestamp::{MAX_AHEAD_MS, TimestampUse, wall_clock_ms};

/// The byte locked while fetching.
const FETCH_BYTE: i64 = 0;
/// The first of the bytes locked while drawing a timestamp, one per epoch
/// slot.
const TIMESTAMP_BYTES: i64 = 1;
/// Epochs (and their slots) the fleet's timestamps rotate through.
pub(super) const EPOCH_SLOTS: usize = 16;
/// A fleet's sequence this far ahead of the wall clock is not believed.
const MAX_FLEET_AHEAD_MS: i64 = 3_600_000;
/// How long a timestamp draw waits for another thread of this process
/// drawing before it falls back to the process's own sequence.
const TIMESTAMP_PATIENCE: Duration = Duration::from_millis(50);
/// A sibling holding the epoch's lock byte this long (it is held for two
/// system calls) is stopped or descheduled: the fleet moves on without it.
const TIMESTAMP_HOLD_LIMIT: Duration = Duration::from_millis(2);

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
    pub(super) fn lock_byte(&self, byte: i64, kind: libc::c_int) -> std::io::Result<bool> {
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
    /// hour ahead, is not followed). Falls back to the process's own
    /// sequence only when the file cannot be used at all.
    ///
    /// A draw holds the lock byte of the current epoch for one `pread` and
    /// one `pwrite`. A sibling stopped (or descheduled) in between would
    /// hold up the fleet: after [`TIMESTAMP_HOLD_LIMIT`] the next drawer
    /// moves the fleet to a new epoch, with a lock byte and a slot of its
    /// own, starting above every value the stopped one could still write.
    /// An epoch whose lock byte is held is never reused, so the stopped
    /// sibling's late write lands in its own slot, below the others: no
    /// value is ever drawn twice, and after the first drawer's short wait
    /// nobody waits for it.
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
        let drawn = self.draw(own);
        self.timestamp_holder.store(0, Ordering::Release);
        match drawn {
            Some(drawn) => {
                usage.at_least(drawn);
                drawn
            }
            None => own,
        }
    }

    /// One draw from the file (see [`SharedSlot::next_timestamp_ms`]); `None`
    /// when the file cannot be locked or read.
    fn draw(&self, own: i64) -> Option<i64> {
        let mut epoch = self.epoch_hint.load(Ordering::Relaxed);
        let mut busy_since: Option<Instant> = None;
        for _ in 0..10_000 {
            match self.lock_byte(epoch_byte(epoch), libc::F_WRLCK).ok()? {
                true => {
                    let area = self.read_timestamps()?;
                    if area.epoch != epoch {
                        let _ = self.lock_byte(epoch_byte(epoch), libc::F_UNLCK);
                        epoch = area.epoch;
                        busy_since = None;
                        continue;
                    }
                    let drawn = self.draw_in(&area, epoch, own, false);
                    let _ = self.lock_byte(epoch_byte(epoch), libc::F_UNLCK);
                    self.epoch_hint.store(epoch, Ordering::Relaxed);
                    return Some(drawn);
                }
                false => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < TIMESTAMP_HOLD_LIMIT {
                        std::thread::yield_now();
                        continue;
                    }
                    match self.move_on_from(epoch, own)? {
                        Ok(drawn) => return Some(drawn),
                        Err(current) => {
                            epoch = current;
                            busy_since = None;
                        }
                    }
                }
            }
        }
        None
    }

    /// The holder of `epoch`'s lock byte kept it too long: takes the next
    /// epoch whose lock byte is free and draws in it. `Err(epoch)`: another
    /// drawer moved the fleet on first (to that epoch).
    pub(super) fn move_on_from(&self, epoch: u64, own: i64) -> Option<Result<i64, u64>> {
        for next in epoch.wrapping_add(1)..epoch.wrapping_add(EPOCH_SLOTS as u64) {
            if !self.lock_byte(epoch_byte(next), libc::F_WRLCK).ok()? {
                continue; // a stopped holder's epoch: never reused while held
            }
            let outcome = match self.read_timestamps() {
                Some(area) if area.epoch == epoch => {
                    let drawn = self.draw_in(&area, next, own, true);
                    self.epoch_hint.store(next, Ordering::Relaxed);
                    Some(Ok(drawn))
                }
                Some(area) => Some(Err(area.epoch)),
                None => None,
            };
            let _ = self.lock_byte(epoch_byte(next), libc::F_UNLCK);
            return outcome;
        }
        None
    }

    /// Draws in `epoch` (its lock byte held) and writes the value to the
    /// epoch's slot (and, `moving` to a new epoch, the epoch too): above
    /// every slot's value; moving on, also above the wall clock, which
    /// bounds what the stalled holder of the old epoch can still write.
    pub(super) fn draw_in(&self, area: &TimestampArea, epoch: u64, own: i64, moving: bool) -> i64 {
        let wall = wall_clock_ms();
        let mut last = i64::MIN;
        let mut latest_wall = wall;
        for &(value, drawn_at) in &area.slots {
            // A slot written before the wall clock was put back by more than
            // a second, or claiming a value an hour ahead, is not followed.
            let stale = drawn_at > wall.saturating_add(MAX_AHEAD_MS)
                || value > wall.saturating_add(MAX_FLEET_AHEAD_MS);
            if !stale {
                last = last.max(value);
                latest_wall = latest_wall.max(drawn_at);
            }
        }
        let mut drawn = own.max(last.saturating_add(1));
        if moving {
            drawn = drawn
                .max(last.saturating_add(2))
                .max(wall.saturating_add(1));
        }
        let index = (epoch % EPOCH_SLOTS as u64) as usize;
        let mut slot = [0u8; 16];
        slot[..8].copy_from_slice(&drawn.to_le_bytes());
        slot[8..].copy_from_slice(&latest_wall.to_le_bytes());
        let _ = self.write_at((TIMESTAMPS + 8 + 16 * index) as u64, &slot);
        if moving {
            let _ = self.write_at(TIMESTAMPS as u64, &epoch.to_le_bytes());
        }
        drawn
    }

    /// The epoch and every slot, in one `pread`.
    pub(super) fn read_timestamps(&self) -> Option<TimestampArea> {
        let mut bytes = [0u8; 8 + 16 * EPOCH_SLOTS];
        if self.read_at(TIMESTAMPS as u64, &mut bytes) != bytes.len() {
            return None;
        }
        let number = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Some(TimestampArea {
            epoch: number(0) as u64,
            slots: std::array::from_fn(|i| (number(8 + 16 * i), number(16 + 16 * i))),
        })
    }
}

/// The fleet's timestamps as read from the file.
pub(super) struct TimestampArea {
    pub(super) epoch: u64,
    /// Per epoch slot: the last value drawn and the wall clock then.
    slots: [(i64, i64); EPOCH_SLOTS],
}

/// The lock byte of `epoch`.
pub(super) fn epoch_byte(epoch: u64) -> i64 {
    TIMESTAMP_BYTES + (epoch % EPOCH_SLOTS as u64) as i64
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
