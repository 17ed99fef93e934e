//! One managed fetch ("flight"): a Get or Refresh with its retries, the
//! signal its waiters wait on, and the log lines it holds back until it has
//! ended (a log callback may call the library, so it never runs while a
//! flight is open).

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::cached::Obtained;
use super::counters::Counters;
use super::{ManagedOptions, TokenSource};
use crate::error::{Error, ErrorKind, service_status};
use crate::log::{LogLevel, Logger, token_hint};
use crate::response::Token;
use crate::time::{Clock, Moment};

/// What one fetch does.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Fetch {
    Get,
    Refresh(Box<str>),
}

impl std::fmt::Debug for Fetch {
    // Never the token itself: a hint of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetch::Get => f.write_str("Get"),
            Fetch::Refresh(token) => write!(f, "Refresh({})", token_hint(token)),
        }
    }
}

impl Fetch {
    /// The operation's name in log messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Fetch::Get => "Get",
            Fetch::Refresh(_) => "Refresh",
        }
    }

    /// How a token this fetch answers was obtained.
    pub(crate) fn obtains(&self) -> Obtained {
        match self {
            Fetch::Get => Obtained::ByGet,
            Fetch::Refresh(_) => Obtained::ByRefresh,
        }
    }
}

/// The end of a flight, for the callers waiting for it. A waiter holds its
/// own reference, so a flight abandoned by a fork (or a panic) only leaves
/// waiters that time out, never a lock held.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    ended: Mutex<bool>,
    signal: Condvar,
    /// The latest deadline among its caller and its waiters: the fetch runs
    /// on it, never on a shorter one left to the caller that started it.
    deadline: Mutex<Option<Moment>>,
}

impl Flight {
    /// A caller with `deadline` flies or joins: the flight may now run until
    /// then, if that is later.
    pub(crate) fn extend(&self, deadline: Moment) {
        let mut current = self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none_or(|current| deadline.monotonic_ns > current.monotonic_ns) {
            *current = Some(deadline);
        }
    }

    /// The flight's deadline: the latest of `at_least` and its callers'.
    pub(crate) fn deadline(&self, at_least: Moment) -> Moment {
        match *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(latest) if latest.monotonic_ns > at_least.monotonic_ns => latest,
            _ => at_least,
        }
    }

    /// Waits until the flight has ended, at most `timeout`; true if it has.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        let (ended, _) = self
            .signal
            .wait_timeout_while(ended, timeout, |ended| !*ended)
            .unwrap_or_else(PoisonError::into_inner);
        *ended
    }

    /// Wakes every waiter.
    pub(crate) fn end(&self) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.notify_all();
    }
}

/// Log lines held back until the flight has ended.
#[derive(Debug, Default)]
pub(crate) struct HeldLog(Vec<(LogLevel, String)>);

impl HeldLog {
    pub(crate) fn push(&mut self, level: LogLevel, message: String) {
        self.0.push((level, message));
    }

    /// Hands the lines to `logger`, if there is one.
    pub(crate) fn emit(self, logger: Option<&Logger>) {
        if let Some(logger) = logger {
            for (level, message) in self.0 {
                logger.log(level, &message);
            }
        }
    }
}

/// How a fetch waits between attempts: false when it must give up (the
/// client is being freed).
pub(crate) type Pause<'a> = &'a dyn Fn(Duration) -> bool;

/// What a fetch needs besides its source.
pub(crate) struct FetchContext<'a> {
    pub(crate) options: &'a ManagedOptions,
    pub(crate) clock: &'a Clock,
    pub(crate) counters: &'a Counters,
    pub(crate) pause: Pause<'a>,
    /// The token cached when the fetch started, kept out of its messages.
    pub(crate) cached_token: Option<&'a str>,
    /// A renewal after an API call found the token refused: other hosts of
    /// the app key renew at the same instant, so its timestamp is spread
    /// (`time::timestamp::spreading`).
    pub(crate) renewal: bool,
    /// The flight, whose waiters extend its deadline (`None`: none to wait).
    pub(crate) flight: Option<&'a Flight>,
}

