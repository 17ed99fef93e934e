//! The managed token: "a token that is valid now", cheap enough to ask for on
//! every API call, from any number of threads.
//!
//! | state of the cache                       | what `access_token` does                        |
//! |------------------------------------------|-------------------------------------------------|
//! | no token                                 | Get                                             |
//! | token with more than the margin left     | returns it: no network, no lock                 |
//! | token inside the margin                  | Refresh; on 1203/1204, Get                      |
//! | token expired (either clock)             | Get                                             |
//! | Get/Refresh failed, token still valid    | returns the old token, next try in 30 s or at expiry |
//! | Get/Refresh failed, no valid token       | the error                                       |
//!
//! At most one Get/Refresh per client is in flight ("single flight"): callers
//! that need a new token while one is being fetched wait for it and share its
//! outcome. Transient failures are retried with exponential backoff and jitter
//! inside the client's overall timeout; a 1001 is retried once at once.
//!
//! The fast path (a fresh cached token) writes to no shared memory: each
//! thread keeps its own reference to the current token, checked against a
//! generation number that only changes when the token does, and counts its
//! cache hits in its own cache line.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, service_status};
use crate::log::{LogLevel, Logger, token_hint};
use crate::response::Token;

/// After a failed refresh with a still-valid token, the next attempt waits this long.
pub const FAILED_REFRESH_PAUSE: Duration = Duration::from_secs(30);
/// The random lengthening of each token's margin is at most this.
const MAX_MARGIN_JITTER: Duration = Duration::from_secs(60);

/// How the managed token behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedOptions {
    /// Refresh when less than this is left of the token's lifetime (default 600 s).
    pub refresh_margin: Duration,
    /// Retries after a transient failure (default 2).
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter (default 200 ms).
    pub base_backoff: Duration,
}

impl Default for ManagedOptions {
    fn default() -> Self {
        ManagedOptions {
            refresh_margin: Duration::from_secs(600),
            max_retries: 2,
            base_backoff: Duration::from_millis(200),
        }
    }
}

/// Both clocks at one moment. A token counts as expired (or due) when either
/// clock says so: the monotonic clock stops during suspend, the wall clock
/// can be stepped.
///
/// On Linux both are the kernel's coarse clocks (a few milliseconds of
/// resolution, about 10 ns to read instead of 35-50 ns): token lifetimes and
/// margins are counted in seconds, and this read is on every cached call.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub monotonic_ns: u64,
    pub wall_ms: i64,
}

impl Now {
    pub fn read() -> Self {
        Now {
            monotonic_ns: clocks::monotonic_ns(),
            wall_ms: clocks::wall_ms(),
        }
    }

    /// This moment moved `duration` ahead on both clocks.
    pub fn after(self, duration: Duration) -> Now {
        Now {
            monotonic_ns: self
                .monotonic_ns
                .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)),
            wall_ms: self
                .wall_ms
                .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    fn plus(self, duration: Duration) -> Deadline {
        let later = self.after(duration);
        Deadline {
            monotonic_ns: later.monotonic_ns,
            wall_ms: later.wall_ms,
        }
    }
}

#[cfg(target_os = "linux")]
mod clocks {
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
mod clocks {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn monotonic_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    pub fn wall_ms() -> i64 {
        crate::timestamp::wall_clock_ms()
    }
}

/// A moment on both clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    monotonic_ns: u64,
    wall_ms: i64,
}

impl Deadline {
    /// True once either clock has reached the deadline.
    fn passed(&self, now: Now) -> bool {
        now.monotonic_ns >= self.monotonic_ns || now.wall_ms >= self.wall_ms
    }

    fn earlier(self, other: Deadline) -> Deadline {
        Deadline {
            monotonic_ns: self.monotonic_ns.min(other.monotonic_ns),
            wall_ms: self.wall_ms.min(other.wall_ms),
        }
    }
}

/// A token in the cache, with when to refresh it and when it expires.
#[derive(Clone, Debug)]
pub struct CachedToken {
    pub token: Box<str>,
    refresh_at: Deadline,
    expires_at: Deadline,
}

