//! One request over a [`Transport`]: sent with its body (bytes, or a reader
//! streamed as it is sent), answered with a head whose body the caller then
//! reads whole or streams. Owns the resend rule for a stale kept-alive
//! connection, the deadlines of whole and streamed exchanges, and the
//! classification of every failure by cause.

use std::borrow::Cow;
use std::io::Read;
use std::time::{Duration, Instant};

use ureq::SendBody;
use ureq::http::{self, Method};

use super::answer::{BodySource, OpenAnswer};
use super::direct::DirectBody;
use super::http1::c_ready;
use super::{HttpAnswer, MAX_RESPONSE_BODY_BYTES, Transport, classify};
use super::{peer_issuer, trace};
use crate::error::Error;

/// A request is sent again at most this many times because its pooled
/// connection turned out to be closed.
const MAX_STALE_CONNECTION_RETRIES: u32 = 2;

/// The body of one attempt.
pub(crate) enum OutgoingBody<'a> {
    /// These bytes (none for an empty body).
    Bytes(Cow<'a, [u8]>),
    /// Exactly `length` bytes, read from `reader` as they are sent: the
    /// reader fails rather than give fewer or more.
    Stream {
        length: u64,
        reader: Box<dyn Read + 'a>,
    },
}

/// What one attempt sends: the library's headers (wiped when dropped:
/// they hold the token), the caller's headers, and the body. Made anew for
/// every attempt: a request never repeats its timestamp.
pub(crate) struct Attempt<'a> {
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) extra_headers: &'a [(String, String)],
    pub(crate) body: OutgoingBody<'a>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        for (_, value) in &mut self.headers {
            // SAFETY: zero bytes keep the String valid UTF-8 (a header may
            // hold a token).
            crate::secret::wipe(unsafe { value.as_bytes_mut() });
        }
        if let OutgoingBody::Bytes(Cow::Owned(body)) = &mut self.body {
            crate::secret::wipe(body); // a Refresh body holds a token
        }
    }
}

/// How long an exchange may take.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timing {
    /// Everything, the answer's body included, by this instant.
    Whole(Instant),
    /// A streamed body or answer: each read and write must make progress
    /// within `stall`, the answer's head must come within `stall` of the
    /// request's last byte, and nothing may go on past `cap`.
    Streamed {
        stall: Duration,
        cap: Option<Instant>,
    },
}

impl Timing {
    /// Whether a new attempt may start now.
    fn has_time_left(&self) -> bool {
        match self {
            Timing::Whole(deadline) => Instant::now() < *deadline,
            Timing::Streamed { cap, .. } => cap.is_none_or(|cap| Instant::now() < cap),
        }
    }
}

/// One exchange: where it goes, how long it may take, and whether it may
/// be sent again on a new connection when a reused one turns out closed.
pub(crate) struct Exchange<'a> {
    pub(crate) method: &'a str,
    /// Path and query, appended to the gateway URL.
    pub(crate) path_and_query: &'a str,
    pub(crate) timing: Timing,
    /// An idempotent request whose body can be made again: resent, like
    /// libcurl does, when a reused connection failed before any byte of
    /// the answer. Any other request is sent once; a failure after it
    /// reached the server is marked [`Error::answer_lost`].
    pub(crate) resend_on_stale_connection: bool,
    /// An answer with a `Content-Encoding` (none is asked for) is handed
    /// over as it came, header included (an API call: any HTTP answer is
    /// the caller's), instead of refused (a token answer, which is parsed).
    pub(crate) pass_encoded_answers: bool,
}

/// A whole answer: status, headers (in order, names lower case) and body,
/// which is zeroed when dropped (it may hold a token).
pub(crate) struct WholeAnswer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Drop for WholeAnswer {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

impl Transport {
    /// POSTs the JSON that `make_body` returns to `path` (appended to the
    /// gateway URL) and reads the whole answer, whatever its HTTP status.
    /// With a `deadline`, the call ends by then even when the client's
    /// overall timeout would allow more. See [`Exchange`] for when it is
    /// sent again.
    pub fn post_json(
        &self,
        path: &str,
        make_body: impl Fn() -> Vec<u8>,
        deadline: Option<Instant>,
        idempotent: bool,
    ) -> Result<HttpAnswer, Error> {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + self.options.total_timeout);
        let exchange = Exchange {
            method: "POST",
            path_and_query: path,
            timing: Timing::Whole(deadline),
            resend_on_stale_connection: idempotent,
            pass_encoded_answers: false,
        };
        let mut answer = self.exchange_whole(
            &exchange,
            &mut || {
                Ok(Attempt {
                    headers: vec![("content-type", "application/json;charset=UTF-8".into())],
                    extra_headers: &[],
                    body: OutgoingBody::Bytes(Cow::Owned(make_body())),
                })
            },
            MAX_RESPONSE_BODY_BYTES,
        )?;
        Ok(HttpAnswer {
            status: answer.status,
            body: std::mem::take(&mut answer.body),
        })
    }

