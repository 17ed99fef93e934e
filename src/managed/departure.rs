//! The start of a flight: the caller that decided to fetch registers the
//! flight its waiters wait on, then runs it on its own thread (alone, or
//! for the fleet sharing its cache) and lands it.

use std::sync::Arc;

use super::flight::{Fetch, FetchContext, Flight, HeldLog, Pause, fetch_with_retries};
use super::landing::Landing;
use super::{ManagedToken, Moment, Served, State, TokenSource};
use crate::error::Error;

/// A fetch this caller starts: what, the flight its waiters wait on, and
/// the token cached at the start (kept out of the fetch's messages).
pub(super) struct Departure {
    fetch: Fetch,
    flight: Arc<Flight>,
    cached_token: Option<Box<str>>,
    /// The shared file's generation the decision to fetch was made on.
    shared_generation: u64,
    /// A renewal after a refusal: its token request's timestamp is spread.
    renewal: bool,
}

impl ManagedToken {
    pub(super) fn start_flight(&self, state: &mut State, now: Moment, fetch: Fetch) -> Departure {
        let flight = Arc::new(Flight::default());
        state.flight = Some(flight.clone());
        state.last_fetch_started = Some(now);
        Departure {
            renewal: std::mem::take(&mut state.renewal_due) && matches!(fetch, Fetch::Get),
            fetch,
            flight,
            cached_token: state.current.as_ref().map(|c| Box::from(&*c.token)),
            shared_generation: state.shared_generation,
        }
    }

    /// Runs a flight on this thread, publishes its outcome and wakes its
    /// waiters. Returns the outcome and the log lines for the caller to emit
    /// now that the flight has ended.
    pub(super) fn fly(
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
            renewal,
        } = departure;
        flight.extend(deadline);
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
            renewal,
            flight: Some(&flight),
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
}