impl CachedToken {
    /// `token` as answered to a request sent at `sent`. Refresh is due the
    /// margin (plus `jitter` of it, at most 60 s) before expiry, or at half
    /// the lifetime when the margin is not shorter than the lifetime.
    pub fn new(token: Token, sent: Now, margin: Duration, jitter: f64) -> Self {
        let lifetime = Duration::from_secs(token.expire_s.max(0) as u64);
        let extra = margin
            .mul_f64(jitter.clamp(0.0, 0.1))
            .min(MAX_MARGIN_JITTER);
        let margin = margin + extra;
        let refresh_after = if margin >= lifetime {
            lifetime / 2
        } else {
            lifetime - margin
        };
        CachedToken {
            token: token.access_token.into_boxed_str(),
            refresh_at: sent.plus(refresh_after),
            expires_at: sent.plus(lifetime),
        }
    }

    /// More than the margin left: serve without asking the gateway.
    pub fn is_fresh(&self, now: Now) -> bool {
        !self.refresh_at.passed(now)
    }

    pub fn is_expired(&self, now: Now) -> bool {
        self.expires_at.passed(now)
    }

    /// The same token, next refreshed no sooner than `pause` from `now`
    /// (nor later than its expiry).
    fn paused(&self, now: Now, pause: Duration) -> CachedToken {
        CachedToken {
            token: self.token.clone(),
            refresh_at: now.plus(pause).earlier(self.expires_at),
            expires_at: self.expires_at,
        }
    }

    /// Whole seconds until expiry on the monotonic clock (for logs).
    fn seconds_left(&self, now: Now) -> u64 {
        self.expires_at
            .monotonic_ns
            .saturating_sub(now.monotonic_ns)
            / 1_000_000_000
    }
}

/// What the cache reports; see [`Counters`].
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
}

#[repr(align(64))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

const HIT_SHARDS: usize = 16;

/// The client's counters. Cache hits are counted in per-thread shards, each
/// in its own cache line, so that the fast path shares nothing.
#[derive(Default)]
pub struct Counters {
    pub get_requests: AtomicU64,
    pub refresh_requests: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
    pub waits: AtomicU64,
    cache_hits: [PaddedCounter; HIT_SHARDS],
}

impl Counters {
    fn count_cache_hit(&self) {
        static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % HIT_SHARDS;
        }
        let shard = SHARD.try_with(|s| *s).unwrap_or(0);
        self.cache_hits[shard].0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn values(&self) -> CounterValues {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterValues {
            get_requests: load(&self.get_requests),
            refresh_requests: load(&self.refresh_requests),
            retries: load(&self.retries),
            failures: load(&self.failures),
            waits: load(&self.waits),
            cache_hits: self.cache_hits.iter().map(|c| load(&c.0)).sum(),
            dns_lookups: 0,
        }
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.values().fmt(f)
    }
}

/// What one fetch does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    Get,
    Refresh(Box<str>),
}

impl Fetch {
    /// The operation's name in log messages.
    pub fn name(&self) -> &'static str {
        match self {
            Fetch::Get => "Get",
            Fetch::Refresh(_) => "Refresh",
        }
    }
}

/// The network side of the cache: one Get or Refresh attempt, ending by the
/// deadline if there is one. Implemented by the client.
pub trait TokenSource {
    fn fetch(&self, fetch: &Fetch, deadline: Option<Instant>) -> Result<Token, Error>;
}

struct State {
    current: Option<Arc<CachedToken>>,
    in_flight: bool,
    flights_started: u64,
    flights_completed: u64,
    last_outcome: Option<Result<Arc<CachedToken>, Error>>,
}

/// One client's managed token.
pub struct ManagedToken {
    /// Never reused: tells this cache's entries apart in threads' reader caches.
    id: u64,
    /// Changes (under `state`'s lock) whenever `current` does.
    generation: AtomicU64,
    state: Mutex<State>,
    flight_done: Condvar,
    options: ManagedOptions,
    total_timeout: Duration,
    pub counters: Counters,
    logger: Option<Logger>,
}

impl std::fmt::Debug for ManagedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedToken")
            .field("options", &self.options)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Each thread's references to current tokens: (cache id, generation, token).
struct ReaderEntry {
    cache_id: u64,
    generation: u64,
    token: Arc<CachedToken>,
}

const READER_ENTRIES: usize = 4;

thread_local! {
    static READER_CACHE: RefCell<[Option<ReaderEntry>; READER_ENTRIES]> =
        const { RefCell::new([None, None, None, None]) };
}