impl FetchContext<'_> {
    /// The deadline the fetch runs on now: `deadline`, or a waiter's later.
    fn deadline(&self, deadline: Moment) -> Moment {
        self.flight
            .map_or(deadline, |flight| flight.deadline(deadline))
    }
}

/// A token a fetch got: when its request was sent, and by which operation.
pub(crate) struct Fetched {
    pub(crate) token: Token,
    pub(crate) sent: Moment,
    pub(crate) obtained: Obtained,
}

/// Runs `fetch` and, if the gateway refuses to refresh (1203, 1204) or a
/// Refresh's answer was lost (it may have retired the token), a Get, with
/// retries, until `deadline`. A Refresh whose answer was lost is sent again
/// only when the Get tells it did not happen: the token it returns is the
/// one the Refresh was for (a Refresh that happened retired that one).
pub(crate) fn fetch_with_retries(
    source: &dyn TokenSource,
    fetch: Fetch,
    deadline: Moment,
    context: &FetchContext<'_>,
    log: &mut HeldLog,
) -> Result<Fetched, Error> {
    let fetched = |(token, sent), obtained| Fetched {
        token,
        sent,
        obtained,
    };
    let obtained = fetch.obtains();
    match one_operation_with_retries(source, &fetch, deadline, context, log) {
        Err(e)
            if matches!(fetch, Fetch::Refresh(_))
                && !context.deadline(deadline).has_passed(context.clock.now())
                && (e.answer_lost()
                    || e.kind() == ErrorKind::Service
                        && matches!(
                            e.service_status(),
                            service_status::TOKEN_EXPIRED | service_status::REFRESH_FAILED
                        )) =>
        {
            log.push(
                LogLevel::Info,
                match e.answer_lost() {
                    true => format!("refresh answer lost ({e}); getting the current token"),
                    false => format!("refresh refused ({e}); getting a new token"),
                },
            );
            let current = one_operation_with_retries(source, &Fetch::Get, deadline, context, log)?;
            match &fetch {
                Fetch::Refresh(refreshed)
                    if e.answer_lost()
                        && *current.0.access_token == **refreshed
                        && !context.deadline(deadline).has_passed(context.clock.now()) =>
                {
                    log.push(
                        LogLevel::Info,
                        "the gateway still has the token the lost Refresh was for: it did not \
                         happen; refreshing again"
                            .to_string(),
                    );
                    match one_operation_with_retries(source, &fetch, deadline, context, log) {
                        Ok(answer) => Ok(fetched(answer, Obtained::ByRefresh)),
                        // Lost again, or refused: the Get's token is valid.
                        Err(_) => Ok(fetched(current, Obtained::ByGet)),
                    }
                }
                _ => Ok(fetched(current, Obtained::ByGet)),
            }
        }
        outcome => outcome.map(|answer| fetched(answer, obtained)),
    }
}

/// A Refresh alone (`enos_client_refresh_token`), told apart when its
/// answer is lost: a Get then says whether it happened (the gateway's token
/// changed: that is the Refresh's result) or not (the same token: the
/// Refresh is sent once more, which is then safe). Each request ends by
/// `deadline`. On failure, the error of the Refresh.
pub(crate) fn refresh_telling_lost_answers(
    source: &dyn TokenSource,
    refreshed: &str,
    deadline: Instant,
) -> Result<Token, Error> {
    let refresh = Fetch::Refresh(refreshed.into());
    match source.fetch(&refresh, Some(deadline)) {
        Err(lost) if lost.answer_lost() => match source.fetch(&Fetch::Get, Some(deadline)) {
            Ok(current) if current.access_token != refreshed => Ok(current),
            Ok(_) if Instant::now() < deadline => source.fetch(&refresh, Some(deadline)),
            _ => Err(lost),
        },
        outcome => outcome,
    }
}

