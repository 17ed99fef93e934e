//! The managed token: "a token that is valid now", cheap enough to ask for on
//! every API call, from any number of threads, and never a reason for a
//! caller to wait while a valid token exists.
//!
//! | state of the cache                        | what `access_token` does                                  |
//! |-------------------------------------------|-----------------------------------------------------------|
//! | fresh: more than the margin left (less 0-20%, see [`cached::Obtained`]) | returns it: no network, no lock |
//! | due: inside the margin, still valid       | returns it at once; one caller (or the background thread) refreshes it meanwhile |
//! | none, or expired (either clock)           | Get; other callers wait for it, each at most its own timeout |
//! | fetch failed, token still valid           | returns the old token; next try in 30 s or at expiry      |
//! | fetch failed, no valid token              | the error, to the waiters and to callers within 1 s after |
//! | invalidated                               | as "none": no thread is served the forgotten token again  |
//! | after `fork()` (in the child)             | the inherited fetch is dropped, the token gets the child's own jitter, the client works lazily |
//! | background refresh on                     | a thread refreshes due tokens; callers only fetch when no valid token exists |
//!
//! At most one Get/Refresh per client is in flight ("single flight"), and the
//! managed path starts at most one per second, however short the tokens'
//! lifetimes (see [`cached::MIN_FETCH_INTERVAL`]). Transient failures are
//! retried with exponential backoff and jitter inside the client's overall
//! timeout; a 1001 (a timestamp another process sent too) is retried up to
//! three times after a random 1-50 ms.
//!
//! The fast path (a fresh cached token) writes to no shared memory: each
//! thread keeps its own reference to the current token, checked against a
//! generation number that changes whenever the token does (installed,
//! invalidated, paused, or inherited by a fork), and counts its cache hits in
//! its own cache line.
//!
//! No lock is held across the network, and the log callback runs only after
//! the flight it reports on has ended, outside every lock.

mod cached;
mod caller;
mod counters;
mod departure;
mod fleet;
mod flight;
mod landing;
mod outside;
mod reader;
mod refresher;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fork::{ForkSafeGuard, ForkSafeMutex};
use crate::log::{LogLevel, Logger};
use crate::redact::KnownTokens;
use crate::response::Token;
use crate::shared_cache::SharedSlot;
pub(crate) use crate::time::{Clock, Moment};
use cached::CachedToken;
pub(crate) use cached::Obtained;
pub use counters::CounterValues;
pub(crate) use counters::Counters;
use departure::Departure;
use flight::Flight;
pub(crate) use flight::{Fetch, refresh_telling_lost_answers};
use reader::READER_CACHE;
pub(crate) use refresher::Refresher;
pub(crate) use refresher::Signal;

/// After a failed refresh with a still-valid token, the next attempt waits
/// this long (the shared cache's records carry the same pause).
pub const FAILED_REFRESH_PAUSE: Duration = crate::shared_cache::PAUSE_AFTER_FAILED_REFRESH;
/// The background thread looks at the clocks at least this often (the wall
/// clock can be stepped while it sleeps on the monotonic one).
const BACKGROUND_IDLE: Duration = Duration::from_secs(30);

/// How the managed token behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedOptions {
    /// Refresh when less than this is left of the token's lifetime (default 600 s).
    pub refresh_margin: Duration,
    /// Retries after a transient failure (default 2).
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter (default 200 ms).
    pub base_backoff: Duration,
    /// A thread per client refreshes due tokens (default off).
    pub background_refresh: bool,
}

impl Default for ManagedOptions {
    fn default() -> Self {
        ManagedOptions {
            refresh_margin: Duration::from_secs(600),
            max_retries: 2,
            base_backoff: Duration::from_millis(200),
            background_refresh: false,
        }
    }
}

/// The network side of the cache: one Get or Refresh attempt, ending by the
/// deadline if there is one. Implemented by the client.
pub(crate) trait TokenSource {
    fn fetch(&self, fetch: &Fetch, deadline: Option<Instant>) -> Result<Token, Error>;
}

/// A fetch that ended without a token, while no valid token existed.
struct Failure {
    error: Error,
    ended: Moment,
}