impl ManagedToken {
    pub fn new(options: ManagedOptions, total_timeout: Duration, logger: Option<Logger>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        ManagedToken {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            state: Mutex::new(State {
                current: None,
                in_flight: false,
                flights_started: 0,
                flights_completed: 0,
                last_outcome: None,
            }),
            flight_done: Condvar::new(),
            options,
            total_timeout,
            counters: Counters::default(),
            logger,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a caller's closure must not make the cache unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        if let Some(logger) = &self.logger {
            logger.log(level, &message());
        }
    }

    /// A token valid now, handed to `copy_out` (which must be quick: on the
    /// fast path it runs without any lock).
    pub fn access_token<R>(
        &self,
        source: &dyn TokenSource,
        copy_out: impl FnOnce(&str) -> R,
    ) -> Result<R, Error> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut copy_out = Some(copy_out);
        let served = READER_CACHE
            .try_with(|cache| {
                let cache = cache.borrow();
                let entry = cache.iter().flatten().find(|e| e.cache_id == self.id)?;
                if entry.generation != generation || !entry.token.is_fresh(Now::read()) {
                    return None;
                }
                copy_out.take().map(|copy| copy(&entry.token.token))
            })
            .ok()
            .flatten();
        if let Some(result) = served {
            self.counters.count_cache_hit();
            return Ok(result);
        }
        let (token, generation) = self.obtain(source)?;
        let result = (copy_out.take().expect("not used on the fast path"))(&token.token);
        self.remember_in_thread(generation, token);
        Ok(result)
    }

    fn remember_in_thread(&self, generation: u64, token: Arc<CachedToken>) {
        let _ = READER_CACHE.try_with(|cache| {
            // Busy only if `copy_out` called back into this thread's cache:
            // then the next call simply takes the slow path again.
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return;
            };
            let slot = match cache
                .iter()
                .position(|e| matches!(e, Some(e) if e.cache_id == self.id))
            {
                Some(slot) => slot,
                None => {
                    // Newest first: shift the others down, dropping the oldest.
                    cache.rotate_right(1);
                    0
                }
            };
            cache[slot] = Some(ReaderEntry {
                cache_id: self.id,
                generation,
                token,
            });
        });
    }

    /// The cache entry for `token`, answered to a request sent at `sent`,
    /// with this cache's margin and a fresh random lengthening of it.
    fn entry(&self, token: Token, sent: Now) -> CachedToken {
        CachedToken::new(
            token,
            sent,
            self.options.refresh_margin,
            random_fraction() * 0.1,
        )
    }

    /// Installs `token`, answered to a raw Get or Refresh sent at `sent`, as
    /// the current one.
    pub fn install(&self, token: Token, sent: Now) {
        let entry = Arc::new(self.entry(token, sent));
        let mut state = self.lock();
        state.current = Some(entry);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Forgets the cached token if it is `rejected` (any token if `None`).
    /// Returns whether it forgot one.
    pub fn invalidate(&self, rejected: Option<&str>) -> bool {
        let mut state = self.lock();
        let forget = match (&state.current, rejected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(current), Some(rejected)) => &*current.token == rejected,
        };
        if forget {
            state.current = None;
            self.generation.fetch_add(1, Ordering::Release);
        }
        drop(state);
        if forget {
            self.log(LogLevel::Info, || {
                "cached token invalidated; the next call gets a new one".into()
            });
        }
        forget
    }

    /// The slow path: the current token if fresh, else this caller's or
    /// another caller's fetch. Returns the token and its generation.
    fn obtain(&self, source: &dyn TokenSource) -> Result<(Arc<CachedToken>, u64), Error> {
        let mut state = self.lock();
        let now = Now::read();
        if let Some(current) = state.current.as_ref().filter(|t| t.is_fresh(now)) {
            // Served from the cache all the same: this thread's copy was stale.
            self.counters.count_cache_hit();
            let token = current.clone();
            return Ok((token, self.generation.load(Ordering::Acquire)));
        }
        if state.in_flight {
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            let awaited = state.flights_started;
            while state.flights_completed < awaited {
                state = self
                    .flight_done
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let generation = self.generation.load(Ordering::Acquire);
            return match &state.last_outcome {
                Some(Ok(token)) => Ok((token.clone(), generation)),
                Some(Err(error)) => Err(error.clone()),
                None => Err(Error::new(
                    ErrorKind::Internal,
                    "fetch ended without an outcome",
                )),
            };
        }

        // This caller fetches; the others wait for it.
        let fetch = match &state.current {
            Some(current) if !current.is_expired(now) => Fetch::Refresh(current.token.clone()),
            _ => Fetch::Get,
        };
        state.in_flight = true;
        state.flights_started += 1;
        let flight = state.flights_started;
        drop(state);

        let mut completion = FlightCompletion {
            cache: self,
            flight,
            outcome: None,
        };
        let outcome = self.fetch_with_retries(source, fetch);
        completion.outcome = Some(outcome);
        completion.finish()
    }

    /// Runs the fetch (and its fallback to Get) within the overall timeout.
    fn fetch_with_retries(
        &self,
        source: &dyn TokenSource,
        fetch: Fetch,
    ) -> Result<CachedToken, Error> {
        let deadline = Instant::now() + self.total_timeout;
        let outcome = self.attempts(source, &fetch, deadline);
        match (&fetch, outcome) {
            (Fetch::Refresh(_), Err(e))
                if e.kind() == ErrorKind::Service
                    && matches!(
                        e.service_status(),
                        service_status::TOKEN_EXPIRED | service_status::REFRESH_FAILED
                    ) =>
            {
                self.log(LogLevel::Info, || {
                    format!("refresh refused ({e}); getting a new token")
                });
                self.attempts(source, &Fetch::Get, deadline)
            }
            (_, outcome) => outcome,
        }
    }

    fn attempts(
        &self,
        source: &dyn TokenSource,
        fetch: &Fetch,
        deadline: Instant,
    ) -> Result<CachedToken, Error> {
        let what = fetch.name();
        let mut retries_left = self.options.max_retries;
        let mut replay_retried = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let sent = Now::read();
            let error = match source.fetch(fetch, Some(deadline)) {
                Ok(token) => {
                    let cached = self.entry(token, sent);
                    self.log(LogLevel::Info, || {
                        format!(
                            "{what} succeeded: token {}, expires in {} s",
                            token_hint(&cached.token),
                            cached.seconds_left(sent)
                        )
                    });
                    return Ok(cached);
                }
                Err(error) => error,
            };
            let delay =
                if error.service_status() == service_status::REPEATED_REQUEST && !replay_retried {
                    replay_retried = true;
                    Some(Duration::ZERO)
                } else if error.is_transient() && retries_left > 0 {
                    retries_left -= 1;
                    Some(self.backoff(attempt))
                } else {
                    None
                };
            let Some(delay) = delay.filter(|d| Instant::now() + *d < deadline) else {
                self.log(LogLevel::Warn, || {
                    format!("{what} failed (attempt {attempt}): {error}")
                });
                return Err(error);
            };
            self.log(LogLevel::Warn, || {
                format!(
                    "{what} failed (attempt {attempt}): {error}; retrying in {} ms",
                    delay.as_millis()
                )
            });
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(delay);
        }
    }

    /// `base * 2^(attempt-1)`, the upper half of it random ("equal jitter").
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .options
            .base_backoff
            .saturating_mul(1u32 << (attempt - 1).min(16));
        full / 2 + (full / 2).mul_f64(random_fraction())
    }
}

