//! Time, in one place: moments on two clocks for the managed token, a clock
//! that tests can drive by hand, and (in [`timestamp`]) the request
//! timestamps the gateway sees.
//!
//! A token counts as expired (or due) when either clock says so: the
//! monotonic clock stops during suspend, the wall clock can be stepped.
//! On Linux both are the kernel's coarse clocks (a few milliseconds of
//! resolution, about 10 ns to read instead of 35-50 ns): token lifetimes and
//! margins are counted in seconds, and this read is on every cached call.

pub(crate) mod http_date;
pub(crate) mod timestamp;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A moment on both clocks: "now", or a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moment {
    pub(crate) monotonic_ns: u64,
    pub(crate) wall_ms: i64,
}

impl Moment {
    /// This moment moved `duration` ahead on both clocks.
    pub(crate) fn later_by(self, duration: Duration) -> Moment {
        Moment {
            monotonic_ns: self
                .monotonic_ns
                .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)),
            wall_ms: self
                .wall_ms
                .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// True once either clock of `now` has reached this moment.
    pub(crate) fn has_passed(&self, now: Moment) -> bool {
        now.monotonic_ns >= self.monotonic_ns || now.wall_ms >= self.wall_ms
    }

    /// The earlier of the two, clock by clock.
    pub(crate) fn earliest(self, other: Moment) -> Moment {
        Moment {
            monotonic_ns: self.monotonic_ns.min(other.monotonic_ns),
            wall_ms: self.wall_ms.min(other.wall_ms),
        }
    }

    /// How long from `now` until this moment has passed, on the clock that
    /// gets there first (zero if it has).
    pub(crate) fn remaining_from(&self, now: Moment) -> Duration {
        let monotonic = Duration::from_nanos(self.monotonic_ns.saturating_sub(now.monotonic_ns));
        let wall = Duration::from_millis(self.wall_ms.saturating_sub(now.wall_ms).max(0) as u64);
        monotonic.min(wall)
    }
}

/// Where the managed token reads the time, sleeps, and learns of forks.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// The system's clocks; `fork()` as the process sees it.
    #[default]
    System,
    /// A clock that moves only when a test moves it (or something sleeps on
    /// it), with forks that a test pretends.
    #[cfg(test)]
    Manual(std::sync::Arc<ManualClock>),
}

impl Clock {
    pub(crate) fn now(&self) -> Moment {
        match self {
            Clock::System => Moment {
                monotonic_ns: system::monotonic_ns(),
                wall_ms: system::wall_ms(),
            },
            #[cfg(test)]
            Clock::Manual(clock) => clock.now(),
        }
    }

    /// Waits `duration` (a manual clock just moves ahead by it).
    pub(crate) fn sleep(&self, duration: Duration) {
        match self {
            Clock::System => std::thread::sleep(duration),
            #[cfg(test)]
            Clock::Manual(clock) => clock.advance(duration),
        }
    }

    /// The process's fork generation (see [`crate::fork`]).
    pub(crate) fn fork_generation(&self) -> u64 {
        match self {
            Clock::System => crate::fork::generation(),
            #[cfg(test)]
            Clock::Manual(clock) => clock.forks.load(Ordering::SeqCst),
        }
    }

    /// A random number in `[0, 1)`: [`random_fraction`], or a manual clock's
    /// reproducible sequence.
    pub(crate) fn random_fraction(&self) -> f64 {
        match self {
            Clock::System => random_fraction(),
            #[cfg(test)]
            Clock::Manual(clock) => clock.random_fraction(),
        }
    }

    /// The real instant by which `deadline` will have passed, for the
    /// transport's timeouts.
    pub(crate) fn instant_of(&self, deadline: Moment) -> Instant {
        Instant::now() + deadline.remaining_from(self.now())
    }
}

/// A clock for deterministic tests.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ManualClock {
    monotonic_ns: AtomicU64,
    wall_ms: std::sync::atomic::AtomicI64,
    forks: AtomicU64,
    random_state: AtomicU64,
}

