//! The state table of the managed token, row by row, with a clock moved by
//! hand and a token source that answers from a script: no network, no
//! sleeps. A source step can block until the test releases it, which is how
//! a test holds a fetch "in flight".

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use super::*;
use crate::error::ErrorKind;
use crate::time::ManualClock;

pub(super) enum Step {
    Answer(Result<Token, Error>),
    /// Tells the test the fetch started, then answers what the test sends.
    Blocked(Sender<()>, Receiver<Result<Token, Error>>),
}

#[derive(Default)]
pub(super) struct Script {
    steps: Mutex<VecDeque<Step>>,
    fetches: Mutex<Vec<Fetch>>,
    /// The deadline each fetch was given.
    deadlines: Mutex<Vec<Option<Instant>>>,
}

impl Script {
    pub(super) fn answer(&self, result: Result<Token, Error>) {
        self.steps.lock().unwrap().push_back(Step::Answer(result));
    }

    /// A fetch that starts, then waits: returns (started, release).
    pub(super) fn blocked(&self) -> (Receiver<()>, Sender<Result<Token, Error>>) {
        let (started_tx, started_rx) = channel();
        let (release_tx, release_rx) = channel();
        let step = Step::Blocked(started_tx, release_rx);
        self.steps.lock().unwrap().push_back(step);
        (started_rx, release_tx)
    }

    pub(super) fn fetches(&self) -> Vec<Fetch> {
        self.fetches.lock().unwrap().clone()
    }
}

impl TokenSource for Script {
    fn fetch(&self, fetch: &Fetch, deadline: Option<Instant>) -> Result<Token, Error> {
        self.fetches.lock().unwrap().push(fetch.clone());
        self.deadlines.lock().unwrap().push(deadline);
        let step = self.steps.lock().unwrap().pop_front();
        match step.unwrap_or_else(|| panic!("unexpected fetch {fetch:?}")) {
            Step::Answer(result) => result,
            Step::Blocked(started, release) => {
                started.send(()).unwrap();
                release.recv().unwrap()
            }
        }
    }
}

pub(super) fn token(name: &str, expire_s: i64) -> Result<Token, Error> {
    Ok(Token {
        access_token: name.into(),
        expire_s,
    })
}

pub(super) fn unavailable() -> Result<Token, Error> {
    Err(Error::new(ErrorKind::Connect, "connect to gateway refused"))
}

struct Setup {
    clock: Arc<ManualClock>,
    script: Arc<Script>,
    cache: Arc<ManagedToken>,
}

fn setup_with(options: ManagedOptions, total_timeout: Duration, logger: Option<Logger>) -> Setup {
    let clock = ManualClock::new();
    let cache = ManagedToken::new(
        options,
        total_timeout,
        logger,
        Clock::Manual(clock.clone()),
        None,
    );
    Setup {
        clock,
        script: Arc::default(),
        cache: Arc::new(cache),
    }
}

fn setup() -> Setup {
    let options = ManagedOptions {
        max_retries: 0,
        ..ManagedOptions::default()
    };
    setup_with(options, Duration::from_secs(30), None)
}

impl Setup {
    fn get(&self) -> Result<String, Error> {
        self.cache.access_token(&*self.script, str::to_string)
    }

    /// Calls `access_token` on another thread.
    fn get_on_thread(&self) -> std::thread::JoinHandle<Result<String, Error>> {
        let (cache, script) = (self.cache.clone(), self.script.clone());
        std::thread::spawn(move || cache.access_token(&*script, str::to_string))
    }

    fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    fn wait_for_waiters(&self, waiters: u64) {
        while self.cache.counters.values().waits < waiters {
            std::thread::yield_now();
        }
    }
}

#[test]
fn fresh_token_is_served_without_a_fetch() {
    let s = setup();
    s.script.answer(token("tok-1", 7200));
    for _ in 0..100 {
        assert_eq!(s.get().unwrap(), "tok-1");
    }
    s.advance(6659); // the margin is 600 s less at most 20% (a token got)
    assert_eq!(s.get().unwrap(), "tok-1");
    assert_eq!(s.script.fetches(), vec![Fetch::Get]);
    assert_eq!(s.cache.counters.values().cache_hits, 100);
}