    /// Sends the exchange and reads the whole answer, at most `max_body`
    /// bytes of body.
    pub(crate) fn exchange_whole<'a>(
        &self,
        exchange: &Exchange<'_>,
        make_attempt: &mut dyn FnMut() -> Result<Attempt<'a>, Error>,
        max_body: u64,
    ) -> Result<WholeAnswer, Error> {
        let mut answer = self.open(exchange, make_attempt)?;
        let (status, headers) = (answer.status, std::mem::take(&mut answer.headers));
        match answer.read_all(max_body) {
            Ok(body) => Ok(WholeAnswer {
                status,
                headers,
                body,
            }),
            Err(e) if !exchange.resend_on_stale_connection => {
                Err(e.with_answer_lost("the server may have processed the request"))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends the exchange and waits for the answer's head; the attempt is
    /// made anew by `make_attempt` for each send.
    pub(crate) fn open<'a>(
        &self,
        exchange: &Exchange<'_>,
        make_attempt: &mut dyn FnMut() -> Result<Attempt<'a>, Error>,
    ) -> Result<OpenAnswer<'_>, Error> {
        let mut stale_connections_left = if exchange.resend_on_stale_connection {
            MAX_STALE_CONNECTION_RETRIES
        } else {
            0
        };
        loop {
            trace::start();
            let attempt = make_attempt()?;
            let result = self.send_once(exchange, attempt);
            let trace = trace::current();
            let stale_pooled_connection = !trace.opened_connection && !trace.answer_started;
            match result {
                // Closed or reset, not timed out: a slow server is not a stale connection.
                Err(e)
                    if stale_pooled_connection
                        && e.kind() == crate::ErrorKind::Connect
                        && stale_connections_left > 0
                        && exchange.timing.has_time_left() =>
                {
                    stale_connections_left -= 1;
                }
                // Written (or perhaps written) on an open connection, no answer.
                Err(e)
                    if !exchange.resend_on_stale_connection
                        && !trace.connect_failed
                        && e.http_status() == 0
                        && matches!(
                            e.kind(),
                            crate::ErrorKind::Connect
                                | crate::ErrorKind::Timeout
                                | crate::ErrorKind::Tls
                                | crate::ErrorKind::BadResponse
                        ) =>
                {
                    return Err(e.with_answer_lost("the server may have processed the request"));
                }
                result => return result,
            }
        }
    }

    fn send_once(
        &self,
        exchange: &Exchange<'_>,
        mut attempt: Attempt<'_>,
    ) -> Result<OpenAnswer<'_>, Error> {
        let (agent, in_progress) = self.agent();
        let method = Method::from_bytes(exchange.method.as_bytes())
            .map_err(|_| Error::invalid_argument("method is not an HTTP token"))?;
        let (named_timeout, deadline) = self.named_timeout(exchange.timing);
        let context = ErrorContext {
            transport: self,
            phase: classify::Phase::Exchange,
            named_timeout,
            deadline,
            body_limit: MAX_RESPONSE_BODY_BYTES,
        };
        let (status, headers, body) = match &self.direct {
            Some(direct) => {
                let (head, taken) = direct
                    .send(
                        agent.config(),
                        exchange.method,
                        exchange.path_and_query,
                        &mut attempt,
                        &exchange.timing,
                    )
                    .map_err(|e| context.classify(e))?;
                drop(attempt);
                check_encodings(&head.headers, exchange.pass_encoded_answers)
                    .map_err(|e| e.with_http_status(head.status))?;
                let (framing, reusable) = head
                    .framing(exchange.method)
                    .map_err(|e| context.classify(super::direct::malformed(e)))?;
                let body = DirectBody::new(framing, reusable, taken, exchange.timing);
                (head.status, head.headers, BodySource::Direct(body))
            }
            None => {
                let response = self.send_through_ureq(&agent, method, exchange, &mut attempt);
                let response = response.map_err(|e| context.classify(e))?;
                drop(attempt);
                let status = response.status().as_u16();
                let headers: Vec<(String, String)> = response
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        (c_ready(name.as_str().as_bytes()), c_ready(value.as_bytes()))
                    })
                    .collect();
                check_encodings(&headers, exchange.pass_encoded_answers)
                    .map_err(|e| e.with_http_status(status))?;
                (status, headers, BodySource::Ureq(response.into_body()))
            }
        };
        Ok(OpenAnswer {
            transport: self,
            status,
            headers,
            body,
            named_timeout,
            in_progress,
        })
    }

    /// Sends the attempt through ureq (a proxied connection).
    fn send_through_ureq(
        &self,
        agent: &ureq::Agent,
        method: Method,
        exchange: &Exchange<'_>,
        attempt: &mut Attempt<'_>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let url = self.gateway.join(exchange.path_and_query);
        let mut builder = http::Request::builder().method(method).uri(&url);
        for (name, value) in &attempt.headers {
            // A static name is taken as it is: no parsing into a new buffer.
            builder = builder.header(http::HeaderName::from_static(name), value.as_str());
        }
        for (name, value) in attempt.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        match &mut attempt.body {
            OutgoingBody::Bytes(bytes) => {
                let request = builder.body(&bytes[..])?;
                agent.run(self.configured(agent, request, exchange.timing))
            }
            OutgoingBody::Stream { length, reader } => {
                let request = builder
                    .header("content-length", length.to_string())
                    .body(SendBody::from_reader(reader))?;
                agent.run(self.configured(agent, request, exchange.timing))
            }
        }
    }

    /// The timeout a failure's message names, and the deadline (if any).
    fn named_timeout(&self, timing: Timing) -> (Duration, Option<Instant>) {
        let total_timeout = self.options.total_timeout;
        match timing {
            Timing::Whole(deadline) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let named = if remaining + Duration::from_millis(5) < total_timeout {
                    remaining.max(Duration::from_millis(1))
                } else {
                    total_timeout
                };
                (named, Some(deadline))
            }
            Timing::Streamed { stall, cap } => (stall, cap),
        }
    }

    /// The request with the timeouts of `timing`. A whole exchange whose
    /// deadline is the client's own keeps the agent's configuration (a
    /// few milliseconds do not warrant a request-level one).
    fn configured<B: ureq::AsSendBody>(
        &self,
        agent: &ureq::Agent,
        request: http::Request<B>,
        timing: Timing,
    ) -> http::Request<B> {
        let total_timeout = self.options.total_timeout;
        match timing {
            Timing::Whole(deadline) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining + Duration::from_millis(5) < total_timeout {
                    let timeout = remaining.max(Duration::from_millis(1));
                    // A request-level timeout still shares the agent's pool.
                    agent
                        .configure_request(request)
                        .timeout_global(Some(timeout))
                        .build()
                } else {
                    request
                }
            }
            Timing::Streamed { stall, cap } => {
                let cap = cap.map(|cap| {
                    cap.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1))
                });
                agent
                    .configure_request(request)
                    .timeout_global(cap)
                    .timeout_per_read(Some(stall))
                    .timeout_per_write(Some(stall))
                    .timeout_recv_response(Some(stall))
                    .build()
            }
        }
    }
}

