//! Rate limits and outages: which answers are sent again, how long to wait
//! first, and the client's retry budget.
//!
//! * **429, any method**: the gateway's limiter refuses before it forwards,
//!   so a refused call was not processed.
//! * **502, 503, 504, and a connection that failed after the request was
//!   written but before a byte of the answer: GET, HEAD, PUT, DELETE and
//!   OPTIONS only**: a POST or PATCH may have been processed.
//! * **A connection that could not be opened** (refused, unreachable, timed
//!   out while connecting): any method, since nothing was sent.
//! * Never a token refusal (that is the renewal), another status, a body
//!   pulled from a callback, or an answer already written to its output.
//!
//! Waits: exponential backoff with full jitter from the base backoff, each
//! at most 5 s; a `Retry-After` (seconds or an HTTP date) replaces it, at
//! most 60 s, plus up to a tenth more so that callers told the same second
//! do not all return in it. A wait that would end after the call's deadline
//! is not taken. The budget is the AWS SDKs' "standard" retry quota: a token
//! bucket of 500 per client; a retry takes 5 (10 after a timeout or a
//! connection failure), a call whose first answer needs no retry puts 1
//! back, and with the bucket empty nothing is retried, so that an outage
//! costs the gateway little more than the calls themselves.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The longest computed wait.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait a `Retry-After` may ask.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The retry budget of a client.
pub(crate) const BUDGET_CAPACITY: u32 = 500;
/// What a retry after an answer takes from the budget.
pub(crate) const RETRY_COST: u32 = 5;
/// What a retry after a timeout or a connection failure takes.
pub(crate) const CONNECTION_RETRY_COST: u32 = 10;

/// Why an attempt may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retryable {
    /// HTTP 429: refused by the rate limiter, not processed.
    RateLimited,
    /// HTTP 502, 503 or 504, of an idempotent request.
    Unavailable(u16),
    /// No answer: the connection failed or timed out.
    NoAnswer,
}

impl Retryable {
    /// What a retry for this reason takes from the budget.
    pub(crate) fn cost(self) -> u32 {
        match self {
            Retryable::NoAnswer => CONNECTION_RETRY_COST,
            _ => RETRY_COST,
        }
    }
}

/// Whether an answer of `status` is retried, for a request that is
/// `idempotent`.
pub(crate) fn status_is_retried(status: u16, idempotent: bool) -> Option<Retryable> {
    match status {
        429 => Some(Retryable::RateLimited),
        502..=504 if idempotent => Some(Retryable::Unavailable(status)),
        _ => None,
    }
}

/// Whether a failed send is retried: a connection that could not be opened
/// (nothing was sent), or, for an idempotent request, one that failed
/// before any byte of the answer.
pub(crate) fn failure_is_retried(
    error: &Error,
    idempotent: bool,
    connect_failed: bool,
) -> Option<Retryable> {
    let transient = matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout);
    (transient && error.http_status() == 0 && (connect_failed || idempotent))
        .then_some(Retryable::NoAnswer)
}

/// The wait before retry number `retry` (1 for the first): a uniformly
/// drawn share (`random`, in `[0, 1)`) of `base` doubled per retry, at most
/// [`MAX_BACKOFF`].
pub(crate) fn backoff(retry: u32, base: Duration, random: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    ceiling.mul_f64(random.clamp(0.0, 1.0))
}

/// The wait a `Retry-After` value asks, at most [`MAX_RETRY_AFTER`], with
/// up to a tenth more (`random` in `[0, 1)`): delta-seconds, or an HTTP date
/// compared with `now_wall_ms`. `None` for a value that is neither.
pub(crate) fn retry_after(value: &str, now_wall_ms: i64, random: f64) -> Option<Duration> {
    let value = value.trim();
    let asked = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(3600))
    } else {
        let at_ms = crate::time::http_date::parse(value)?.checked_mul(1000)?;
        Duration::from_millis(u64::try_from(at_ms.saturating_sub(now_wall_ms)).unwrap_or(0))
    };
    let asked = asked.min(MAX_RETRY_AFTER);
    Some(asked + asked.mul_f64(random.clamp(0.0, 1.0) / 10.0))
}

/// A client's retry budget: a token bucket.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    tokens: AtomicU32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            tokens: AtomicU32::new(BUDGET_CAPACITY),
        }
    }
}

