//! One API call across its attempts: a refused token renewed and the call
//! sent once more; a rate limit or an outage waited out and the call sent
//! again when that is safe (`retry.rs`); the answer kept in memory or
//! streamed to its output, a broken download resumed (`resume.rs`).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::attempt::Opened;
use super::body::BodyView;
use super::output::{Output, ProgressFn, ProgressMeter, Sink};
use super::response::Response;
use super::resume::{self, Resumable};
use super::retry::{self, RetryBudget, Retryable};
use crate::error::{Error, ErrorKind};
use crate::log::{LogLevel, Logger};
use crate::managed::{Counters, ManagedToken, TokenSource};
use crate::secret::AppSecret;
use crate::transport::{Timing, Transport};

/// What a call uses of its client.
pub(crate) struct CallContext<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) managed: &'a ManagedToken,
    pub(crate) source: &'a dyn TokenSource,
    pub(crate) app_secret: &'a AppSecret,
    pub(crate) logger: Option<&'a Logger>,
    pub(crate) max_response_bytes: u64,
    pub(crate) total_timeout: Duration,
    /// Retries of a rate-limited or failed call, and resumes of a broken
    /// download in a row without progress.
    pub(crate) max_retries: u32,
    pub(crate) base_backoff: Duration,
    pub(crate) retry_budget: &'a RetryBudget,
}

/// One call, as a request object or the one-line form describes it.
pub(crate) struct CallSpec<'a> {
    pub(crate) method: &'a str,
    /// Path and query, relative to the gateway URL.
    pub(crate) path: &'a str,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: BodyView<'a>,
    pub(crate) output: &'a Output,
    pub(crate) progress: Option<&'a ProgressFn>,
    pub(crate) timeout: Option<Duration>,
}

impl CallSpec<'_> {
    /// The query as sent (what is signed), without `?`.
    pub(crate) fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, query)| query)
    }

    /// Idempotent methods may be sent again when nothing says the first
    /// send was processed.
    pub(crate) fn idempotent(&self) -> bool {
        matches!(self.method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS")
    }

    fn streamed(&self) -> bool {
        self.body.streamed() || !matches!(self.output, Output::Memory)
    }
}

/// Makes the call described by `spec`; any HTTP answer is `Ok`.
pub(crate) fn send(context: &CallContext<'_>, spec: &CallSpec<'_>) -> Result<Response, Error> {
    let started = Instant::now();
    let cap = spec.timeout.map(|timeout| started + timeout);
    let timing = if spec.streamed() {
        Timing::Streamed {
            stall: context.total_timeout,
            cap,
        }
    } else {
        Timing::Whole(cap.unwrap_or(started + context.total_timeout))
    };
    let call = Call {
        context,
        spec,
        timing,
        meter: ProgressMeter::new(spec.progress),
        attempts: Cell::new(0),
    };
    let result = call.run();
    call.meter.finish();
    if let Ok(response) = &result {
        Counters::add(&context.managed.counters.api_calls);
        if context.logger.is_some() {
            let request_id = response
                .request_id()
                .map_or(String::new(), |id| format!(", requestId {id}"));
            let line = format!(
                "{} {} -> HTTP {} in {} ms ({} attempt{}{request_id})",
                spec.method,
                super::path_for_logs(spec.path),
                response.status,
                started.elapsed().as_millis(),
                response.attempts,
                if response.attempts == 1 { "" } else { "s" },
            );
            call.log(LogLevel::Debug, &line);
        }
    }
    result
}

/// One call across its attempts.
pub(super) struct Call<'c> {
    pub(super) context: &'c CallContext<'c>,
    pub(super) spec: &'c CallSpec<'c>,
    pub(super) timing: Timing,
    pub(super) meter: ProgressMeter<'c>,
    /// Sends made so far.
    pub(super) attempts: Cell<u32>,
}

/// What the call does after an answer or a failure that may be retried.
enum Next {
    /// Wait this long, then send again.
    Retry(Duration),
    /// Give the caller what there is.
    Stop,
}

impl<'c> Call<'c> {
    pub(super) fn log(&self, level: LogLevel, message: &str) {
        if let Some(logger) = self.context.logger {
            logger.log(level, message);
        }
    }

