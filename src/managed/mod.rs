//! The managed token: "a token that is valid now", cheap enough to ask for on
//! every API call, from any number of threads, and never a reason for a
//! caller to wait while a valid token exists.
//!
//! | state of the cache                        | what `access_token` does                                  |
//! |-------------------------------------------|-----------------------------------------------------------|
//! | fresh: more than the margin left          | returns it: no network, no lock                           |
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
//! timeout; a 1001 is retried once at once.
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
mod clock;
mod counters;
mod fleet;
mod flight;
mod refresher;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::fork::{ForkSafeGuard, ForkSafeMutex};
use crate::log::{LogLevel, Logger, token_hint};
use crate::response::Token;
use crate::shared_cache::{FleetLock, SharedSlot};
use cached::{CachedToken, MIN_FETCH_INTERVAL};
pub(crate) use clock::{Clock, Moment};
pub use counters::CounterValues;
pub(crate) use counters::Counters;
pub(crate) use flight::Fetch;
use flight::{FetchContext, Flight, HeldLog, Pause, fetch_with_retries};
pub(crate) use refresher::Refresher;
pub(crate) use refresher::Signal;

/// After a failed refresh with a still-valid token, the next attempt waits this long.
pub const FAILED_REFRESH_PAUSE: Duration = Duration::from_secs(30);
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

/// A fetch this caller starts: what, the flight its waiters wait on, and
/// the token cached at the start (kept out of the fetch's messages).
struct Departure {
    fetch: Fetch,
    flight: Arc<Flight>,
    cached_token: Option<Box<str>>,
    /// The shared file's generation the decision to fetch was made on.
    shared_generation: u64,
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
}

impl std::fmt::Debug for ManagedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedToken")
            .field("options", &self.options)
            .field("counters", &self.counters.values())
            .finish_non_exhaustive()
    }
}

/// A thread's reference to a cache's current token.
struct ReaderEntry {
    cache_id: u64,
    generation: u64,
    shared_generation: u64,
    token: Arc<CachedToken>,
}

const READER_ENTRIES: usize = 4;

