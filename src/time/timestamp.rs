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
//! Token requests (Get, Refresh) have sequences of their own. Most follow
//! the wall clock too: a process started right after another one of the
//! same app key (a script running `enos-token token` in a loop) then never
//! sends a value the other sent, which a value drawn from the past could be
//! (whatever the width of the draw, about one run in 2δ, for δ ms between
//! starts). Only where many hosts act at the same instant, with no counter
//! in common, is the value spread: the Get that renews a token an API call
//! found refused (a sibling host's Refresh retired it, and every host learns
//! it from its next call, a few milliseconds apart), and the retry of a
//! token request answered 1001. Those draw a random moment of the last
//! [`TOKEN_REQUEST_SPREAD_MS`] that none of the family's last wall-clock
//! values took; some two of eight hosts renewing at once collide in about
//! 3% of renewals (then one retries). A timestamp up to a second old is no different to the
//! gateway from a request that took that long to arrive, or a clock that is
//! that far behind (the doctor names clocks five seconds off). API-call
//! timestamps stay on the wall clock: a signature also covers the token and
//! the query.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock going back by more than this restarts the sequence.
pub(crate) const MAX_AHEAD_MS: i64 = 1000;

/// Spread token-request timestamps are drawn from this many milliseconds
/// before the wall clock.
pub(crate) const TOKEN_REQUEST_SPREAD_MS: i64 = 1000;

/// The wall clock as UNIX milliseconds (0 before 1970, which no real clock is).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One sequence, shared with forked children: the last value handed out and
/// the latest wall-clock reading it saw (each sequence its own, so that one
/// noticing a clock put back does not hide it from the others).
struct Line {
    last: AtomicI64,
    latest_wall: AtomicI64,
}

impl Line {
    const fn new() -> Line {
        Line {
            last: AtomicI64::new(0),
            latest_wall: AtomicI64::new(0),
        }
    }
}

/// Wall-clock token-request values remembered, so that a spread one never
/// repeats them.
const RECENT: usize = 16;

/// The sequences: API calls, token requests on the wall clock, and spread
/// token requests (with the last wall-clock ones, which they avoid).
struct Sequences {
    api_call: Line,
    token_request: Line,
    spread_token_request: Line,
    recent: [AtomicI64; RECENT],
    next_recent: AtomicU64,
}

fn sequences() -> &'static Sequences {
    static SEQUENCES: OnceLock<&'static Sequences> = OnceLock::new();
    static PROCESS_LOCAL: Sequences = Sequences {
        api_call: Line::new(),
        token_request: Line::new(),
        spread_token_request: Line::new(),
        recent: [const { AtomicI64::new(0) }; RECENT],
        next_recent: AtomicU64::new(0),
    };
    SEQUENCES.get_or_init(|| {
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
            unsafe { &*page.cast::<Sequences>() }
        }
    })
}

/// The value that follows `last` when the wall clock reads `now`, after it
/// read at most `latest_wall` before: `candidate` (`now`, or a moment
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
    next_at(&sequences().api_call, now, now, |_| false)
}

/// A timestamp for a Get or Refresh without a shared cache: the wall clock,
/// or within [`spreading`] a random moment of the last second that none of
/// the last [`RECENT`] wall-clock ones took; greater than every one of its
/// kind this process family used before (see the module's documentation).
pub(crate) fn next_token_request_timestamp_ms() -> i64 {
    let sequences = sequences();
    let now = wall_clock_ms();
    if SPREADING.with(Cell::get) {
        let back = (super::random_fraction() * TOKEN_REQUEST_SPREAD_MS as f64) as i64;
        next_at(&sequences.spread_token_request, now, now - back, |value| {
            sequences
                .recent
                .iter()
                .any(|recent| recent.load(Ordering::Acquire) == value)
        })
    } else {
        let value = next_at(&sequences.token_request, now, now, |_| false);
        let slot = sequences.next_recent.fetch_add(1, Ordering::AcqRel) as usize % RECENT;
        sequences.recent[slot].store(value, Ordering::Release);
        value
    }
}

thread_local! {
    static SPREADING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `body` with this thread's token requests spread over the last second
/// when `spread` (a renewal after a refusal, a retry after 1001).
pub(crate) fn spreading<R>(spread: bool, body: impl FnOnce() -> R) -> R {
    let before = SPREADING.with(|s| s.replace(spread));
    let result = body();
    SPREADING.with(|s| s.set(before));
    result
}

/// What a timestamp is for, which decides the sequence it is drawn from.
/// Values of one use never repeat within a process family; an API call and
/// a token request may share one (their hashes cover different inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampUse {
    /// An API call's `apim-timestamp`: the wall clock.
    ApiCall,
    /// A Get or Refresh: the wall clock, or spread (see [`spreading`]).
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
        let sequences = sequences();
        let lines: &[&Line] = match self {
            TimestampUse::ApiCall => &[&sequences.api_call],
            TimestampUse::TokenRequest => {
                &[&sequences.token_request, &sequences.spread_token_request]
            }
        };
        for line in lines {
            line.last.fetch_max(drawn, Ordering::AcqRel);
        }
    }
}

/// The next value of `line` (see [`following`]), passing over any value
/// `taken` says another sequence used.
fn next_at(line: &Line, now: i64, candidate: i64, taken: impl Fn(i64) -> bool) -> i64 {
    let latest_wall = line.latest_wall.load(Ordering::Acquire);
    let after = |last: i64| {
        let mut value = following(last, latest_wall, now, candidate);
        while taken(value) {
            value = value.saturating_add(1);
        }
        value
    };
    let previous = line
        .last
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(after(last))
        })
        .unwrap_or_else(|last| last);
    if now + MAX_AHEAD_MS < latest_wall {
        line.latest_wall.store(now, Ordering::Release);
    } else {
        line.latest_wall.fetch_max(now, Ordering::AcqRel);
    }
    after(previous)
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
            "a spread candidate, after the clock was corrected"
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
    fn spread_token_requests_never_repeat_a_wall_clock_one_and_end_with_their_scope() {
        let wall: Vec<i64> = (0..RECENT)
            .map(|_| next_token_request_timestamp_ms())
            .collect();
        assert!(wall.windows(2).all(|w| w[0] < w[1]));
        let after = wall_clock_ms();
        assert!(
            wall.iter()
                .all(|&v| (after - 60_000..=after + 30_000).contains(&v))
        );
        let spread: Vec<i64> = spreading(true, || {
            (0..300)
                .map(|_| next_token_request_timestamp_ms())
                .collect()
        });
        assert!(spread.windows(2).all(|w| w[0] < w[1]));
        for value in &spread {
            assert!(!wall.contains(value), "{value} was a wall-clock value too");
        }
        // Passing over taken values: a candidate on a taken value moves on.
        let line = Line::new();
        let now = 1_700_000_000_000;
        assert_eq!(
            next_at(&line, now, now - 10, |v| v == now - 10 || v == now - 9),
            now - 8
        );
        // The scope ended: the wall clock again.
        let next = next_token_request_timestamp_ms();
        assert!(next > *wall.last().unwrap() && next >= wall_clock_ms() - 1000);
    }

    #[test]
    fn spread_token_request_timestamps_cover_the_last_second_and_increase() {
        // Eight "hosts" renewing in the same millisecond: each draws its
        // first spread timestamp (greater than nothing before).
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
        let values: Vec<i64> = spreading(true, || {
            (0..3000)
                .map(|_| next_token_request_timestamp_ms())
                .collect()
        });
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
