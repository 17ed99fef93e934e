//! The managed token across processes: what a sibling wrote to the shared
//! file is taken over on the next call, and a fetch takes the fleet's lock,
//! then fetches only if no sibling did meanwhile (see [`crate::shared_cache`]).

use std::sync::Arc;
use std::time::Duration;

use super::cached::{CachedToken, Obtained};
use super::flight::{Fetch, FetchContext, Fetched, HeldLog, fetch_with_retries};
use super::{ManagedToken, Moment, State, TokenSource};
use crate::error::{Error, ErrorKind};
use crate::log::{LogLevel, token_hint};
use crate::response::Token;
use crate::shared_cache::{FleetLock, LockRefused, SharedSlot, SharedToken};

impl ManagedToken {
    /// What a sibling process wrote to the shared file: its new token, the
    /// news that the gateway rejected ours, or a pause after a failed fetch.
    pub(super) fn take_from_siblings(&self, state: &mut State, shared: SharedToken, now: Moment) {
        let ours = state
            .current
            .as_ref()
            .is_some_and(|c| *c.token == shared.token);
        if shared.invalidated {
            if ours {
                state.current = None;
            }
            return;
        }
        if ours {
            let current = state.current.as_ref().expect("ours");
            if shared.pause_until_wall_ms > now.wall_ms && current.is_valid(now) {
                let pause =
                    Duration::from_millis((shared.pause_until_wall_ms - now.wall_ms) as u64);
                let paused = current.paused(now, pause);
                state.current = Some(state.issue(paused));
            }
            return;
        }
        let newer = state
            .current
            .as_ref()
            .is_none_or(|c| shared.sent_wall_ms >= c.sent_wall_ms());
        self.known_tokens.remember(&shared.token);
        let sent = sent_moment(now, shared.sent_wall_ms);
        let token = self.to_cached(shared_token(&shared), sent, Obtained::ByGet);
        if newer && token.is_valid(now) {
            state.current = Some(state.issue(token));
            state.ever_had_token = true;
            state.last_failure = None;
        }
    }

    /// A flight with the shared file: under the fleet's lock, a token a
    /// sibling fetched since this flight was decided on is taken as it is
    /// (fresh) or refreshed (due); otherwise the flight's own fetch runs.
    /// A new token is written to the file before the lock is let go; the lock
    /// is returned so that landing can record a failure's pause for all.
    ///
    /// When the lock's holder keeps it past its lease or half of this
    /// flight's time (it is stopped or hung), a Get runs alone and is
    /// written only if no sibling wrote meanwhile; a Refresh is not sent
    /// (the token is still valid, and the holder may be refreshing it).
    #[allow(clippy::too_many_arguments)] // the flight's parts, passed on
    pub(super) fn fetch_for_the_fleet<'a>(
        &self,
        shared: &'a Arc<SharedSlot>,
        source: &dyn TokenSource,
        mut fetch: Fetch,
        decided_on: u64,
        deadline: Moment,
        context: &FetchContext<'_>,
        log: &mut HeldLog,
    ) -> (Result<Fetched, Error>, Option<FleetLock<'a>>) {
        let lock = match shared.lock(self.clock.instant_of(deadline)) {
            Ok(lock) => lock,
            Err(LockRefused(why)) => {
                return self.fetch_alone(
                    shared, source, fetch, decided_on, deadline, context, log, why,
                );
            }
        };
        let now = self.clock.now();
        if let Some(sibling) = lock
            .read(now.wall_ms)
            .filter(|t| t.generation != decided_on && !t.invalidated)
        {
            self.known_tokens.remember(&sibling.token);
            let sent = sent_moment(now, sibling.sent_wall_ms);
            let theirs = CachedToken::new(
                shared_token(&sibling),
                sent,
                self.options().refresh_margin,
                Obtained::ByGet,
                0.0,
            );
            if theirs.is_fresh(now) {
                log.push(
                    LogLevel::Info,
                    format!(
                        "took token {} from the shared cache: a sibling fetched it",
                        token_hint(&theirs.token)
                    ),
                );
                let fetched = Fetched {
                    token: shared_token(&sibling),
                    sent,
                    obtained: Obtained::ByGet,
                };
                return (Ok(fetched), Some(lock));
            }
            if theirs.is_valid(now) {
                fetch = Fetch::Refresh(sibling.token.as_str().into());
            }
        }
        let outcome = fetch_with_retries(source, fetch, deadline, context, log);
        if let Ok(Fetched { token, sent, .. }) = &outcome {
            lock.publish(&token.access_token, sent.wall_ms, token.expire_s, 0);
        }
        (outcome, Some(lock))
    }

    /// The fetch of a flight that could not get the fleet's lock.
    #[allow(clippy::too_many_arguments)] // the flight's parts, passed on
    fn fetch_alone<'a>(
        &self,
        shared: &'a Arc<SharedSlot>,
        source: &dyn TokenSource,
        fetch: Fetch,
        decided_on: u64,
        deadline: Moment,
        context: &FetchContext<'_>,
        log: &mut HeldLog,
        why: String,
    ) -> (Result<Fetched, Error>, Option<FleetLock<'a>>) {
        if matches!(fetch, Fetch::Refresh(_)) {
            log.push(LogLevel::Warn, format!("{why}: no Refresh this time"));
            return (Err(Error::new(ErrorKind::Timeout, why)), None);
        }
        log.push(LogLevel::Warn, why);
        let outcome = fetch_with_retries(source, fetch, deadline, context, log);
        // Written only if the file still holds what the flight started from.
        let lock = shared
            .try_lock()
            .filter(|lock| lock.generation() == decided_on);
        if let (Ok(Fetched { token, sent, .. }), Some(lock)) = (&outcome, &lock) {
            lock.publish(&token.access_token, sent.wall_ms, token.expire_s, 0);
        }
        (outcome, lock)
    }
}

/// The token of a shared file entry, as a gateway answer.
pub(super) fn shared_token(shared: &SharedToken) -> Token {
    Token {
        access_token: shared.token.clone(),
        expire_s: shared.expire_s,
    }
}

/// When a request sent at `sent_wall_ms` (by any process) was sent, on both
/// of this process's clocks as they read `now`.
pub(super) fn sent_moment(now: Moment, sent_wall_ms: i64) -> Moment {
    let ago_ms = now.wall_ms.saturating_sub(sent_wall_ms).max(0) as u64;
    Moment {
        monotonic_ns: now
            .monotonic_ns
            .saturating_sub(ago_ms.saturating_mul(1_000_000)),
        wall_ms: sent_wall_ms,
    }
}
