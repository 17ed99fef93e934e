//! One API call: the managed token, a signature with a fresh timestamp over
//! exactly the query (and JSON body) sent, the request over the client's
//! connections; a refused token renewed and the call sent once more; the
//! answer kept in memory or streamed to its output, a broken download
//! resumed.

use std::time::{Duration, Instant};

use super::body::BodyView;
use super::output::{Output, ProgressFn, ProgressMeter, Sink};
use super::response::Response;
use super::resume::{self, Resumable};
use crate::error::{Error, ErrorKind};
use crate::log::{LogLevel, Logger};
use crate::managed::{Counters, ManagedToken, TokenSource};
use crate::secret::AppSecret;
use crate::transport::{AnswerBody, Attempt, Exchange, Timing, Transport};

/// A token refusal is told from a JSON body at most this long.
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// What a call uses of its client.
pub(crate) struct CallContext<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) managed: &'a ManagedToken,
    pub(crate) source: &'a dyn TokenSource,
    pub(crate) app_secret: &'a AppSecret,
    pub(crate) logger: Option<&'a Logger>,
    pub(crate) max_response_bytes: u64,
    pub(crate) total_timeout: Duration,
    /// Resumes of a broken download in a row without progress.
    pub(crate) max_retries: u32,
    pub(crate) base_backoff: Duration,
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

    /// Idempotent methods may be sent again on a new connection when a
    /// reused one failed before any answer byte.
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
        attempts: std::cell::Cell::new(0),
    };
    let result = call.run();
    call.meter.finish();
    if let Ok(response) = &result {
        Counters::add(&context.managed.counters.api_calls);
        let line = format!(
            "{} {} -> HTTP {} in {} ms",
            spec.method,
            super::path_for_logs(spec.path),
            response.status,
            started.elapsed().as_millis()
        );
        log(context.logger, LogLevel::Debug, &line);
    }
    result
}

fn log(logger: Option<&Logger>, level: LogLevel, message: &str) {
    if let Some(logger) = logger {
        logger.log(level, message);
    }
}

/// One call across its attempts.
pub(super) struct Call<'c> {
    pub(super) context: &'c CallContext<'c>,
    pub(super) spec: &'c CallSpec<'c>,
    pub(super) timing: Timing,
    meter: ProgressMeter<'c>,
    /// Sends made so far.
    attempts: std::cell::Cell<u32>,
}

/// An answer whose head has arrived, with the start of its body when that
/// had to be read to tell a token refusal.
pub(super) struct Opened<'t> {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: AnswerBody<'t>,
    /// Bytes already read from `body`.
    pub(super) prefix: Vec<u8>,
    /// `prefix` is the whole body.
    pub(super) complete: bool,
}

impl Opened<'_> {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.prefix);
    }
}

impl<'c> Call<'c> {
    fn run(&self) -> Result<Response, Error> {
        let (context, spec) = (self.context, self.spec);
        let mut renewed = false;
        loop {
            let (opened, token) = self.open_attempt(spec.headers)?;
            let mut token = token;
            let refused = super::token_refused(opened.status, &opened.prefix)
                && (opened.status == 401 || opened.complete);
            let may_renew = !renewed && spec.body.replayable() && self.time_left().is_ok();
            if refused && may_renew {
                renewed = true;
                // Compare-and-drop: a token another thread renewed meanwhile stays.
                context.managed.invalidate(Some(&token));
                Counters::add(&context.managed.counters.token_renewals);
                log(
                    context.logger,
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
            return self.deliver(opened);
        }
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

    /// Gets the token, sends one attempt with `headers` and waits for the
    /// answer's head; reads as much of the body as tells a token refusal.
    /// Returns the token too, for a compare-and-drop.
    pub(super) fn open_attempt(
        &self,
        headers: &[(String, String)],
    ) -> Result<(Opened<'c>, String), Error> {
        let (context, spec) = (self.context, self.spec);
        let left = self.time_left()?;
        let token = context
            .managed
            .access_token_within(context.source, left, str::to_string)?;
        let shared = context.managed.shared_slot();
        let exchange = Exchange {
            method: spec.method,
            path_and_query: spec.path,
            timing: self.timing,
            resend_on_stale_connection: spec.idempotent() && spec.body.replayable(),
        };
        let count_bytes = spec.progress.is_some();
        let meter = &self.meter;
        let make_attempt = || -> Result<Attempt<'_>, Error> {
            let timestamp = crate::token_request::next_api_call_timestamp_ms(shared);
            let signature = crate::signing::api_signature_streaming(
                &token,
                spec.query(),
                timestamp,
                context.app_secret,
                |hasher| spec.body.feed_signature(hasher),
            )?;
            let opened = spec.body.open(meter, count_bytes)?;
            let mut attempt_headers = vec![
                ("apim-accesstoken", token.clone()),
                ("apim-signature", signature),
                ("apim-timestamp", timestamp.to_string()),
            ];
            if let Some(content_type) = opened.content_type {
                attempt_headers.push(("content-type", content_type));
            }
            Ok(Attempt {
                headers: attempt_headers,
                extra_headers: headers,
                body: opened.body,
            })
        };
        let mut counted = || {
            self.count_attempts(1);
            make_attempt()
        };
        let mut answer = context.transport.open(&exchange, &mut counted)?;
        let status = answer.status;
        let content_length = answer.content_length();
        let headers = std::mem::take(&mut answer.headers);
        let memory = matches!(spec.output, Output::Memory);
        let limit = if memory {
            context.max_response_bytes
        } else {
            u64::MAX
        };
        let mut body = answer.into_body(limit);
        let (prefix, complete) = if memory {
            let whole = body.read_all()?;
            self.meter.set_receive_total(content_length);
            self.meter.add_received(whole.len() as u64);
            (whole, true)
        } else if status == 401 || could_be_refusal(&headers, content_length) {
            read_up_to(&mut body, MAX_REFUSAL_BODY)?
        } else {
            (Vec::new(), false)
        };
        Ok((
            Opened {
                status,
                headers,
                body,
                prefix,
                complete,
            },
            token,
        ))
    }

    fn count_attempts(&self, sends: u32) {
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
        }
    }
}

fn wipe_string(text: &mut str) {
    // SAFETY: zero bytes keep the String valid UTF-8.
    crate::secret::wipe(unsafe { text.as_bytes_mut() });
}

/// Whether a streamed answer may be a token refusal in a JSON envelope:
/// a JSON (or untyped) body of at most 64 KiB.
fn could_be_refusal(headers: &[(String, String)], content_length: Option<u64>) -> bool {
    let content_type = headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.as_str());
    let json = content_type.is_none_or(crate::signing::signs_body);
    json && content_length.is_none_or(|length| length <= MAX_REFUSAL_BODY as u64)
}

/// Reads at most `max` bytes of `body`; true when that was all of it.
fn read_up_to(body: &mut AnswerBody<'_>, max: usize) -> Result<(Vec<u8>, bool), Error> {
    let mut prefix = vec![0u8; max + 1];
    let mut filled = 0;
    while filled < prefix.len() {
        let read = body.read(&mut prefix[filled..])?;
        if read == 0 {
            prefix.truncate(filled);
            return Ok((prefix, true));
        }
        filled += read;
    }
    Ok((prefix, false))
}
