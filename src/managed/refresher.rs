//! The optional background thread that refreshes a client's token when it
//! is due, so that callers never wait for the network once a token exists.
//!
//! One thread per client, started by the client's builder and stopped when
//! the client is freed: the stop interrupts a fetch in flight (the client
//! shuts its connections down) and joins the thread. In a forked child the
//! thread does not exist: the child's client works lazily, and freeing it
//! there neither signals nor joins the parent's thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

use super::cached::MIN_FETCH_INTERVAL;
use super::flight::Fetch;
use super::{
    BACKGROUND_IDLE, Departure, FAILED_REFRESH_PAUSE, ManagedToken, Moment, State, TokenSource,
};

#[derive(Debug, Default)]
struct Flags {
    stop: bool,
    woken: bool,
}

/// Wakes the background thread (a token changed) or stops it.
#[derive(Debug)]
pub(crate) struct Signal {
    flags: Mutex<Flags>,
    changed: Condvar,
    /// The fork generation of the process that runs the thread.
    fork_generation: u64,
}

impl Signal {
    pub(crate) fn new(fork_generation: u64) -> Self {
        Signal {
            flags: Mutex::new(Flags::default()),
            changed: Condvar::new(),
            fork_generation,
        }
    }

    pub(crate) fn fork_generation(&self) -> u64 {
        self.fork_generation
    }

    fn flags(&self) -> MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the thread look at the token again now.
    pub(crate) fn wake(&self) {
        self.flags().woken = true;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.flags().stop = true;
        self.changed.notify_all();
    }

    /// Sleeps up to `duration`, less if woken; false once stopped.
    fn sleep_until_woken(&self, duration: Duration) -> bool {
        let flags = self.flags();
        let (mut flags, _) = self
            .changed
            .wait_timeout_while(flags, duration, |f| !f.stop && !f.woken)
            .unwrap_or_else(PoisonError::into_inner);
        flags.woken = false;
        !flags.stop
    }

    /// Sleeps `duration` (a backoff between retries); false once stopped.
    pub(crate) fn pause(&self, duration: Duration) -> bool {
        let flags = self.flags();
        let (flags, _) = self
            .changed
            .wait_timeout_while(flags, duration, |f| !f.stop)
            .unwrap_or_else(PoisonError::into_inner);
        !flags.stop
    }

    pub(crate) fn stopped(&self) -> bool {
        self.flags().stop
    }
}

/// A running background thread.
#[derive(Debug)]
pub(crate) struct Refresher {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl Refresher {
    /// Starts a thread that calls `round` (which gets the signal, for its
    /// pauses, and returns how long to sleep) until stopped.
    pub(crate) fn start(
        signal: Arc<Signal>,
        round: impl Fn(&Signal) -> Duration + Send + 'static,
    ) -> Result<Refresher, Error> {
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("enos-token-refresh".into())
            .spawn(move || {
                while !thread_signal.stopped() {
                    let sleep = round(&thread_signal);
                    if !thread_signal.sleep_until_woken(sleep) {
                        break;
                    }
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot start the background refresh thread: {e}"),
                )
            })?;
        Ok(Refresher {
            signal,
            thread: Some(thread),
        })
    }

    /// Stops the thread: signals it, runs `interrupt` (which must make a
    /// fetch in flight fail at once), and joins it. In a forked child, where
    /// the thread does not exist, does nothing.
    pub(crate) fn stop(mut self, current_fork_generation: u64, interrupt: impl FnOnce()) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if current_fork_generation != self.signal.fork_generation() {
            // The handle names a thread of the parent process: joining or
            // detaching it here would be undefined. Let it go.
            std::mem::forget(thread);
            return;
        }
        self.signal.stop();
        interrupt();
        let _ = thread.join();
    }
}

impl ManagedToken {
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

    pub(super) fn wake_refresher(&self) {
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
