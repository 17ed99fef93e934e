//! Request timestamps that never repeat within a process and the processes
//! forked from it, and never run far ahead of the wall clock.
//!
//! The gateway rejects a request whose `encryption` it has already seen (status
//! 1001), and two requests of one application in the same millisecond would
//! share one. So every request takes its timestamp from one counter: the wall
//! clock in milliseconds, or the last value plus one when the clock has not
//! moved. The counter lives in a small shared memory mapping, so that a parent
//! and the children it forks after its first request keep drawing from the
//! same sequence instead of each repeating the other's values.
//!
//! When the wall clock goes back by more than [`MAX_AHEAD_MS`] (it ran ahead
//! and was corrected), the counter starts again from the wall clock rather
//! than carrying every later request into the future. Only a burst of more
//! than a thousand requests per second runs ahead of the clock, by the
//! excess: the alternatives would be to repeat a timestamp, which the
//! gateway refuses, or to make callers wait.
//!
//! Token requests (Get, Refresh) have a counter of their own, whose values
//! are drawn at random from the last [`TOKEN_REQUEST_SPREAD_MS`] of the wall
//! clock (still strictly increasing). Processes on other hosts share no
//! counter, and they fetch at the same instant: when one refreshes the token
//! of their app key, every other one learns it from its next API call, a
//! few milliseconds later, and Gets. With wall-clock timestamps most of
//! those Gets would share a millisecond with another and be refused (1001);
//! drawn from a second, some two of eight collide in about 3% of renewals.
//! A timestamp up to a second old is no different to the gateway from a
//! request that took that long to arrive, or a clock that is that far
//! behind (the doctor names clocks five seconds off). API-call timestamps
//! stay on the wall clock: a signature also covers the token and the query.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock going back by more than this restarts the sequence.
pub(crate) const MAX_AHEAD_MS: i64 = 1000;

/// Token-request timestamps are drawn from this many milliseconds before the
/// wall clock.
pub(crate) const TOKEN_REQUEST_SPREAD_MS: i64 = 1000;

/// The wall clock as UNIX milliseconds (0 before 1970, which no real clock is).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The sequences' state, shared with forked children: the last timestamp
/// handed out (to API calls, and to token requests), and the latest
/// wall-clock reading seen.
struct Sequence {
    last: AtomicI64,
    latest_wall: AtomicI64,
    last_token_request: AtomicI64,
}

fn sequence() -> &'static Sequence {
    static SEQUENCE: OnceLock<&'static Sequence> = OnceLock::new();
    static PROCESS_LOCAL: Sequence = Sequence {
        last: AtomicI64::new(0),
        latest_wall: AtomicI64::new(0),
        last_token_request: AtomicI64::new(0),
    };
    SEQUENCE.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping of one page, never unmapped;
        // mmap returns page-aligned zeroed memory, valid atomics.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            &PROCESS_LOCAL
        } else {
            // SAFETY: see above; the mapping lives as long as the process.
            unsafe { &*page.cast::<Sequence>() }
        }
    })
}

/// The timestamp that follows `last` when the wall clock reads `now`, after
/// it read at most `latest_wall` before: `candidate` (`now`, or a moment
/// shortly before it) unless that would not be greater than `last`.
fn following(last: i64, latest_wall: i64, now: i64, candidate: i64) -> i64 {
    if now.saturating_add(MAX_AHEAD_MS) < latest_wall {
        candidate // the clock was put back: do not stay in the future
    } else {
        last.saturating_add(1).max(candidate)
    }
}

/// A timestamp for a new request: greater than every one this process (and
/// the parent it was forked from, and its siblings) handed out before,
/// unless the wall clock was stepped back.
pub fn next_request_timestamp_ms() -> i64 {
    let now = wall_clock_ms();
    next_at(&sequence().last, now, now)
}

/// A timestamp for a Get or Refresh without a shared cache: a random moment
/// of the last second, greater than every one this process family used for
/// a token request before (see the module's documentation).
pub(crate) fn next_token_request_timestamp_ms() -> i64 {
    let now = wall_clock_ms();
    let back = (super::random_fraction() * TOKEN_REQUEST_SPREAD_MS as f64) as i64;
    next_at(&sequence().last_token_request, now, now - back)
}

/// What a timestamp is for, which decides the sequence it is drawn from.
/// Values of one use never repeat within a process family; an API call and
/// a token request may share one (their hashes cover different inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampUse {
    /// An API call's `apim-timestamp`: the wall clock.
    ApiCall,
    /// A Get or Refresh: a random moment of the last second.
    TokenRequest,
}

impl TimestampUse {
    /// The next value of this use's sequence.
    pub(crate) fn next(self) -> i64 {
        match self {
            TimestampUse::ApiCall => next_request_timestamp_ms(),
            TimestampUse::TokenRequest => next_token_request_timestamp_ms(),
        }
    }

    /// Makes every later timestamp of this use in this process family
    /// greater than `drawn` (drawn for it from a fleet's shared sequence).
    pub(crate) fn at_least(self, drawn: i64) {
        let sequence = sequence();
        let last = match self {
            TimestampUse::ApiCall => &sequence.last,
            TimestampUse::TokenRequest => &sequence.last_token_request,
        };
        last.fetch_max(drawn, Ordering::AcqRel);
    }
}