/// Ends a fetch: publishes its outcome and wakes the waiters, even when the
/// fetch panicked (then as an internal error), so no waiter hangs.
struct FlightCompletion<'a> {
    cache: &'a ManagedToken,
    flight: u64,
    outcome: Option<Result<CachedToken, Error>>,
}

impl FlightCompletion<'_> {
    fn finish(mut self) -> Result<(Arc<CachedToken>, u64), Error> {
        let outcome = self.outcome.take().expect("set before finish");
        self.publish(outcome)
    }

    fn publish(
        &self,
        outcome: Result<CachedToken, Error>,
    ) -> Result<(Arc<CachedToken>, u64), Error> {
        let cache = self.cache;
        let now = Now::read();
        let mut state = cache.lock();
        let mut fallback_note = None;
        let published: Result<Arc<CachedToken>, Error> = match outcome {
            Ok(token) => {
                let token = Arc::new(token);
                state.current = Some(token.clone());
                cache.generation.fetch_add(1, Ordering::Release);
                Ok(token)
            }
            Err(error) => {
                cache.counters.failures.fetch_add(1, Ordering::Relaxed);
                match &state.current {
                    Some(current) if !current.is_expired(now) => {
                        let paused = Arc::new(current.paused(now, FAILED_REFRESH_PAUSE));
                        fallback_note =
                            Some((paused.token.clone(), paused.seconds_left(now), error));
                        state.current = Some(paused.clone());
                        cache.generation.fetch_add(1, Ordering::Release);
                        Ok(paused)
                    }
                    _ => Err(error),
                }
            }
        };
        state.in_flight = false;
        state.flights_completed = self.flight;
        state.last_outcome = Some(published.clone());
        let generation = cache.generation.load(Ordering::Acquire);
        drop(state);
        cache.flight_done.notify_all();
        if let Some((token, left, error)) = fallback_note {
            cache.log(LogLevel::Warn, || {
                format!(
                    "serving the cached token {} ({left} s left) after a failed fetch: {error}",
                    token_hint(&token)
                )
            });
        }
        published.map(|token| (token, generation))
    }
}