#[test]
fn due_token_is_served_at_once_while_one_caller_refreshes() {
    let s = setup();
    s.script.answer(token("tok-1", 7200));
    s.get().unwrap();
    s.advance(6750); // inside the margin (600 s less at most 20%), still valid
    let (started, release) = s.script.blocked();
    let refresher = s.get_on_thread();
    started.recv().unwrap();
    for _ in 0..10 {
        assert_eq!(s.get().unwrap(), "tok-1", "nobody waits for the refresh");
    }
    release.send(token("tok-2", 7200)).unwrap();
    assert_eq!(refresher.join().unwrap().unwrap(), "tok-2");
    assert_eq!(s.get().unwrap(), "tok-2");
    assert_eq!(
        s.script.fetches(),
        vec![Fetch::Get, Fetch::Refresh("tok-1".into())]
    );
    assert_eq!(s.cache.counters.values().waits, 0);
}

#[test]
fn without_a_valid_token_callers_wait_for_one_fetch_and_share_it() {
    let s = setup();
    let (started, release) = s.script.blocked();
    let first = s.get_on_thread();
    started.recv().unwrap();
    let waiters: Vec<_> = (0..3).map(|_| s.get_on_thread()).collect();
    s.wait_for_waiters(3);
    release.send(token("tok-1", 7200)).unwrap();
    assert_eq!(first.join().unwrap().unwrap(), "tok-1");
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap().unwrap(), "tok-1");
    }
    assert_eq!(s.script.fetches(), vec![Fetch::Get]);
}

#[test]
fn an_expired_token_is_never_served() {
    let s = setup();
    s.script.answer(token("tok-1", 100));
    s.get().unwrap();
    s.clock.step_wall(100_000); // the wall clock alone passes the expiry
    s.script.answer(token("tok-2", 100));
    assert_eq!(s.get().unwrap(), "tok-2");
    assert_eq!(s.script.fetches(), vec![Fetch::Get, Fetch::Get]);
}

#[test]
fn a_waiter_gives_up_at_its_own_timeout() {
    let s = setup_with(ManagedOptions::default(), Duration::from_millis(50), None);
    let (started, release) = s.script.blocked();
    let first = s.get_on_thread();
    started.recv().unwrap();
    let error = s.get().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.message().contains("still running"), "{error}");
    release.send(token("tok-1", 7200)).unwrap();
    assert_eq!(first.join().unwrap().unwrap(), "tok-1");
}

#[test]
fn a_failed_refresh_serves_the_valid_token_and_pauses() {
    let s = setup();
    s.script.answer(token("tok-1", 7200));
    s.get().unwrap();
    s.advance(6750);
    s.script.answer(unavailable());
    assert_eq!(s.get().unwrap(), "tok-1");
    for _ in 0..10 {
        assert_eq!(s.get().unwrap(), "tok-1");
    }
    assert_eq!(s.script.fetches().len(), 2, "no fetch during the pause");
    s.advance(FAILED_REFRESH_PAUSE.as_secs());
    s.script.answer(token("tok-2", 7200));
    assert_eq!(s.get().unwrap(), "tok-2");
    assert_eq!(s.cache.counters.values().failures, 1);
}

#[test]
fn a_failure_without_a_token_is_shared_for_a_second() {
    let s = setup();
    s.script.answer(Err(Error::service(1003, "")));
    let first = s.get().unwrap_err();
    assert_eq!(first.service_status(), 1003);
    for _ in 0..50 {
        assert_eq!(s.get().unwrap_err(), first, "no new fetch within a second");
    }
    assert_eq!(s.script.fetches().len(), 1);
    s.advance(1);
    s.script.answer(token("tok-1", 7200));
    assert_eq!(s.get().unwrap(), "tok-1");
}