thread_local! {
    static READER_CACHE: RefCell<[Option<ReaderEntry>; READER_ENTRIES]> =
        const { RefCell::new([None, None, None, None]) };
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
            }),
            options,
            total_timeout,
            counters: Counters::default(),
            logger,
            clock,
            refresher: OnceLock::new(),
            shared,
        }
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
                if let Some(token) = shared.read() {
                    self.take_from_siblings(&mut state, token, self.clock.now());
                }
                self.generation.fetch_add(1, Ordering::Release);
            }
        }
        state
    }

    /// A fresh random lengthening of the margin: 0-10%.
    fn jitter(&self) -> f64 {
        clock::random_fraction() * 0.1
    }

    /// A token valid now, handed to `copy_out` (which must be quick: on the
    /// fast path it runs without any lock).
    pub(crate) fn access_token<R>(
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
                if entry.generation != generation || !entry.token.is_fresh(self.clock.now()) {
                    return None;
                }
                if let Some(shared) = &self.shared {
                    if shared.generation() != entry.shared_generation {
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
        let served = self.serve_or_fetch(source)?;
        let result = (copy_out.take().expect("not used on the fast path"))(&served.token.token);
        self.remember_in_thread(served);
        Ok(result)
    }

    fn remember_in_thread(&self, served: Served) {
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
                generation: served.generation,
                shared_generation: served.shared_generation,
                token: served.token,
            });
        });
    }

    /// The slow path: serve the current token if it is valid, else wait for
    /// or run a fetch, within the overall timeout from now.
    fn serve_or_fetch(&self, source: &dyn TokenSource) -> Result<Served, Error> {
        let deadline = self.clock.now().later_by(self.total_timeout);
        let mut waited = false;
        loop {
            let now = self.clock.now();
            let next = self.next_for_caller(&mut self.lock(), now);
            match next {
                Next::Serve(served) => {
                    if !waited {
                        self.counters.count_cache_hit();
                    }
                    return Ok(served);
                }
                Next::Fail(error) => return Err(error),
                Next::Wait(flight) => {
                    if !waited {
                        Counters::add(&self.counters.waits);
                        waited = true;
                    }
                    let left = deadline.remaining_from(self.clock.now());
                    if left.is_zero() || !flight.wait(left) {
                        return Err(self.timed_out("another caller's Get/Refresh is still running"));
                    }
                }
                Next::Pause(pause) => {
                    if deadline.has_passed(now.later_by(pause)) {
                        return Err(self.timed_out("the client fetches at most once per second"));
                    }
                    self.clock.sleep(pause);
                }
                Next::Fetch(departure) => {
                    let sleep = |pause: Duration| {
                        self.clock.sleep(pause);
                        true
                    };
                    let (served, log) = self.fly(source, departure, deadline, &sleep);
                    log.emit(self.logger.as_ref());
                    return served;
                }
            }
        }
    }

    fn timed_out(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no valid token within the overall timeout of {} ms: {why}",
                self.total_timeout.as_millis()
            ),
        )
    }

    /// What a caller of `access_token` does next, given the state.
    fn next_for_caller(&self, state: &mut State, now: Moment) -> Next {
        if let Some(current) = &state.current {
            if current.is_fresh(now) {
                return self.serve(state, current);
            }
            if current.is_valid(now) {
                // Due: whoever refreshes, nobody waits for it.
                let someone_else_refreshes = state.flight.is_some() || state.background;
                if someone_else_refreshes || fetched_recently(state, now) {
                    return self.serve(state, current);
                }
                let fetch = Fetch::Refresh(Box::from(&*current.token));
                return Next::Fetch(self.start_flight(state, now, fetch));
            }
        }
        if let Some(flight) = &state.flight {
            return Next::Wait(flight.clone());
        }
        if let Some(failure) = &state.last_failure {
            if !failure.ended.later_by(MIN_FETCH_INTERVAL).has_passed(now) {
                return Next::Fail(failure.error.clone());
            }
        }
        if let Some(started) = state.last_fetch_started {
            let next_allowed = started.later_by(MIN_FETCH_INTERVAL);
            if !next_allowed.has_passed(now) {
                return Next::Pause(next_allowed.remaining_from(now));
            }
        }
        Next::Fetch(self.start_flight(state, now, Fetch::Get))
    }

    fn serve(&self, state: &State, current: &Arc<CachedToken>) -> Next {
        Next::Serve(Served {
            token: current.clone(),
            generation: self.generation.load(Ordering::Acquire),
            shared_generation: state.shared_generation,
        })
    }

    fn start_flight(&self, state: &mut State, now: Moment, fetch: Fetch) -> Departure {
        let flight = Arc::new(Flight::default());
        state.flight = Some(flight.clone());
        state.last_fetch_started = Some(now);
        Departure {
            fetch,
            flight,
            cached_token: state.current.as_ref().map(|c| Box::from(&*c.token)),
            shared_generation: state.shared_generation,
        }
    }

    /// Runs a flight on this thread, publishes its outcome and wakes its
    /// waiters. Returns the outcome and the log lines for the caller to emit
    /// now that the flight has ended.
    fn fly(
        &self,
        source: &dyn TokenSource,
        departure: Departure,
        deadline: Moment,
        pause: Pause<'_>,
    ) -> (Result<Served, Error>, HeldLog) {
        let Departure {
            fetch,
            flight,
            cached_token,
            shared_generation,
        } = departure;
        let mut landing = Landing {
            cache: self,
            flight: &flight,
            landed: false,
        };
        let context = FetchContext {
            options: &self.options,
            clock: &self.clock,
            counters: &self.counters,
            pause,
            cached_token: cached_token.as_deref(),
        };
        let mut log = HeldLog::default();
        let (outcome, fleet_lock) = match &self.shared {
            None => (
                fetch_with_retries(source, fetch, deadline, &context, &mut log),
                None,
            ),
            Some(shared) => {
                let decided_on = shared_generation;
                self.fetch_for_the_fleet(
                    shared, source, fetch, decided_on, deadline, &context, &mut log,
                )
            }
        };
        let served = landing.land(outcome, fleet_lock, &mut log);
        (served, log)
    }

    /// The cache entry for `token`, answered to a request sent at `sent`,
    /// with this cache's margin and a fresh random lengthening of it.
    fn entry(&self, token: Token, sent: Moment) -> CachedToken {
        CachedToken::new(token, sent, self.options.refresh_margin, self.jitter())
    }

    /// Installs `token`, answered to a raw Get or Refresh sent at `sent`, as
    /// the current one.
    pub(crate) fn install(&self, token: Token, sent: Moment) {
        let entry = self.entry(token, sent);
        let mut state = self.lock();
        state.current = Some(state.issue(entry));
        state.ever_had_token = true;
        state.last_failure = None;
        self.generation.fetch_add(1, Ordering::Release);
        let published = state.current.as_ref().map(|c| {
            (
                Box::<str>::from(&*c.token),
                c.sent_wall_ms(),
                c.lifetime_s(),
            )
        });
        drop(state);
        if let (Some(shared), Some((token, sent_wall_ms, lifetime_s))) = (&self.shared, published) {
            if let Ok(lock) = shared.lock(Instant::now() + Duration::from_secs(1)) {
                lock.publish(&token, sent_wall_ms, lifetime_s, 0);
            }
        }
        self.wake_refresher();
    }

    /// Forgets the cached token if it is `rejected` (any token if `None`).
    /// Returns whether it forgot one. Once this has returned, no thread is
    /// served the forgotten token from any cache: every thread's reference
    /// carries the generation it was read under, and this changes it.
    pub(crate) fn invalidate(&self, rejected: Option<&str>) -> bool {
        let mut state = self.lock();
        let forget = match (&state.current, rejected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(current), Some(rejected)) => &*current.token == rejected,
        };
        let forgotten = if forget { state.current.take() } else { None };
        if forget {
            self.generation.fetch_add(1, Ordering::Release);
        }
        drop(state);
        // Tell the siblings, unless one of them is fetching (then a new
        // token is on its way anyway).
        let rejected_in_the_fleet = rejected.or(forgotten.as_ref().map(|t| &*t.token));
        if let (Some(shared), Some(token)) = (&self.shared, rejected_in_the_fleet) {
            if let Some(lock) = shared.try_lock() {
                lock.invalidate(token);
            }
        }
        if forget {
            self.wake_refresher();
            if let Some(logger) = &self.logger {
                logger.log(
                    LogLevel::Info,
                    "cached token invalidated; the next call gets a new one",
                );
            }
        }
        forget
    }

    pub(crate) fn now(&self) -> Moment {
        self.clock.now()
    }

    /// Marks this client as refreshed by a background thread of this
    /// process, and returns the signal that wakes and stops the thread.
    pub(crate) fn start_background(&self) -> Arc<Signal> {
        let signal = self
            .refresher
            .get_or_init(|| Arc::new(Signal::new(self.clock.fork_generation())))
            .clone();
        self.lock().background = true;
        signal
    }

    fn wake_refresher(&self) {
        if let Some(signal) = self.refresher.get() {
            if signal.fork_generation() == self.clock.fork_generation() {
                signal.wake();
            }
        }
    }

    /// One round of the background thread: refreshes a due token (or gets a
    /// new one after expiry or invalidation, once there has been a token),
    /// and returns how long to sleep before the next round.
    pub(crate) fn refresh_in_background(
        &self,
        source: &dyn TokenSource,
        signal: &Signal,
    ) -> Duration {
        let now = self.clock.now();
        let next = {
            let mut state = self.lock();
            if !state.background {
                return BACKGROUND_IDLE;
            }
            self.next_for_background(&mut state, now)
        };
        match next {
            Ok(departure) => {
                let deadline = now.later_by(self.total_timeout);
                let pause = |duration| signal.pause(duration);
                let (_, log) = self.fly(source, departure, deadline, &pause);
                if !signal.stopped() {
                    // Not while the client is being freed: the host may
                    // already have released what its callback uses.
                    log.emit(self.logger.as_ref());
                }
                Duration::ZERO
            }
            Err(sleep) => sleep,
        }
    }

    fn next_for_background(&self, state: &mut State, now: Moment) -> Result<Departure, Duration> {
        if state.flight.is_some() {
            return Err(BACKGROUND_IDLE); // its end wakes this thread
        }
        let fetch = match &state.current {
            Some(current) if current.is_fresh(now) => {
                return Err(current
                    .refresh_at()
                    .remaining_from(now)
                    .min(BACKGROUND_IDLE));
            }
            Some(current) if current.is_valid(now) => Fetch::Refresh(Box::from(&*current.token)),
            _ if !state.ever_had_token => return Err(BACKGROUND_IDLE),
            _ => {
                let not_before = [
                    state
                        .last_failure
                        .as_ref()
                        .map(|f| f.ended.later_by(FAILED_REFRESH_PAUSE)),
                    state
                        .last_fetch_started
                        .map(|s| s.later_by(MIN_FETCH_INTERVAL)),
                ];
                if let Some(wait) = not_before
                    .into_iter()
                    .flatten()
                    .find(|m| !m.has_passed(now))
                {
                    return Err(wait.remaining_from(now).min(BACKGROUND_IDLE));
                }
                Fetch::Get
            }
        };
        Ok(self.start_flight(state, now, fetch))
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

/// True when a managed fetch started less than [`MIN_FETCH_INTERVAL`] ago.
fn fetched_recently(state: &State, now: Moment) -> bool {
    state
        .last_fetch_started
        .is_some_and(|started| !started.later_by(MIN_FETCH_INTERVAL).has_passed(now))
}

/// Ends a flight: publishes its outcome and wakes the waiters, even when the
/// fetch panicked (then as an internal error), so no waiter hangs.
struct Landing<'a> {
    cache: &'a ManagedToken,
    flight: &'a Arc<Flight>,
    landed: bool,
}