/// What a failure's message needs to know of an exchange; the rest is
/// the transport's.
pub(super) struct ErrorContext<'t> {
    pub(super) transport: &'t Transport,
    pub(super) phase: classify::Phase,
    /// The timeout a message names.
    pub(super) named_timeout: Duration,
    /// Until when a certificate may still be looked at.
    pub(super) deadline: Option<Instant>,
    pub(super) body_limit: u64,
}

impl ErrorContext<'_> {
    pub(super) fn classify(&self, error: ureq::Error) -> Error {
        // A body source's own failure (a file that changed, a callback
        // that stopped the call), passed through the HTTP client.
        if let ureq::Error::Io(io) = &error {
            if let Some(carried) = Error::carried_by(io) {
                return carried;
            }
        }
        let transport = self.transport;
        let connect_timeout = transport.options.connect_timeout;
        // Only asked for a certificate that was not trusted, on a direct
        // connection, within what is left of the deadline.
        let presented_issuer = || {
            let left = self.deadline.map_or(connect_timeout, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let timeout = connect_timeout.min(left);
            (!transport.route.via_proxy() && !timeout.is_zero())
                .then(|| {
                    peer_issuer::issuer_presented_by(
                        transport.gateway.host(),
                        transport.gateway.port(),
                        timeout,
                    )
                })
                .flatten()
        };
        let context = classify::Context {
            authority: &transport.peer,
            via_proxy: transport.route.via_proxy(),
            https: transport.gateway.is_https(),
            ca_file: transport.options.ca_file.as_deref(),
            presented_issuer: &presented_issuer,
            connect_timeout: connect_timeout.min(self.named_timeout),
            total_timeout: self.named_timeout,
            body_limit: self.body_limit,
            phase: self.phase,
            trace: trace::current(),
        };
        classify::transport_error(error, &context)
    }
}

/// Refuses compressed bodies (none were asked for) unless `pass_encoded`,
/// and transfer codings other than `chunked`, which ureq would otherwise
/// read as a body that never ends.
pub(super) fn check_encodings(
    headers: &[(String, String)],
    pass_encoded: bool,
) -> Result<(), Error> {
    let shown = |value: &str| crate::error::sanitize_for_message(value, 40);
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    };
    if let Some(encoding) = values("content-encoding").next().filter(|_| !pass_encoded) {
        if !shown(encoding).eq_ignore_ascii_case("identity") {
            return Err(Error::bad_response(format!(
                "compressed response (Content-Encoding: {}) refused: none was asked for",
                shown(encoding)
            )));
        }
    }
    for coding in values("transfer-encoding") {
        let only_chunked = shown(coding)
            .split(',')
            .map(str::trim)
            .all(|c| c.eq_ignore_ascii_case("chunked"));
        if !only_chunked {
            return Err(Error::bad_response(format!(
                "response with Transfer-Encoding: {} refused: only chunked is supported",
                shown(coding)
            )));
        }
    }
    Ok(())
}
