//! What a client has done, counted without slowing the cached path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What the client reports; see [`crate::Client::counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterValues {
    /// Get requests sent (every attempt, raw calls included).
    pub get_requests: u64,
    /// Refresh requests sent (every attempt, raw calls included).
    pub refresh_requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Managed fetches that ended without a new token.
    pub failures: u64,
    /// Callers that waited for another caller's fetch.
    pub waits: u64,
    /// Tokens served from the cache, without a request.
    pub cache_hits: u64,
    /// DNS lookups (filled in by the client).
    pub dns_lookups: u64,
    /// API calls made with `Client::request` (each counted once).
    pub api_calls: u64,
    /// Tokens renewed because an API call's token was refused.
    pub token_renewals: u64,
    /// API calls sent again after a 429, a 502/503/504 or a failed
    /// connection.
    pub api_retries: u64,
    /// Retries not made: the client's retry budget was spent, or the wait
    /// would have ended after the call's deadline.
    pub api_retries_denied: u64,
}

#[repr(align(64))]
#[derive(Default, Debug)]
struct PaddedCounter(AtomicU64);

const HIT_SHARDS: usize = 16;

/// The client's counters. Cache hits are counted in per-thread shards, each
/// in its own cache line, so that the fast path shares nothing.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) get_requests: AtomicU64,
    pub(crate) refresh_requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) api_calls: AtomicU64,
    pub(crate) token_renewals: AtomicU64,
    pub(crate) api_retries: AtomicU64,
    pub(crate) api_retries_denied: AtomicU64,
    cache_hits: [PaddedCounter; HIT_SHARDS],
}

impl Counters {
    pub(crate) fn count_cache_hit(&self) {
        static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % HIT_SHARDS;
        }
        let shard = SHARD.try_with(|s| *s).unwrap_or(0);
        self.cache_hits[shard].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn values(&self) -> CounterValues {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterValues {
            get_requests: load(&self.get_requests),
            refresh_requests: load(&self.refresh_requests),
            retries: load(&self.retries),
            failures: load(&self.failures),
            waits: load(&self.waits),
            cache_hits: self.cache_hits.iter().map(|c| load(&c.0)).sum(),
            dns_lookups: 0,
            api_calls: load(&self.api_calls),
            token_renewals: load(&self.token_renewals),
            api_retries: load(&self.api_retries),
            api_retries_denied: load(&self.api_retries_denied),
        }
    }
}