struct State {
    current: Option<Arc<CachedToken>>,
    /// The fetch in progress, if any.
    flight: Option<Arc<Flight>>,
    last_fetch_started: Option<Moment>,
    last_failure: Option<Failure>,
    /// The fork generation this state belongs to.
    fork_generation: u64,
    /// A background thread of this process keeps the token fresh.
    background: bool,
    ever_had_token: bool,
    /// Every token handed out that may still be alive (in other threads'
    /// caches), to be zeroed when the client is dropped.
    issued: Vec<Weak<CachedToken>>,
    /// The shared file's generation that `current` reflects.
    shared_generation: u64,
    /// A token was invalidated (an API call found it refused): the next
    /// fetch is a renewal, which other hosts make at the same instant.
    renewal_due: bool,
}

impl State {
    /// `token`, shared, and remembered for zeroing.
    fn issue(&mut self, token: CachedToken) -> Arc<CachedToken> {
        let token = Arc::new(token);
        self.issued.retain(|t| t.strong_count() > 0);
        self.issued.push(Arc::downgrade(&token));
        token
    }
}

/// A token served, with the generations under which it was current.
struct Served {
    token: Arc<CachedToken>,
    generation: u64,
    shared_generation: u64,
}

/// What a caller does next.
enum Next {
    Serve(Served),
    Wait(Arc<Flight>),
    Fail(Error),
    /// No valid token, and the last fetch started less than a second ago.
    Pause(Duration),
    Fetch(Departure),
}

/// One client's managed token.
pub(crate) struct ManagedToken {
    /// Never reused: tells this cache's entries apart in threads' reader caches.
    id: u64,
    /// Changes (under `state`'s lock) whenever `current` does.
    generation: AtomicU64,
    state: ForkSafeMutex<State>,
    options: ManagedOptions,
    total_timeout: Duration,
    pub(crate) counters: Counters,
    logger: Option<Logger>,
    clock: Clock,
    /// How to wake this client's background thread, once it runs.
    refresher: OnceLock<Arc<Signal>>,
    /// The token file shared with other processes, if any.
    shared: Option<Arc<SharedSlot>>,
    /// Fingerprints of the tokens this client has seen, kept out of messages.
    known_tokens: KnownTokens,
}

impl std::fmt::Debug for ManagedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedToken")
            .field("options", &self.options)
            .field("counters", &self.counters.values())
            .finish_non_exhaustive()
    }
}

