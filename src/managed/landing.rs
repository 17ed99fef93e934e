//! The end of a flight: its outcome becomes the cache's state (a new token,
//! the old one paused after a failure, or the error for the waiters), the
//! fleet's file learns of it, and the waiters wake, even if the fetch
//! panicked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::flight::{Fetched, Flight, HeldLog};
use super::{Counters, FAILED_REFRESH_PAUSE, Failure, ManagedToken, Served};
use crate::error::{Error, ErrorKind};
use crate::log::{LogLevel, token_hint};
use crate::shared_cache::FleetLock;

/// Ends a flight: publishes its outcome and wakes the waiters, even when the
/// fetch panicked (then as an internal error), so no waiter hangs.
pub(super) struct Landing<'a> {
    pub(super) cache: &'a ManagedToken,
    pub(super) flight: &'a Arc<Flight>,
    pub(super) landed: bool,
}

impl Landing<'_> {
    pub(super) fn land(
        &mut self,
        outcome: Result<Fetched, Error>,
        fleet_lock: Option<FleetLock<'_>>,
        log: &mut HeldLog,
    ) -> Result<Served, Error> {
        self.landed = true;
        let cache = self.cache;
        let now = cache.clock.now();
        let mut state = cache.lock();
        let published = match outcome {
            Ok(fetched) => {
                let entry = cache.to_cached(fetched.token, fetched.sent, fetched.obtained);
                let token = state.issue(entry);
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
            if let Some(written) = shared
                .read(now.wall_ms)
                .filter(|t| *t.token == *token.token)
            {
                state.shared_generation = written.generation;
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