impl Drop for FlightCompletion<'_> {
    fn drop(&mut self) {
        if self.outcome.is_none() && std::thread::panicking() {
            let _ = self.publish(Err(Error::new(
                ErrorKind::Internal,
                "internal error: the token fetch panicked",
            )));
        }
    }
}

/// A random number in `[0, 1)`, from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expire_s: i64) -> Token {
        Token {
            access_token: "tok".into(),
            expire_s,
        }
    }

    #[test]
    fn refresh_is_due_margin_before_expiry_or_at_half_life() {
        let sent = Now::read();
        let cached = CachedToken::new(token(7200), sent, Duration::from_secs(600), 0.0);
        let at = |s: u64| sent.after(Duration::from_secs(s));
        assert!(cached.is_fresh(at(6599)));
        assert!(!cached.is_fresh(at(6600)));
        assert!(!cached.is_expired(at(7199)));
        assert!(cached.is_expired(at(7200)));

        let jittered = CachedToken::new(token(7200), sent, Duration::from_secs(600), 0.1);
        assert!(!jittered.is_fresh(at(6540)), "600 s + 10% = 660 s margin");
        let capped = CachedToken::new(token(100_000), sent, Duration::from_secs(3000), 0.1);
        assert!(
            capped.is_fresh(at(100_000 - 3060 - 1)),
            "jitter capped at 60 s"
        );
        assert!(!capped.is_fresh(at(100_000 - 3060)));

        let long_margin = CachedToken::new(token(10), sent, Duration::from_secs(600), 0.0);
        assert!(long_margin.is_fresh(at(4)));
        assert!(
            !long_margin.is_fresh(at(5)),
            "margin >= lifetime: half-life"
        );
    }

    #[test]
    fn either_clock_expires_the_token() {
        let sent = Now::read();
        let cached = CachedToken::new(token(100), sent, Duration::from_secs(10), 0.0);
        let wall_stepped = Now {
            wall_ms: sent.wall_ms + 100_000,
            ..sent
        };
        assert!(
            cached.is_expired(wall_stepped),
            "wall clock stepped past expiry"
        );
        let suspended = Now {
            monotonic_ns: sent.monotonic_ns + 100_000_000_000,
            ..sent
        };
        assert!(cached.is_expired(suspended));
        assert!(!cached.is_fresh(suspended));
    }

    #[test]
    fn paused_token_waits_or_expires() {
        let now = Now::read();
        let cached = CachedToken::new(token(100), now, Duration::from_secs(90), 0.0);
        let paused = cached.paused(now, FAILED_REFRESH_PAUSE);
        let later = |s: u64| now.after(Duration::from_secs(s));
        assert!(paused.is_fresh(later(29)));
        assert!(!paused.is_fresh(later(30)));
        let short = CachedToken::new(token(10), now, Duration::from_secs(9), 0.0)
            .paused(now, FAILED_REFRESH_PAUSE);
        assert!(!short.is_fresh(later(10)), "never past expiry");
    }

    #[test]
    fn random_fraction_is_in_range_and_varies() {
        let values: Vec<f64> = (0..100).map(|_| random_fraction()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }
}
