//! One signed API call (`Client::request`, `enos_client_request`): checked
//! before a byte is sent, signed with the managed token and a fresh
//! timestamp over exactly the query and body sent, and sent once more with
//! a renewed token when the gateway refuses the token.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::Error;
use crate::log::{LogLevel, Logger};
use crate::managed::{Counters, ManagedToken, TokenSource};
use crate::secret::AppSecret;
use crate::signing;
use crate::transport::Transport;

/// Answers larger than this are refused unless the builder says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// An API's answer: any HTTP status, its headers and its whole body.
pub struct Response {
    status: u16,
    /// In the order received; names lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    // Not the body or the header values: they are the API's data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body, exactly as received.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The first value of header `name` (any case), if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header, in the order received (names lower case).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub(crate) fn into_parts(mut self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let headers = std::mem::take(&mut self.headers);
        let body = std::mem::take(&mut self.body);
        (self.status, headers, body)
    }
}

/// A checked API call: nothing in it can send the token elsewhere or split
/// the request.
#[derive(Debug)]
pub(crate) struct ApiCall<'a> {
    pub(crate) method: &'a str,
    /// Path and query, relative to the gateway URL.
    pub(crate) path: &'a str,
    /// The query as sent (what is signed), without `?`.
    pub(crate) query: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// `tchar` of RFC 9110: what a method name may hold.
fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

impl<'a> ApiCall<'a> {
    /// Checks the parts of a call; the error names the argument and the fix.
    pub(crate) fn check(
        method: &'a str,
        path: &'a str,
        content_type: Option<&'a str>,
        body: &'a [u8],
    ) -> Result<Self, Error> {
        if method.is_empty() || method.len() > 32 || !method.bytes().all(is_token_char) {
            return Err(Error::invalid_argument(format!(
                "method \"{}\" is not an HTTP method name (letters, such as GET or POST)",
                method.escape_debug().take(40).collect::<String>()
            )));
        }
        if matches!(method, "CONNECT" | "TRACE") {
            return Err(Error::invalid_argument(format!(
                "method {method} is not for API calls"
            )));
        }
        if method == "HEAD" && !body.is_empty() {
            return Err(Error::invalid_argument("a HEAD request has no body"));
        }
        let shown_path = || path.escape_debug().take(80).collect::<String>();
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(Error::invalid_argument(format!(
                "path \"{}\" must start with one / (a path and query relative to the gateway \
                 URL, such as /asset-service/v2.1/assets?orgId=o1): absolute and \
                 scheme-relative URLs are refused",
                shown_path()
            )));
        }
        if let Some(bad) = path.bytes().find(|b| !b.is_ascii_graphic() || *b == b'#') {
            let what = match bad {
                b'#' => "a fragment (#)",
                b' ' => "a space (percent-encode it as %20)",
                b if b.is_ascii_control() => "a control character (CR, LF, ...)",
                _ => "a non-ASCII character (percent-encode it)",
            };
            return Err(Error::invalid_argument(format!(
                "path \"{}\" holds {what}",
                shown_path()
            )));
        }
        if let Some(content_type) = content_type {
            let visible = |b: u8| b == b' ' || b == b'\t' || b.is_ascii_graphic();
            if content_type.is_empty()
                || content_type.len() > 256
                || !content_type.bytes().all(visible)
            {
                return Err(Error::invalid_argument(
                    "content_type must be 1-256 visible ASCII characters (no CR or LF)",
                ));
            }
        }
        let query = path.split_once('?').map_or("", |(_, query)| query);
        Ok(ApiCall {
            method,
            path,
            query,
            content_type,
            body,
        })
    }

    /// Idempotent methods may be sent again on a new connection when a
    /// reused one failed before any answer byte.
    pub(crate) fn idempotent(&self) -> bool {
        matches!(self.method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS")
    }

    /// The path with query values left out, for log lines.
    pub(crate) fn path_for_logs(&self) -> String {
        match self.path.split_once('?') {
            None => self.path.to_string(),
            Some((path, query)) => {
                let names: Vec<&str> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
                    .collect();
                format!("{path}?{}", names.join("&"))
            }
        }
    }

    /// The headers of one attempt: the token, the signature over exactly
    /// this query and body with `timestamp`, and the content type.
    pub(crate) fn headers(
        &self,
        token: &str,
        timestamp: i64,
        app_secret: &AppSecret,
    ) -> Vec<(&'static str, String)> {
        let signature = signing::api_signature(token, self.query, self.body, timestamp, app_secret);
        let mut headers = vec![
            ("apim-accesstoken", token.to_string()),
            ("apim-signature", signature),
            ("apim-timestamp", timestamp.to_string()),
        ];
        if let Some(content_type) = self.content_type {
            headers.push(("content-type", content_type.to_string()));
        }
        headers
    }
}

/// What a call uses of its client.
pub(crate) struct CallContext<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) managed: &'a ManagedToken,
    pub(crate) source: &'a dyn TokenSource,
    pub(crate) app_secret: &'a AppSecret,
    pub(crate) logger: Option<&'a Logger>,
    pub(crate) max_response_bytes: u64,
    pub(crate) total_timeout: Duration,
}

