//! One request and its whole answer over a [`Transport`]: the token calls'
//! JSON POSTs and the API calls of `Client::request`, with the resend rule
//! for a stale kept-alive connection, per-request deadlines, and failures
//! classified by cause.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ureq::http::{self, Method};

use super::{HttpAnswer, MAX_RESPONSE_BODY_BYTES, Transport, classify, peer_issuer, trace};
use crate::error::Error;

/// A request is sent again at most this many times because its pooled
/// connection turned out to be closed.
const MAX_STALE_CONNECTION_RETRIES: u32 = 2;

/// One request to send: where, with which headers, and the body.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a str,
    /// Path and query, appended to the gateway URL.
    pub(crate) path_and_query: &'a str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: &'a [u8],
}

impl Drop for Outgoing<'_> {
    fn drop(&mut self) {
        for (_, value) in &mut self.headers {
            // SAFETY: zero bytes keep the String valid UTF-8 (a header may
            // hold a token).
            crate::secret::wipe(unsafe { value.as_bytes_mut() });
        }
    }
}

/// A whole answer: status, headers (in order, names lower case) and body.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Transport {
    /// POSTs the JSON that `make_body` returns to `path` (appended to the
    /// gateway URL) and reads the whole answer, whatever its HTTP status.
    /// With a `deadline`, the call ends by then even when the client's
    /// overall timeout would allow more. See [`Transport::exchange`] for
    /// when it is sent again.
    pub fn post_json(
        &self,
        path: &str,
        make_body: impl Fn() -> Vec<u8>,
        deadline: Option<Instant>,
        idempotent: bool,
    ) -> Result<HttpAnswer, Error> {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + self.options.total_timeout);
        let make_request = || {
            let body = make_body(); // holds the token to refresh: wiped below
            (
                vec![("content-type", "application/json;charset=UTF-8".to_string())],
                Cow::Owned(body),
            )
        };
        let answer = self.exchange_with(
            "POST",
            path,
            make_request,
            deadline,
            idempotent,
            MAX_RESPONSE_BODY_BYTES,
        )?;
        Ok(HttpAnswer {
            status: answer.status,
            body: answer.body,
        })
    }

    /// Sends `method` to `path_and_query` with the headers and body that
    /// `make_request` returns (made anew for every attempt: a request must
    /// never repeat its timestamp) and reads the whole answer, at most
    /// `max_body` bytes of body, by `deadline`.
    ///
    /// Like libcurl, an `idempotent` request that fails on a reused
    /// keep-alive connection before any byte of the answer arrived (the
    /// server closed the connection just as the request went out) is sent
    /// again on a new connection, within the same deadline. Any other
    /// request is sent once: a failure after it reached the server is
    /// marked [`Error::answer_lost`], since the server may have processed it.
    pub(crate) fn exchange_with<'body>(
        &self,
        method: &str,
        path_and_query: &str,
        make_request: impl Fn() -> (Vec<(&'static str, String)>, Cow<'body, [u8]>),
        deadline: Instant,
        idempotent: bool,
        max_body: u64,
    ) -> Result<Incoming, Error> {
        let mut stale_connections_left = if idempotent {
            MAX_STALE_CONNECTION_RETRIES
        } else {
            0
        };
        loop {
            trace::start();
            let (headers, mut body) = make_request();
            let outgoing = Outgoing {
                method,
                path_and_query,
                headers,
                body: &body,
            };
            let result = self.send_once(&outgoing, deadline, max_body);
            drop(outgoing);
            if let Cow::Owned(body) = &mut body {
                crate::secret::wipe(body); // a Refresh body holds a token
            }
            let trace = trace::current();
            let stale_pooled_connection = !trace.opened_connection && !trace.answer_started;
            match result {
                // Closed or reset, not timed out: a slow server is not a stale connection.
                Err(e)
                    if stale_pooled_connection
                        && e.kind() == crate::ErrorKind::Connect
                        && stale_connections_left > 0
                        && Instant::now() < deadline =>
                {
                    stale_connections_left -= 1;
                }
                // Written (or perhaps written) on an open connection, no answer.
                Err(e)
                    if !idempotent
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
        outgoing: &Outgoing<'_>,
        deadline: Instant,
        max_body: u64,
    ) -> Result<Incoming, Error> {
        let url = self.gateway.join(outgoing.path_and_query);
        let (agent, _in_progress) = self.agent();
        let method = Method::from_bytes(outgoing.method.as_bytes())
            .map_err(|_| Error::invalid_argument("method is not an HTTP token"))?;
        let mut builder = http::Request::builder().method(method).uri(&url);
        for (name, value) in &outgoing.headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(outgoing.body)
            .map_err(|e| Error::invalid_argument(format!("request cannot be built: {e}")))?;
        let mut total_timeout = self.options.total_timeout;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut configured = agent.configure_request(request);
        // A deadline from the caller (or a retry's) that is shorter than the
        // client's own timeout; a few milliseconds do not warrant the
        // request-level configuration.
        if remaining + Duration::from_millis(5) < total_timeout {
            total_timeout = remaining.max(Duration::from_millis(1));
            // A request-level timeout still shares the agent's pool.
            configured = configured.timeout_global(Some(total_timeout));
        }
        let request = configured.build();
        // Only asked for a certificate that was not trusted, on a direct
        // connection, within what is left of the deadline.
        let presented_issuer = || {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self.options.connect_timeout.min(left);
            (!self.route.via_proxy() && !timeout.is_zero())
                .then(|| {
                    peer_issuer::issuer_presented_by(
                        self.gateway.host(),
                        self.gateway.port(),
                        timeout,
                    )
                })
                .flatten()
        };
        let context = |phase| classify::Context {
            authority: &self.peer,
            via_proxy: self.route.via_proxy(),
            https: self.gateway.is_https(),
            ca_file: self.options.ca_file.as_deref(),
            presented_issuer: &presented_issuer,
            connect_timeout: self.options.connect_timeout.min(total_timeout),
            total_timeout,
            body_limit: max_body,
            phase,
            trace: trace::current(),
        };
        let mut response = agent
            .run(request)
            .map_err(|e| classify::transport_error(e, &context(classify::Phase::Exchange)))?;
        let status = response.status().as_u16();
        check_encodings(response.headers()).map_err(|e| e.with_http_status(status))?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let reader = response.body_mut().with_config().limit(max_body).reader();
        let body = read_all_wiping(reader)
            .map_err(ureq::Error::from)
            .map_err(|e| {
                classify::transport_error(e, &context(classify::Phase::ResponseBody))
                    .with_http_status(status)
            })?;
        Ok(Incoming {
            status,
            headers,
            body,
        })
    }
}

/// Reads `reader` to its end into a vector that is grown by hand, so that
/// no part of the answer (it holds a token) is left in freed memory.
fn read_all_wiping(mut reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let outcome = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(read) => {
                if body.len() + read > body.capacity() {
                    let mut bigger = Vec::with_capacity((body.len() + read) * 2);
                    bigger.extend_from_slice(&body);
                    crate::secret::wipe(&mut body);
                    body = bigger;
                }
                body.extend_from_slice(&chunk[..read]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    crate::secret::wipe(&mut chunk);
    match outcome {
        Ok(()) => Ok(body),
        Err(e) => {
            crate::secret::wipe(&mut body);
            Err(e)
        }
    }
}

/// Refuses compressed bodies (none were asked for) and transfer codings
/// other than `chunked`, which ureq would otherwise read as a body that
/// never ends.
fn check_encodings(headers: &ureq::http::HeaderMap) -> Result<(), Error> {
    let shown = |value: &ureq::http::HeaderValue| {
        crate::error::sanitize_for_message(&String::from_utf8_lossy(value.as_bytes()), 40)
    };
    if let Some(encoding) = headers.get("content-encoding") {
        if !shown(encoding).eq_ignore_ascii_case("identity") {
            return Err(Error::bad_response(format!(
                "compressed response (Content-Encoding: {}) refused: none was asked for",
                shown(encoding)
            )));
        }
    }
    for coding in headers.get_all("transfer-encoding") {
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