impl ManagedToken {
    pub(crate) fn new(
        options: ManagedOptions,
        total_timeout: Duration,
        logger: Option<Logger>,
        clock: Clock,
        shared: Option<Arc<SharedSlot>>,
    ) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        ManagedToken {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            state: ForkSafeMutex::new(State {
                current: None,
                flight: None,
                last_fetch_started: None,
                last_failure: None,
                fork_generation: clock.fork_generation(),
                background: false,
                ever_had_token: false,
                issued: Vec::new(),
                shared_generation: u64::MAX, // read the file on the first call
                renewal_due: false,
            }),
            options,
            total_timeout,
            counters: Counters::default(),
            logger,
            clock,
            refresher: OnceLock::new(),
            shared,
            known_tokens: KnownTokens::default(),
        }
    }

    /// The tokens this client has seen (to keep them out of messages).
    pub(crate) fn known_tokens(&self) -> &KnownTokens {
        &self.known_tokens
    }

    /// The token file shared with other processes, if any.
    pub(crate) fn shared_slot(&self) -> Option<&SharedSlot> {
        self.shared.as_deref()
    }

    pub(crate) fn options(&self) -> &ManagedOptions {
        &self.options
    }

    /// The state, first made this process's own if it was inherited by a
    /// fork: the parent's fetch has no thread here, nor has its background
    /// thread, and the token gets this process's own jitter.
    fn lock(&self) -> ForkSafeGuard<'_, State> {
        let mut state = self.state.lock();
        let fork_generation = self.clock.fork_generation();
        if state.fork_generation != fork_generation {
            state.fork_generation = fork_generation;
            state.flight = None;
            state.background = false;
            state.last_failure = None;
            state.last_fetch_started = None;
            if let Some(current) = state.current.take() {
                let rejittered = current.rejittered(self.jitter());
                state.current = Some(state.issue(rejittered));
            }
            self.generation.fetch_add(1, Ordering::Release);
        }
        if let Some(shared) = &self.shared {
            let shared_generation = shared.generation();
            if shared_generation != state.shared_generation {
                state.shared_generation = shared_generation;
                let now = self.clock.now();
                if let Some(token) = shared.read(now.wall_ms) {
                    self.take_from_siblings(&mut state, token, now);
                }
                self.generation.fetch_add(1, Ordering::Release);
            }
        }
        state
    }

    /// Where in its band a token's margin is shortened: 0 to 1, at random.
    fn jitter(&self) -> f64 {
        self.clock.random_fraction()
    }

    /// A token valid now, handed to `copy_out` (which must be quick: on the
    /// fast path it runs without any lock).
    pub(crate) fn access_token<R>(
        &self,
        source: &dyn TokenSource,
        copy_out: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        self.access_token_within(source, self.total_timeout, copy_out)
    }

    /// [`ManagedToken::access_token`], waiting for a fetch at most `within`.
    pub(crate) fn access_token_within<R>(
        &self,
        source: &dyn TokenSource,
        within: Duration,
        copy_out: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut copy_out = Some(copy_out);
        let served = READER_CACHE
            .try_with(|cache| {
                let cache = cache.borrow();
                let entry = cache.iter().flatten().find(|e| e.cache_id == self.id)?;
                let now = self.clock.now();
                if entry.generation != generation || !entry.token.is_fresh(now) {
                    return None;
                }
                if let Some(shared) = &self.shared {
                    if shared.generation_at(now.monotonic_ns) != entry.shared_generation {
                        return None; // a sibling process wrote a token
                    }
                }
                copy_out.take().map(|copy| copy(&entry.token.token))
            })
            .ok()
            .flatten();
        if let Some(result) = served {
            self.counters.count_cache_hit();
            return Ok(result);
        }
        let served = self.serve_or_fetch(source, within);
        self.log_shared_file_warning();
        let served = served?;
        let result = (copy_out.take().expect("not used on the fast path"))(&served.token.token);
        self.remember_in_thread(served);
        Ok(result)
    }

    /// Logs what was wrong with the shared file's content, once, outside
    /// every lock.
    fn log_shared_file_warning(&self) {
        let warning = self
            .shared
            .as_ref()
            .and_then(|shared| shared.take_warning());
        if let (Some(logger), Some(warning)) = (&self.logger, warning) {
            logger.log(LogLevel::Warn, &warning);
        }
    }

    fn serve(&self, state: &State, current: &Arc<CachedToken>) -> Next {
        Next::Serve(Served {
            token: current.clone(),
            generation: self.generation.load(Ordering::Acquire),
            shared_generation: state.shared_generation,
        })
    }

    /// The cache entry for `token`, answered to a request sent at `sent`,
    /// with this cache's margin and a fresh random shortening of it.
    fn to_cached(&self, token: Token, sent: Moment, obtained: Obtained) -> CachedToken {
        let margin = self.options.refresh_margin;
        CachedToken::new(token, sent, margin, obtained, self.jitter())
    }

    /// Seconds the current token has left, if there is one.
    pub(crate) fn seconds_left(&self) -> Option<u64> {
        let now = self.clock.now();
        self.lock().current.as_ref().map(|c| c.seconds_left(now))
    }

    pub(crate) fn now(&self) -> Moment {
        self.clock.now()
    }

    /// The client's overall timeout: how long one call may take.
    pub(crate) fn total_timeout(&self) -> Duration {
        self.total_timeout
    }
}

impl Drop for ManagedToken {
    /// Zeroes every token of this client that other threads' caches still
    /// hold: nothing reads them any more (a client is dropped only when no
    /// call on it is running, and the entries of a dropped cache are never
    /// served again: cache ids are never reused).
    fn drop(&mut self) {
        let state = self.state.get_mut();
        for token in state.issued.drain(..).filter_map(|t| t.upgrade()) {
            // SAFETY: no reader, as said above.
            unsafe { token.token.wipe_now() };
        }
    }
}

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod hosts_tests;
#[cfg(test)]
mod tests;