/// Makes `call`: the managed token, a signature with a fresh timestamp, the
/// request over the client's connections; if the token is refused, it is
/// dropped (unless another thread already renewed it), a valid one is
/// fetched, and the call is signed and sent once more. The overall timeout
/// bounds it all.
pub(crate) fn make_call(context: &CallContext<'_>, call: &ApiCall<'_>) -> Result<Response, Error> {
    let started = Instant::now();
    let deadline = started + context.total_timeout;
    let mut renewed = false;
    loop {
        let left = time_left(deadline, call)?;
        let mut token =
            context
                .managed
                .access_token_within(context.source, left, str::to_string)?;
        let shared = context.managed.shared_slot();
        let make_request = || {
            let timestamp = crate::token_request::next_api_call_timestamp_ms(shared);
            let headers = call.headers(&token, timestamp, context.app_secret);
            (headers, Cow::Borrowed(call.body))
        };
        let outcome = context.transport.exchange_with(
            call.method,
            call.path,
            make_request,
            deadline,
            call.idempotent(),
            context.max_response_bytes,
        );
        let refused = outcome
            .as_ref()
            .is_ok_and(|answer| token_refused(answer.status, &answer.body));
        if refused && !renewed && Instant::now() < deadline {
            renewed = true;
            // Compare-and-drop: a token another thread renewed meanwhile stays.
            context.managed.invalidate(Some(&token));
            Counters::add(&context.managed.counters.token_renewals);
            let status = outcome.as_ref().map_or(0, |answer| answer.status);
            log(
                context,
                LogLevel::Warn,
                &format!(
                    "{} {}: the token was refused (HTTP {status}); renewing it and sending the call once more",
                    call.method,
                    call.path_for_logs()
                ),
            );
            // SAFETY: zero bytes keep the String valid UTF-8.
            crate::secret::wipe(unsafe { token.as_bytes_mut() });
            continue;
        }
        // SAFETY: as above.
        crate::secret::wipe(unsafe { token.as_bytes_mut() });
        let answer = outcome?;
        Counters::add(&context.managed.counters.api_calls);
        let (level, line) = log_line(call, answer.status, started.elapsed());
        log(context, level, &line);
        return Ok(Response {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        });
    }
}

fn log(context: &CallContext<'_>, level: LogLevel, message: &str) {
    if let Some(logger) = context.logger {
        logger.log(level, message);
    }
}

/// Whether the gateway refused the token of a call: HTTP 401, or a JSON
/// body whose `status` is 1203 (the token has expired).
pub(crate) fn token_refused(status: u16, body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        status: Option<i64>,
    }
    status == 401
        || (body.len() <= 64 * 1024
            && body.first() == Some(&b'{')
            && serde_json::from_slice::<Envelope>(body).is_ok_and(|envelope| {
                envelope.status == Some(i64::from(crate::service_status::TOKEN_EXPIRED))
            }))
}

/// What one call did, for its log line.
pub(crate) fn log_line(call: &ApiCall<'_>, status: u16, took: Duration) -> (LogLevel, String) {
    (
        LogLevel::Debug,
        format!(
            "{} {} -> HTTP {status} in {} ms",
            call.method,
            call.path_for_logs(),
            took.as_millis()
        ),
    )
}

/// Time left until `deadline`, or a timeout error naming the call.
pub(crate) fn time_left(deadline: Instant, call: &ApiCall<'_>) -> Result<Duration, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::new(
            crate::ErrorKind::Timeout,
            format!(
                "{} {}: no answer within the overall timeout",
                call.method,
                call.path_for_logs()
            ),
        ));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_could_send_the_token_elsewhere_or_split_the_request_is_refused() {
        let ok = |m, p, c: Option<&'static str>| ApiCall::check(m, p, c, b"").is_ok();
        assert!(ok("GET", "/a/b?orgId=o1&x=%20", None));
        assert!(ok("PROPFIND", "/", Some("application/json;charset=UTF-8")));
        for (method, path, content_type) in [
            ("GET", "http://evil.example/a", None),
            ("GET", "//evil.example/a", None),
            ("GET", "a/b", None),
            ("GET", "", None),
            ("GET", "/a\r\nX-Injected: 1", None),
            ("GET", "/a b", None),
            ("GET", "/caf\u{e9}", None),
            ("GET", "/a#frag", None),
            ("GE T", "/a", None),
            ("GET\r\n", "/a", None),
            ("", "/a", None),
            ("CONNECT", "/a", None),
            ("POST", "/a", Some("application/json\r\nX-Injected: 1")),
            ("POST", "/a", Some("")),
        ] {
            let error = ApiCall::check(method, path, content_type, b"").unwrap_err();
            assert_eq!(
                error.kind(),
                crate::ErrorKind::InvalidArgument,
                "{method} {path}"
            );
        }
        assert!(ApiCall::check("HEAD", "/a", None, b"x").is_err());
    }

    #[test]
    fn the_signed_query_is_the_sent_one_and_logs_show_no_values() {
        let call = ApiCall::check("GET", "/a/b?k2=v2&k1=v%201", None, b"").unwrap();
        assert_eq!(call.query, "k2=v2&k1=v%201");
        assert_eq!(call.path_for_logs(), "/a/b?k2&k1");
        assert!(call.idempotent());
        assert!(
            !ApiCall::check("POST", "/a", None, b"")
                .unwrap()
                .idempotent()
        );
    }

    #[test]
    fn a_refused_token_is_told_by_401_or_status_1203() {
        assert!(token_refused(401, b""));
        assert!(token_refused(
            200,
            br#"{"status":1203,"msg":"token expired"}"#
        ));
        assert!(!token_refused(200, br#"{"status":0,"data":{}}"#));
        assert!(!token_refused(403, br#"{"status":1203"#), "not JSON");
        assert!(!token_refused(500, b"<html>"));
    }
}