#[test]
fn tiny_lifetimes_cost_one_fetch_per_second() {
    let s = setup();
    s.script.answer(token("tok-0", 0));
    for _ in 0..200 {
        assert_eq!(s.get().unwrap(), "tok-0");
    }
    assert_eq!(s.script.fetches().len(), 1);
    s.advance(1);
    s.script.answer(token("tok-1", 0));
    assert_eq!(s.get().unwrap(), "tok-1");
    assert_eq!(s.script.fetches(), vec![Fetch::Get, Fetch::Get]);
}

#[test]
fn invalidate_is_final_for_every_cache() {
    let s = setup();
    s.script.answer(token("tok-1", 7200));
    assert_eq!(s.get().unwrap(), "tok-1"); // now in this thread's cache too
    assert!(!s.cache.invalidate(Some("an-older-token")));
    assert_eq!(s.get().unwrap(), "tok-1");
    assert!(s.cache.invalidate(Some("tok-1")));
    // The next fetch waits out the one-per-second rule (the manual clock
    // moves on), then gets a new token: tok-1 never comes back.
    s.script.answer(token("tok-2", 7200));
    assert_eq!(s.get().unwrap(), "tok-2");
    assert_eq!(s.script.fetches(), vec![Fetch::Get, Fetch::Get]);
}

#[test]
fn a_fork_drops_the_inherited_flight_and_background_thread() {
    let s = setup();
    let (started, release) = s.script.blocked();
    let parent_fetch = s.get_on_thread();
    started.recv().unwrap();
    s.clock.pretend_fork(); // this "child" has no thread to finish that fetch
    s.script.answer(token("child-tok", 7200));
    assert_eq!(s.get().unwrap(), "child-tok", "the child fetches its own");
    release.send(token("parent-tok", 7200)).unwrap();
    let _ = parent_fetch.join();

    // Background refresh does not survive the fork: the child refreshes lazily.
    let s = setup();
    let _signal = s.cache.start_background();
    s.script.answer(token("tok-1", 7200));
    s.get().unwrap();
    s.advance(6750);
    assert_eq!(s.get().unwrap(), "tok-1");
    assert_eq!(s.script.fetches().len(), 1, "left to the background thread");
    s.clock.pretend_fork();
    s.script.answer(token("tok-2", 7200));
    assert_eq!(s.get().unwrap(), "tok-2", "the child's caller refreshes");
}

#[test]
fn the_background_round_refreshes_due_tokens_only() {
    let s = setup();
    let signal = s.cache.start_background();
    let round = || s.cache.refresh_in_background(&*s.script, &signal);
    assert_eq!(round(), BACKGROUND_IDLE, "the first token is the callers'");
    s.script.answer(token("tok-1", 7200));
    s.get().unwrap();
    let sleep = round();
    assert!(sleep > Duration::ZERO && sleep <= BACKGROUND_IDLE);
    s.advance(6750);
    s.script.answer(token("tok-2", 7200));
    assert_eq!(round(), Duration::ZERO, "refreshed");
    assert_eq!(s.get().unwrap(), "tok-2");

    // An outage: the token is kept and the next round waits for the pause.
    s.advance(6750);
    s.script.answer(unavailable());
    round();
    assert_eq!(s.get().unwrap(), "tok-2");
    assert_eq!(round(), BACKGROUND_IDLE.min(FAILED_REFRESH_PAUSE));
    // After an invalidation it gets a new token at once.
    s.advance(60);
    s.cache.invalidate(None);
    s.script.answer(token("tok-3", 7200));
    assert_eq!(round(), Duration::ZERO);
    assert_eq!(s.get().unwrap(), "tok-3");
    assert_eq!(s.script.fetches().len(), 4); // Get, 2 Refreshes, Get
}

