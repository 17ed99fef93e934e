//! What a caller of `access_token` does when its thread's cached token will
//! not do: serve the current token, wait for another caller's fetch, share a
//! recent failure, or fetch, each within the caller's own overall timeout.

use std::time::Duration;

use super::cached::MIN_FETCH_INTERVAL;
use super::flight::Fetch;
use super::{Counters, ManagedToken, Moment, Next, Served, State, TokenSource};
use crate::error::{Error, ErrorKind};

impl ManagedToken {
    /// The slow path: serve the current token if it is valid, else wait for
    /// or run a fetch, within `within` from now (at most the overall timeout).
    pub(super) fn serve_or_fetch(
        &self,
        source: &dyn TokenSource,
        within: Duration,
    ) -> Result<Served, Error> {
        let deadline = self.clock.now().later_by(within.min(self.total_timeout));
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
                    flight.extend(deadline);
                    if !waited {
                        Counters::add(&self.counters.waits);
                        waited = true;
                    }
                    let left = deadline.remaining_from(self.clock.now());
                    // A call that can be cancelled looks up every few ms.
                    let cancellable = crate::transport::cancellable();
                    let slice = if cancellable {
                        left.min(crate::transport::POLL_INTERVAL)
                    } else {
                        left
                    };
                    if crate::transport::is_cancelled() {
                        return Err(Error::new(
                            ErrorKind::Cancelled,
                            "cancelled while waiting for a token",
                        ));
                    }
                    if left.is_zero() || (!flight.wait(slice) && slice == left) {
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
}

/// True when a managed fetch started less than [`MIN_FETCH_INTERVAL`] ago.
fn fetched_recently(state: &State, now: Moment) -> bool {
    state
        .last_fetch_started
        .is_some_and(|started| !started.later_by(MIN_FETCH_INTERVAL).has_passed(now))
}