impl Landing<'_> {
    fn land(
        &mut self,
        outcome: Result<(Token, Moment), Error>,
        fleet_lock: Option<FleetLock<'_>>,
        log: &mut HeldLog,
    ) -> Result<Served, Error> {
        self.landed = true;
        let cache = self.cache;
        let now = cache.clock.now();
        let mut state = cache.lock();
        let published = match outcome {
            Ok((token, sent)) => {
                let token = state.issue(cache.entry(token, sent));
                state.current = Some(token.clone());
                state.last_failure = None;
                state.ever_had_token = true;
                cache.generation.fetch_add(1, Ordering::Release);
                Ok(token)
            }
            Err(error) => {
                Counters::add(&cache.counters.failures);
                match &state.current {
                    Some(current) if current.is_valid(now) => {
                        let paused = current.paused(now, FAILED_REFRESH_PAUSE);
                        let paused = state.issue(paused);
                        log.push(
                            LogLevel::Warn,
                            format!(
                                "serving the cached token {} ({} s left) after a failed fetch: {error}",
                                token_hint(&paused.token),
                                paused.seconds_left(now)
                            ),
                        );
                        if let Some(lock) = &fleet_lock {
                            // The whole fleet waits before trying again.
                            let until = now
                                .wall_ms
                                .saturating_add(FAILED_REFRESH_PAUSE.as_millis() as i64);
                            lock.publish(
                                &paused.token,
                                paused.sent_wall_ms(),
                                paused.lifetime_s(),
                                until,
                            );
                        }
                        state.current = Some(paused.clone());
                        cache.generation.fetch_add(1, Ordering::Release);
                        Ok(paused)
                    }
                    _ => {
                        state.last_failure = Some(Failure {
                            error: error.clone(),
                            ended: now,
                        });
                        Err(error)
                    }
                }
            }
        };
        if state
            .flight
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            state.flight = None;
        }
        if let (Some(shared), Ok(token)) = (&cache.shared, &published) {
            // What this flight wrote or adopted is what the file holds now.
            if shared.read().is_some_and(|t| *t.token == *token.token) {
                state.shared_generation = shared.generation();
            }
        }
        let generation = cache.generation.load(Ordering::Acquire);
        let shared_generation = state.shared_generation;
        drop(state);
        drop(fleet_lock);
        self.flight.end();
        cache.wake_refresher();
        published.map(|token| Served {
            token,
            generation,
            shared_generation,
        })
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if !self.landed {
            let _ = self.land(
                Err(Error::new(
                    ErrorKind::Internal,
                    "internal error: the token fetch panicked",
                )),
                None,
                &mut HeldLog::default(),
            );
        }
    }
}

#[cfg(test)]
mod tests;