#[cfg(test)]
impl ManualClock {
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(ManualClock {
            monotonic_ns: AtomicU64::new(1_000_000_000_000),
            wall_ms: std::sync::atomic::AtomicI64::new(1_700_000_000_000),
            forks: AtomicU64::new(0),
            random_state: AtomicU64::new(0),
        })
    }

    /// Restarts the clock's random sequence from `seed`.
    pub(crate) fn seed(&self, seed: u64) {
        self.random_state.store(seed, Ordering::SeqCst);
    }

    /// The next number of a reproducible sequence in `[0, 1)` (SplitMix64).
    pub(crate) fn random_fraction(&self) -> f64 {
        let state = self
            .random_state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn now(&self) -> Moment {
        Moment {
            monotonic_ns: self.monotonic_ns.load(Ordering::SeqCst),
            wall_ms: self.wall_ms.load(Ordering::SeqCst),
        }
    }

    /// Moves both clocks ahead.
    pub(crate) fn advance(&self, duration: Duration) {
        self.monotonic_ns
            .fetch_add(duration.as_nanos() as u64, Ordering::SeqCst);
        self.wall_ms
            .fetch_add(duration.as_millis() as i64, Ordering::SeqCst);
    }

    /// Steps the wall clock alone (forward or back), as an administrator or NTP would.
    pub(crate) fn step_wall(&self, milliseconds: i64) {
        self.wall_ms.fetch_add(milliseconds, Ordering::SeqCst);
    }

    /// Makes holders of process-specific state believe they are in a child.
    pub(crate) fn pretend_fork(&self) {
        self.forks.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(target_os = "linux")]
mod system {
    fn read(clock: libc::clockid_t) -> libc::timespec {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a writable timespec.
        unsafe { libc::clock_gettime(clock, &mut time) };
        time
    }

    #[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on some targets
    pub fn monotonic_ns() -> u64 {
        let t = read(libc::CLOCK_MONOTONIC_COARSE);
        (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
    }

    #[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on some targets
    pub fn wall_ms() -> i64 {
        let t = read(libc::CLOCK_REALTIME_COARSE);
        (t.tv_sec as i64).saturating_mul(1000) + t.tv_nsec as i64 / 1_000_000
    }
}

#[cfg(not(target_os = "linux"))]
mod system {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn monotonic_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    pub fn wall_ms() -> i64 {
        timestamp::wall_clock_ms()
    }
}

/// A random number in `[0, 1)`, from the standard library's randomly keyed
/// hasher, mixed with the process id: a child process forked from a parent
/// inherits the hasher's keys and would otherwise draw the parent's numbers.
pub(crate) fn random_fraction() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits, drawn as [`random_fraction`] draws them.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(crate::fork::process_id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_compare_on_either_clock() {
        let now = Moment {
            monotonic_ns: 10_000_000_000,
            wall_ms: 50_000,
        };
        let deadline = now.later_by(Duration::from_secs(5));
        assert!(!deadline.has_passed(now));
        assert_eq!(deadline.remaining_from(now), Duration::from_secs(5));
        let wall_stepped = Moment {
            wall_ms: now.wall_ms + 5_000,
            ..now
        };
        assert!(deadline.has_passed(wall_stepped));
        assert_eq!(deadline.remaining_from(wall_stepped), Duration::ZERO);
        let earlier = now.later_by(Duration::from_secs(1));
        assert_eq!(deadline.earliest(earlier), earlier);
    }

    /// The fraction a forked child draws first, read back through a pipe.
    fn drawn_in_a_child() -> f64 {
        let mut pipe = [0; 2];
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: the child only computes, writes to the pipe and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let bytes = random_fraction().to_le_bytes();
            unsafe { libc::write(pipe[1], bytes.as_ptr().cast(), 8) };
            unsafe { libc::_exit(0) };
        }
        let mut bytes = [0u8; 8];
        let read = unsafe { libc::read(pipe[0], bytes.as_mut_ptr().cast(), 8) };
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            libc::close(pipe[0]);
            libc::close(pipe[1]);
        }
        assert_eq!(read, 8);
        f64::from_le_bytes(bytes)
    }

    #[test]
    fn forked_children_draw_their_own_numbers() {
        let draws: Vec<f64> = (0..3).map(|_| drawn_in_a_child()).collect();
        assert!(draws[0] != draws[1] && draws[1] != draws[2], "{draws:?}");
    }

    #[test]
    fn random_fraction_is_in_range_and_varies() {
        let values: Vec<f64> = (0..100).map(|_| random_fraction()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }
}