#[test]
fn the_log_callback_may_call_back_in() {
    let cache_for_log: Arc<OnceLock<(Arc<ManagedToken>, Arc<Script>)>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (target, sink) = (cache_for_log.clone(), seen.clone());
    let logger = Logger::new(move |_, message| {
        let (cache, script) = target.get().unwrap();
        let inner = cache.access_token(&**script, str::to_string);
        sink.lock().unwrap().push((message.to_string(), inner));
    });
    let s = setup_with(
        ManagedOptions::default(),
        Duration::from_secs(30),
        Some(logger),
    );
    assert!(
        cache_for_log
            .set((s.cache.clone(), s.script.clone()))
            .is_ok()
    );
    s.script.answer(Err(Error::service(1003, "")));
    assert!(s.get().is_err());
    s.advance(1);
    s.script.answer(token("tok-1", 7200));
    assert_eq!(s.get().unwrap(), "tok-1");
    let seen = seen.lock().unwrap();
    assert!(seen[0].0.starts_with("Get failed"), "{seen:?}");
    assert_eq!(seen[0].1.as_ref().unwrap_err().service_status(), 1003);
    assert!(seen[1].0.starts_with("Get succeeded"), "{seen:?}");
    assert_eq!(seen[1].1.as_deref().unwrap(), "tok-1");
}

#[test]
fn dropping_the_cache_zeroes_the_tokens_other_threads_still_hold() {
    let Setup { script, cache, .. } = setup();
    script.answer(token("tok-held-by-a-thread", 7200));
    cache.access_token(&*script, str::to_string).unwrap();
    let held = READER_CACHE.with(|entries| {
        let entries = entries.borrow();
        let entry = entries.iter().flatten().find(|e| e.cache_id == cache.id);
        entry.unwrap().token.clone()
    });
    assert_eq!(&*held.token, "tok-held-by-a-thread");
    drop(cache);
    assert!(
        held.token.bytes().all(|b| b == 0),
        "{:?}",
        held.token.as_bytes()
    );
}

#[test]
fn debug_output_shows_hints_of_tokens_only() {
    let fetch = Fetch::Refresh("tok-secret-value-123".into());
    assert_eq!(format!("{fetch:?}"), "Refresh(tok-…(20 bytes))");
    let cached = CachedToken::new(
        token("tok-secret-value-123", 60).unwrap(),
        ManualClock::new().now(),
        Duration::from_secs(10),
        cached::Obtained::ByGet,
        0.0,
    );
    assert!(
        !format!("{cached:?}").contains("secret-value"),
        "{cached:?}"
    );
}

#[test]
fn a_fetch_runs_on_the_latest_deadline_of_its_waiters() {
    // A caller left with 10 ms starts a fetch; one with 5 s joins it. The
    // fetch's attempt runs out of the 10 ms: it goes on, on the 5 s, and
    // both get the token (the waiter never the starter's timeout).
    let s = setup();
    let (started, release) = s.script.blocked();
    let starter = {
        let (cache, script) = (s.cache.clone(), s.script.clone());
        std::thread::spawn(move || {
            cache.access_token_within(&*script, Duration::from_millis(10), str::to_string)
        })
    };
    started.recv().unwrap();
    let waiter = {
        let (cache, script) = (s.cache.clone(), s.script.clone());
        std::thread::spawn(move || {
            cache.access_token_within(&*script, Duration::from_secs(5), str::to_string)
        })
    };
    s.wait_for_waiters(1);
    s.script.answer(token("tok-1", 7200));
    let out_of_time = Error::new(
        ErrorKind::Timeout,
        "no complete answer from the gateway within the 10 ms deadline",
    );
    release.send(Err(out_of_time)).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), "tok-1");
    assert_eq!(starter.join().unwrap().unwrap(), "tok-1");
    let deadlines = s.script.deadlines.lock().unwrap().clone();
    assert_eq!(deadlines.len(), 2, "{deadlines:?}");
    let (first, second) = (deadlines[0].unwrap(), deadlines[1].unwrap());
    assert!(
        second >= first + Duration::from_secs(4),
        "{first:?} then {second:?}"
    );
    assert_eq!(s.cache.counters.values().retries, 1);
}
