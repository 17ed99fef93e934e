//! What the client tells the managed token from outside its own fetches: the
//! answer to a raw Get or Refresh (`enos_client_get_token`,
//! `enos_client_refresh_token`), and a token an API call rejected.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{ManagedToken, Moment, Obtained};
use crate::log::LogLevel;
use crate::response::Token;

impl ManagedToken {
    /// Installs `token`, answered to a raw Get or Refresh sent at `sent`, as
    /// the current one.
    pub(crate) fn install(&self, token: Token, sent: Moment, obtained: Obtained) {
        let entry = self.to_cached(token, sent, obtained);
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
        state.renewal_due |= forget;
        if forget {
            self.generation.fetch_add(1, Ordering::Release);
        }
        drop(state);
        // Tell the siblings, unless one of them is fetching (then a new
        // token is on its way anyway).
        let rejected_in_the_fleet = rejected.or(forgotten.as_ref().map(|t| &*t.token));
        if let (Some(shared), Some(token)) = (&self.shared, rejected_in_the_fleet) {
            if let Some(lock) = shared.try_lock() {
                lock.invalidate(token, self.clock.now().wall_ms);
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
}