impl RetryBudget {
    /// Takes `cost` for a retry; false (and nothing taken) when the bucket
    /// holds less.
    pub(crate) fn try_take(&self, cost: u32) -> bool {
        self.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tokens| {
                tokens.checked_sub(cost)
            })
            .is_ok()
    }

    /// A call whose first answer needed no retry: one token back.
    pub(crate) fn put_back_one(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tokens| {
                (tokens < BUDGET_CAPACITY).then_some(tokens + 1)
            });
    }

    #[cfg(test)]
    pub(crate) fn available(&self) -> u32 {
        self.tokens.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_what_was_not_processed_or_is_safe_to_repeat_is_retried() {
        assert_eq!(status_is_retried(429, false), Some(Retryable::RateLimited));
        assert_eq!(status_is_retried(429, true), Some(Retryable::RateLimited));
        for status in [502, 503, 504] {
            assert_eq!(
                status_is_retried(status, true),
                Some(Retryable::Unavailable(status))
            );
            assert_eq!(
                status_is_retried(status, false),
                None,
                "a POST may have been processed"
            );
        }
        for status in [200, 400, 401, 403, 404, 408, 500, 501, 505] {
            assert_eq!(status_is_retried(status, true), None, "{status}");
        }
        let refused = Error::new(ErrorKind::Connect, "connect to gw:443 refused");
        assert_eq!(
            failure_is_retried(&refused, false, true),
            Some(Retryable::NoAnswer),
            "nothing was sent"
        );
        assert_eq!(
            failure_is_retried(&refused, false, false),
            None,
            "a POST was written"
        );
        assert_eq!(
            failure_is_retried(&refused, true, false),
            Some(Retryable::NoAnswer)
        );
        let tls = Error::new(ErrorKind::Tls, "certificate expired");
        assert_eq!(
            failure_is_retried(&tls, true, true),
            None,
            "does not heal by itself"
        );
        assert_eq!(Retryable::NoAnswer.cost(), 10);
        assert_eq!(Retryable::RateLimited.cost(), 5);
    }

    #[test]
    fn backoff_is_full_jitter_of_a_doubling_ceiling_at_most_5_s() {
        let base = 200 * MS;
        assert_eq!(backoff(1, base, 0.0), Duration::ZERO);
        assert_eq!(backoff(1, base, 0.5), 100 * MS);
        assert_eq!(backoff(2, base, 0.5), 200 * MS);
        assert_eq!(
            backoff(3, base, 0.999_999),
            800 * MS - Duration::from_nanos(800)
        );
        assert_eq!(backoff(10, base, 1.0), MAX_BACKOFF, "capped");
        assert_eq!(backoff(100, Duration::from_secs(3600), 1.0), MAX_BACKOFF);
        assert_eq!(backoff(1, Duration::ZERO, 0.7), Duration::ZERO);
        for seed in 0..1000u32 {
            let random = f64::from(seed) / 1000.0;
            let wait = backoff(2, base, random);
            assert!(wait < 400 * MS, "{wait:?}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_capped_at_60_s() {
        assert_eq!(retry_after("1", 0, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(
            retry_after(" 2 ", 0, 0.5),
            Some(2100 * MS),
            "a tenth more at most"
        );
        assert_eq!(retry_after("120", 0, 0.0), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("99999999999999999999", 0, 0.0),
            Some(MAX_RETRY_AFTER)
        );
        let now_ms = 1_700_000_000_000;
        let date = crate::time::http_date::format(now_ms / 1000 + 3);
        assert_eq!(
            retry_after(&date, now_ms, 0.0),
            Some(Duration::from_secs(3))
        );
        let past = crate::time::http_date::format(now_ms / 1000 - 30);
        assert_eq!(retry_after(&past, now_ms, 0.0), Some(Duration::ZERO));
        assert_eq!(retry_after("-1", 0, 0.0), None);
        assert_eq!(retry_after("soon", 0, 0.0), None);
        assert_eq!(retry_after("", 0, 0.0), None);
    }

    #[test]
    fn the_budget_is_a_bucket_of_500_refilled_by_calls_that_needed_no_retry() {
        let budget = RetryBudget::default();
        let mut retries = 0;
        while budget.try_take(RETRY_COST) {
            retries += 1;
        }
        assert_eq!(retries, 100, "500 / 5");
        assert!(!budget.try_take(1));
        for _ in 0..4 {
            budget.put_back_one();
        }
        assert!(!budget.try_take(RETRY_COST), "4 tokens: not enough");
        budget.put_back_one();
        assert!(budget.try_take(RETRY_COST));
        assert!(!budget.try_take(CONNECTION_RETRY_COST));
        for _ in 0..10_000 {
            budget.put_back_one();
        }
        assert_eq!(budget.available(), BUDGET_CAPACITY, "never over capacity");
    }
}