fn one_operation_with_retries(
    source: &dyn TokenSource,
    fetch: &Fetch,
    deadline: Moment,
    context: &FetchContext<'_>,
    log: &mut HeldLog,
) -> Result<(Token, Moment), Error> {
    let what = fetch.name();
    let mut retries_left = context.options.max_retries;
    let mut replays_left = MAX_REPLAY_RETRIES;
    let mut attempt: u32 = 0;
    // Spread: a renewal, and any retry of a request answered 1001.
    let mut spread = context.renewal;
    loop {
        attempt += 1;
        let sent = context.clock.now();
        let attempt_deadline = context.deadline(deadline);
        let answer = crate::time::timestamp::spreading(spread, || {
            source.fetch(fetch, Some(context.clock.instant_of(attempt_deadline)))
        });
        let error = match answer {
            Ok(token) => {
                log.push(
                    LogLevel::Info,
                    format!(
                        "{what} succeeded: token {}, expires in {} s",
                        token_hint(&token.access_token),
                        token.expire_s
                    ),
                );
                return Ok((token, sent));
            }
            Err(error) => match context.cached_token {
                Some(token) => error.redacting(token),
                None => error,
            },
        };
        let extended = context.deadline(deadline).monotonic_ns > attempt_deadline.monotonic_ns;
        let delay = if error.kind() == ErrorKind::Timeout && extended && !error.answer_lost() {
            // The attempt ran out of a deadline a waiter has since pushed
            // back: again at once, on the later one (no retry used).
            Some(Duration::ZERO)
        } else if error.service_status() == service_status::REPEATED_REQUEST && replays_left > 0 {
            // A 1001: another process (on another host: a shared cache draws
            // unique timestamps for one host's) sent the same timestamp.
            // Such processes tend to fetch at the same instant (a sibling's
            // Refresh retired their token), so each waits a random few
            // milliseconds, and draws a spread timestamp.
            replays_left -= 1;
            spread = true;
            Some(Duration::from_millis(
                1 + (crate::time::random_fraction() * 49.0) as u64,
            ))
        } else if error.is_transient() && !error.answer_lost() && retries_left > 0 {
            retries_left -= 1;
            Some(backoff(context.options.base_backoff, attempt))
        } else {
            None
        };
        let now = context.clock.now();
        let Some(delay) =
            delay.filter(|d| !context.deadline(deadline).has_passed(now.later_by(*d)))
        else {
            log.push(
                LogLevel::Warn,
                format!("{what} failed (attempt {attempt}): {error}"),
            );
            return Err(error);
        };
        log.push(
            LogLevel::Warn,
            format!(
                "{what} failed (attempt {attempt}): {error}; retrying in {} ms",
                delay.as_millis()
            ),
        );
        Counters::add(&context.counters.retries);
        if !(context.pause)(delay) {
            return Err(error);
        }
    }
}

/// A 1001 (repeated timestamp) is retried this many times, whatever the
/// retry settings: it is no failure of the gateway.
const MAX_REPLAY_RETRIES: u32 = 3;

/// `base * 2^(attempt-1)`, the upper half of it random ("equal jitter").
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << (attempt - 1).min(16));
    full / 2 + (full / 2).mul_f64(crate::time::random_fraction())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_equal_jitter() {
        let base = Duration::from_millis(200);
        for attempt in 1..5 {
            let full = base * (1 << (attempt - 1));
            let delay = backoff(base, attempt);
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
        }
    }

    #[test]
    fn a_flight_wakes_its_waiters_or_lets_them_time_out() {
        let flight = std::sync::Arc::new(Flight::default());
        assert!(!flight.wait(Duration::from_millis(1)));
        let waiter = {
            let flight = flight.clone();
            std::thread::spawn(move || flight.wait(Duration::from_secs(60)))
        };
        flight.end();
        assert!(waiter.join().unwrap());
        assert!(flight.wait(Duration::ZERO), "ended stays ended");
    }
}
