//! Request timestamps that never repeat within the process.
//!
//! The gateway rejects a request whose `encryption` it has already seen (status
//! 1001), and two requests of one application in the same millisecond would
//! share one. So every request takes its timestamp from one process-wide
//! counter: the wall clock in milliseconds, or the last value plus one when the
//! clock has not moved (or has stepped back).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static LAST_TIMESTAMP_MS: AtomicI64 = AtomicI64::new(0);

/// The wall clock as UNIX milliseconds (0 before 1970, which no real clock is).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A timestamp for a new request: strictly greater than every one this
/// process handed out before.
pub fn next_request_timestamp_ms() -> i64 {
    let now = wall_clock_ms();
    let previous = LAST_TIMESTAMP_MS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or_else(|last| last);
    now.max(previous.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn strictly_increasing_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..2000)
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
}