    fn run(&self) -> Result<Response, Error> {
        let (context, spec) = (self.context, self.spec);
        let replayable = spec.body.replayable();
        let (mut renewed, mut retries) = (false, 0u32);
        loop {
            let mut token = self.token()?;
            let sent = self.send_attempt(&token, spec.headers);
            let first = self.attempts.get() <= 1;
            let opened = match sent {
                Ok(opened) => opened,
                Err(error) => {
                    wipe_string(&mut token);
                    if crate::transport::is_cancelled() {
                        return Err(error);
                    }
                    let connect_failed = crate::transport::last_connect_failed();
                    let retryable = retry::failure_is_retried(
                        &error,
                        spec.idempotent() && replayable,
                        connect_failed && replayable,
                    );
                    match retryable.map(|why| self.next(why, retries, None, error.message())) {
                        Some(Next::Retry(wait)) => {
                            retries += 1;
                            self.wait(wait);
                            continue;
                        }
                        _ => return Err(error),
                    }
                }
            };
            let refused = super::token_refused(opened.status, &opened.prefix)
                && (opened.status == 401 || opened.complete);
            if refused && !renewed && replayable && self.time_left().is_ok() {
                renewed = true;
                // Compare-and-drop: a token another thread renewed meanwhile stays.
                context.managed.invalidate(Some(&token));
                Counters::add(&context.managed.counters.token_renewals);
                self.log(
                    LogLevel::Warn,
                    &format!(
                        "{} {}: the token was refused (HTTP {}); renewing it and sending the call once more",
                        spec.method,
                        super::path_for_logs(spec.path),
                        opened.status
                    ),
                );
                wipe_string(&mut token);
                continue;
            }
            wipe_string(&mut token);
            let retryable = retry::status_is_retried(opened.status, spec.idempotent())
                .filter(|_| replayable && !refused);
            match retryable {
                None => {
                    if first {
                        context.retry_budget.put_back_one();
                    }
                    return self.deliver(opened);
                }
                Some(why) => {
                    let asked = opened.header("retry-after").and_then(|value| {
                        let now_ms = crate::time::timestamp::wall_clock_ms();
                        retry::retry_after(value, now_ms, crate::time::random_fraction())
                    });
                    let what = format!("HTTP {}", opened.status);
                    match self.next(why, retries, asked, &what) {
                        Next::Retry(wait) => {
                            drop(opened);
                            retries += 1;
                            self.wait(wait);
                        }
                        Next::Stop => return self.deliver(opened),
                    }
                }
            }
        }
    }

    /// Whether to retry after `what` (a status or a failure), the
    /// `retries` made so far and the wait a `Retry-After` `asked`: within
    /// the client's retries, the call's deadline and the retry budget.
    fn next(&self, why: Retryable, retries: u32, asked: Option<Duration>, what: &str) -> Next {
        let context = self.context;
        if retries >= context.max_retries || crate::transport::is_cancelled() {
            return Next::Stop;
        }
        let wait = asked.unwrap_or_else(|| {
            retry::backoff(
                retries + 1,
                context.base_backoff,
                crate::time::random_fraction(),
            )
        });
        let (method, path) = (self.spec.method, super::path_for_logs(self.spec.path));
        let denied = if self.ends_before(wait) {
            Some(format!(
                "a wait of {} ms would end after the call's deadline",
                wait.as_millis()
            ))
        } else if !context.retry_budget.try_take(why.cost()) {
            Some(
                "the client's retry budget is spent (the gateway is failing: retries would only add load)"
                    .to_string(),
            )
        } else {
            None
        };
        if let Some(why) = denied {
            Counters::add(&context.managed.counters.api_retries_denied);
            self.log(
                LogLevel::Info,
                &format!("{method} {path}: {what}; not retried: {why}"),
            );
            return Next::Stop;
        }
        Counters::add(&context.managed.counters.api_retries);
        self.log(
            LogLevel::Info,
            &format!(
                "{method} {path}: {what}; retrying in {} ms (retry {} of {})",
                wait.as_millis(),
                retries + 1,
                context.max_retries
            ),
        );
        Next::Retry(wait)
    }

    /// Whether a wait of `wait` from now ends after the call's deadline.
    fn ends_before(&self, wait: Duration) -> bool {
        let deadline = match self.timing {
            Timing::Whole(deadline) => Some(deadline),
            Timing::Streamed { cap, .. } => cap,
        };
        deadline.is_some_and(|deadline| Instant::now() + wait >= deadline)
    }

    /// Sleeps before a retry; a call cancelled meanwhile stops waiting.
    fn wait(&self, wait: Duration) {
        crate::transport::sleep_unless_cancelled(wait);
    }

    /// Time left for the call's next step.
    pub(super) fn time_left(&self) -> Result<Duration, Error> {
        let left = match self.timing {
            Timing::Whole(deadline) => deadline.saturating_duration_since(Instant::now()),
            Timing::Streamed { stall, cap } => cap.map_or(stall, |cap| {
                cap.saturating_duration_since(Instant::now()).min(stall)
            }),
        };
        if left.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} {}: no answer within the overall timeout",
                    self.spec.method,
                    super::path_for_logs(self.spec.path)
                ),
            ));
        }
        Ok(left)
    }

    pub(super) fn count_attempts(&self, sends: u32) {
        self.attempts.set(self.attempts.get() + sends);
    }

    /// The answer to the caller: kept in memory, or streamed to the output.
    fn deliver(&self, mut opened: Opened<'c>) -> Result<Response, Error> {
        let headers = std::mem::take(&mut opened.headers);
        if matches!(self.spec.output, Output::Memory) {
            let body = std::mem::take(&mut opened.prefix);
            return Ok(self.response(opened.status, headers, body));
        }
        let resumable = Resumable::of(self.spec, opened.status, &headers);
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.trim().parse().ok());
        self.meter.set_receive_total(length);
        let stall = match self.timing {
            Timing::Streamed { stall, .. } => stall,
            Timing::Whole(_) => self.context.total_timeout,
        };
        let mut sink = Sink::new(self.spec.output, &self.meter, stall);
        let status = opened.status;
        resume::stream(self, opened, resumable, &mut sink)?;
        Ok(self.response(status, headers, Vec::new()))
    }

    fn response(&self, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
        Response {
            status,
            headers,
            body,
            attempts: self.attempts.get(),
            request_id: std::sync::OnceLock::new(),
        }
    }
}

pub(super) fn wipe_string(text: &mut str) {
    // SAFETY: zero bytes keep the String valid UTF-8.
    crate::secret::wipe(unsafe { text.as_bytes_mut() });
}