fn next_at(last: &AtomicI64, now: i64, candidate: i64) -> i64 {
    let sequence = sequence();
    let latest_wall = sequence.latest_wall.load(Ordering::Acquire);
    let previous = last
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(following(last, latest_wall, now, candidate))
        })
        .unwrap_or_else(|last| last);
    if now + MAX_AHEAD_MS < latest_wall {
        sequence.latest_wall.store(now, Ordering::Release);
    } else {
        sequence.latest_wall.fetch_max(now, Ordering::AcqRel);
    }
    following(previous, latest_wall, now, candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    // Tests of this binary share the sequences: a burst here runs them ahead
    // of the clock by its size in milliseconds, which other tests (the
    // shared file's clock-step test allows 5 s) must not see past.
    #[test]
    fn strictly_increasing_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..250)
                        .map(|_| next_request_timestamp_ms())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = HashSet::new();
        for handle in handles {
            let values = handle.join().unwrap();
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "per thread increasing"
            );
            for v in values {
                assert!(all.insert(v), "timestamp {v} handed out twice");
            }
        }
        let now = wall_clock_ms();
        assert!(
            all.iter().all(|&v| v > now - 60_000),
            "close to the wall clock"
        );
    }

    #[test]
    fn a_clock_stepped_back_does_not_keep_timestamps_in_the_future() {
        let now = 1_700_000_000_000;
        assert_eq!(following(now - 5, now, now, now), now, "behind: the clock");
        assert_eq!(
            following(now, now, now, now),
            now + 1,
            "same millisecond: plus one"
        );
        assert_eq!(
            following(now + 2999, now, now, now),
            now + 3000,
            "a burst runs on"
        );
        // The clock ran a day fast, then was corrected.
        let day = 86_400_000;
        assert_eq!(following(now + day, now + day, now, now), now);
        assert_eq!(
            following(now + day, now + day, now, now - 700),
            now - 700,
            "a token request's candidate, after the clock was corrected"
        );
        assert_eq!(
            following(now + 5, now + 1000, now, now),
            now + 6,
            "within 1 s: still increasing"
        );
        assert_eq!(
            following(now - 900, now, now, now - 300),
            now - 300,
            "a candidate before the clock is taken when it follows the last"
        );
        assert_eq!(
            following(now - 200, now, now, now - 300),
            now - 199,
            "never at or before the last"
        );
    }

    #[test]
    fn token_request_timestamps_spread_over_the_last_second_and_increase() {
        // Eight "hosts" fetching in the same millisecond: each draws its
        // first token-request timestamp (greater than nothing before).
        let now = 1_700_000_000_000;
        let draws: Vec<i64> = (0..2000)
            .map(|_| {
                let back = (crate::time::random_fraction() * TOKEN_REQUEST_SPREAD_MS as f64) as i64;
                following(0, now, now, now - back)
            })
            .collect();
        assert!(draws.iter().all(|t| (now - 999..=now).contains(t)));
        let distinct: HashSet<i64> = draws.iter().copied().collect();
        assert!(
            distinct.len() > 800,
            "2000 draws cover most of 1000 ms: {}",
            distinct.len()
        );
        // In this process the sequence still increases, near the clock
        // (other tests' fleet draws may have run it ahead by seconds).
        let values: Vec<i64> = (0..3000)
            .map(|_| next_token_request_timestamp_ms())
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        let after = wall_clock_ms();
        assert!(
            values
                .iter()
                .all(|&v| v > after - 60_000 && v <= after + 30_000)
        );
    }

    #[test]
    fn a_value_drawn_from_a_fleet_is_never_drawn_again_here() {
        // (Other tests draw from the same sequences meanwhile: only "later
        // values are greater" holds whatever they do.)
        for usage in [TimestampUse::TokenRequest, TimestampUse::ApiCall] {
            let drawn = wall_clock_ms() + 1_000;
            usage.at_least(drawn);
            assert!(usage.next() > drawn, "{usage:?}");
        }
    }

    #[test]
    fn parent_and_forked_child_share_one_sequence() {
        let before = next_request_timestamp_ms();
        let mut pipe = [0; 2];
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: the child only computes and writes to the pipe, then exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let values: Vec<i64> = (0..250)
                .map(|_| next_request_timestamp_ms())
                .chain((0..250).map(|_| next_token_request_timestamp_ms()))
                .collect();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            unsafe { libc::write(pipe[1], bytes.as_ptr().cast(), bytes.len()) };
            unsafe { libc::_exit(0) };
        }
        let mine: Vec<i64> = (0..250)
            .map(|_| next_request_timestamp_ms())
            .chain((0..250).map(|_| next_token_request_timestamp_ms()))
            .collect();
        unsafe { libc::close(pipe[1]) };
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            let n = unsafe { libc::read(pipe[0], buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                break;
            }
            bytes.extend_from_slice(&buffer[..n as usize]);
        }
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        let theirs: Vec<i64> = bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(theirs.len(), 500);
        for (usage, range) in [("API call", 0..250), ("token request", 250..500)] {
            let all: HashSet<i64> = mine[range.clone()]
                .iter()
                .chain(&theirs[range])
                .copied()
                .collect();
            assert_eq!(all.len(), 500, "no {usage} value used by both processes");
        }
        assert!(
            mine[..250]
                .iter()
                .chain(&theirs[..250])
                .all(|v| *v > before)
        );
    }
}
