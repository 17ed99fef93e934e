//! The library's one error type.
//!
//! Every failure, whatever layer it comes from, becomes an [`Error`]: a
//! [`ErrorKind`] (which maps one-to-one onto the C `enos_status`), a specific
//! message, and the gateway and HTTP status codes when there were any.
//! Messages never contain the app secret: nothing that builds one has it.

use std::fmt;

use crate::redact::Redactor;

/// What went wrong, by cause. The C API reports it as `enos_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required pointer was NULL (only the C API reports this).
    NullArgument,
    /// Not UTF-8, an empty key/secret/token, a bad URL or option.
    InvalidArgument,
    /// DNS failure, connection refused or unreachable, reset before a response.
    Connect,
    /// The connect or overall deadline passed.
    Timeout,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// A non-2xx HTTP answer whose body is not the gateway envelope.
    HttpStatus,
    /// Not JSON, missing fields, wrong types, a body over the size limit, a
    /// malformed or truncated HTTP response.
    BadResponse,
    /// The gateway answered with a non-zero status (see [`Error::service_status`]).
    Service,
    /// A bug in this library (for example a caught panic).
    Internal,
    /// A callback of the caller's asked to stop the call.
    Cancelled,
    /// Reading a file to send, or writing the answer to its output,
    /// failed: a file that vanished or changed while sent, a full disk, a
    /// closed file descriptor.
    Io,
}

/// A failure, with a message meant for people and the codes meant for programs.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    service_status: i32,
    http_status: u16,
    /// The request reached the server and its answer was lost: it may have
    /// been processed, so it must not be sent again as it was.
    answer_lost: bool,
}

impl Error {
    /// An error of `kind` with a message that names the cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            service_status: 0,
            http_status: 0,
            answer_lost: false,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn bad_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadResponse, message)
    }

    /// The same error, carrying the HTTP status of the answer it came from.
    pub(crate) fn with_http_status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    /// A gateway error: `status` is the envelope's non-zero `status`.
    #[cfg(test)]
    pub(crate) fn service(status: i32, gateway_message: &str) -> Self {
        Self::service_quoting(status, gateway_message, &Redactor::default())
    }

    /// A gateway error quoting `gateway_message` without any token `redactor` knows.
    pub(crate) fn service_quoting(status: i32, gateway_message: &str, redactor: &Redactor) -> Self {
        let meaning = service_status_meaning(status);
        let gateway_message = sanitize_quoting(gateway_message, 200, redactor);
        let message = match (meaning, gateway_message.is_empty()) {
            (Some(meaning), true) => format!("gateway status {status}: {meaning}"),
            (Some(meaning), false) => {
                format!("gateway status {status}: {meaning} (gateway said: {gateway_message})")
            }
            (None, true) => format!("gateway status {status}"),
            (None, false) => format!("gateway status {status}: {gateway_message}"),
        };
        Error {
            kind: ErrorKind::Service,
            message,
            service_status: status,
            http_status: 0,
            answer_lost: false,
        }
    }

    /// The same error with every occurrence of `token` in its message
    /// replaced by a hint: for a gateway that quotes the token it was sent.
    pub(crate) fn redacting(mut self, token: &str) -> Self {
        if token.len() >= MIN_REDACTED_LENGTH && self.message.contains(token) {
            self.message = self.message.replace(token, &crate::log::token_hint(token));
        }
        self
    }

    /// The same error, for a request that reached the server but whose
    /// answer was lost, with `consequence` (what that means) added.
    pub(crate) fn with_answer_lost(mut self, consequence: &str) -> Self {
        self.answer_lost = true;
        self.message = format!("{}; {consequence}", self.message);
        self
    }

    /// True when the request may have been processed although no answer
    /// arrived (see [`Error::with_answer_lost`]).
    pub(crate) fn answer_lost(&self) -> bool {
        self.answer_lost
    }

    /// The same error with `text` added to its message.
    pub(crate) fn appending(mut self, text: &str) -> Self {
        self.message.push_str(text);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message. Never contains the app secret.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The gateway's `status` (for example 1203) when it answered with one, else 0.
    pub fn service_status(&self) -> i32 {
        self.service_status
    }

    /// The HTTP status of the answer this error came from, else 0.
    pub fn http_status(&self) -> u16 {
        self.http_status
    }

    /// True for failures worth trying again a little later: connection
    /// problems, timeouts, HTTP 5xx and gateway status 1005.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Connect | ErrorKind::Timeout => true,
            ErrorKind::HttpStatus => self.http_status >= 500,
            ErrorKind::Service => self.service_status == service_status::INTERNAL_EXCEPTION,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("service_status", &self.service_status)
            .field("http_status", &self.http_status)
            .finish()
    }
}

impl std::error::Error for Error {}

/// An [`Error`] of the library's own carried through an `io::Error`: a
/// body source (a file, a read callback) fails inside the HTTP client,
/// which only passes `io::Error`s on.
#[derive(Debug)]
struct CarriedError(Error);

impl fmt::Display for CarriedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for CarriedError {}

impl Error {
    /// This error inside an `io::Error`, for code that only passes those on.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(CarriedError(self))
    }

    /// The error [`Error::into_io`] put inside `error` (looking through
    /// the sources an HTTP client may have wrapped it in), if any.
    pub(crate) fn carried_by(error: &(dyn std::error::Error + 'static)) -> Option<Error> {
        let mut current = Some(error);
        while let Some(inner) = current {
            if let Some(CarriedError(carried)) = inner.downcast_ref::<CarriedError>() {
                return Some(carried.clone());
            }
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                if let Some(CarriedError(carried)) =
                    io.get_ref().and_then(|e| e.downcast_ref::<CarriedError>())
                {
                    return Some(carried.clone());
                }
            }
            current = inner.source();
        }
        None
    }
}

/// The gateway's documented status codes (`token-service.md`).
pub mod service_status {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// This `encryption` was already used (a replayed request).
    pub const REPEATED_REQUEST: i32 = 1001;
    /// The `appKey` does not exist.
    pub const UNKNOWN_APP_KEY: i32 = 1002;
    /// The `encryption` is not valid (wrong secret or concatenation).
    pub const INVALID_ENCRYPTION: i32 = 1003;
    /// A parameter is invalid (for example of the wrong JSON type).
    pub const INVALID_PARAMETER: i32 = 1004;
    /// Internal service exception: transient.
    pub const INTERNAL_EXCEPTION: i32 = 1005;
    /// A parameter is empty or missing.
    pub const EMPTY_PARAMETER: i32 = 1202;
    /// The access token has expired: it cannot be refreshed, Get a new one.
    pub const TOKEN_EXPIRED: i32 = 1203;
    /// The access token could not be refreshed.
    pub const REFRESH_FAILED: i32 = 1204;
}

/// Our own words for a documented gateway status code.
pub fn service_status_meaning(status: i32) -> Option<&'static str> {
    use service_status::*;
    Some(match status {
        SUCCESS => "success",
        REPEATED_REQUEST => "repeated request (this encryption was already used)",
        UNKNOWN_APP_KEY => "app key does not exist",
        INVALID_ENCRYPTION => "encryption not valid (wrong app secret?)",
        INVALID_PARAMETER => "invalid parameter",
        INTERNAL_EXCEPTION => "internal service exception",
        EMPTY_PARAMETER => "a parameter is empty",
        TOKEN_EXPIRED => "token expired",
        REFRESH_FAILED => "failed to refresh the access token",
        _ => return None,
    })
}

/// Shorter strings are not looked for in messages: they would match words.
const MIN_REDACTED_LENGTH: usize = 6;

/// Text from the network, made safe to quote in a message or a log line:
/// what follows an `accessToken` (any case, also `access_token`) as a JSON
/// field or in prose is replaced by a hint, and then
/// control characters, invisible format characters (bidirectional overrides
/// and isolates, zero-width characters) and line or paragraph separators
/// become spaces, so quoted text can neither forge a log line nor reorder
/// what a terminal shows; it is cut to at most `max_chars` characters.
pub(crate) fn sanitize_for_message(text: &str, max_chars: usize) -> String {
    sanitize_quoting(text, max_chars, &Redactor::default())
}

/// [`sanitize_for_message`], first hiding every token `redactor` knows in
/// the raw text (before anything is cleaned or cut), and dropping a
/// trailing fragment of one where the text is cut.
pub(crate) fn sanitize_quoting(text: &str, max_chars: usize, redactor: &Redactor) -> String {
    let text = redact_token_values(&redactor.scrub(text));
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if is_unsafe_to_show(c) { ' ' } else { c })
        .collect();
    if text.chars().count() > max_chars {
        out = redactor.drop_cut_fragment(&out).to_string();
        out.push('…');
    }
    out.trim().to_string()
}

/// `text` with the value after each `accessToken` / `access_token` /
/// `access-token` key replaced by a hint of it.
fn redact_token_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search_from = 0;
    while let Some(found) = ["accesstoken", "access_token", "access-token"]
        .iter()
        .filter_map(|key| Some((lower[search_from..].find(key)? + search_from, key.len())))
        .min()
    {
        let (start, key_length) = found;
        let after_key = start + key_length;
        let value_start = after_key
            + text[after_key..]
                .find(|c: char| !matches!(c, '"' | '\'' | ':' | '=' | ' ' | '\t'))
                .unwrap_or(text.len() - after_key);
        let value_length = text[value_start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']' | ')' | ';' | '&')
            })
            .unwrap_or(text.len() - value_start);
        let value = &text[value_start..value_start + value_length];
        if value_length > 0 && !value.starts_with(crate::redact::REDACTED) {
            out.push_str(&text[copied..value_start]);
            out.push_str(&crate::log::token_hint(
                &text[value_start..value_start + value_length],
            ));
            copied = value_start + value_length;
        }
        search_from = (value_start + value_length).max(after_key);
    }
    out.push_str(&text[copied..]);
    out
}

/// Control characters (Cc), the format characters (Cf) that change how text
/// is shown or hide it, and the line and paragraph separators (Zl, Zp).
fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{FEFF}'
            | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{08E2}'
            | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_error_names_code_and_meaning() {
        let e = Error::service(1203, "Token is expired");
        assert_eq!(e.kind(), ErrorKind::Service);
        assert_eq!(e.service_status(), 1203);
        assert_eq!(
            e.message(),
            "gateway status 1203: token expired (gateway said: Token is expired)"
        );
        assert_eq!(
            Error::service(4242, "").message(),
            "gateway status 4242",
            "unknown code without text"
        );
    }

    #[test]
    fn quoted_tokens_are_replaced_by_hints() {
        let e = Error::service(1204, "refresh failed for accessToken tok-1234567890abcdef");
        assert!(
            !e.message().contains("tok-1234567890abcdef"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("accessToken tok-…(20 bytes)"),
            "{}",
            e.message()
        );
        let body = r#"{"data":{"accessToken":"secret-token-value-42","expire":7200},"x":1}"#;
        assert_eq!(
            sanitize_for_message(body, 200),
            r#"{"data":{"accessToken":"secr…(21 bytes)","expire":7200},"x":1}"#
        );
        assert_eq!(
            sanitize_for_message("a ACCESS_TOKEN=abcdefgh&b=1 access-token: 'zzzzzz'", 200),
            "a ACCESS_TOKEN=abcd…(8 bytes)&b=1 access-token: 'zzzz…(6 bytes)'"
        );
        assert_eq!(sanitize_for_message("accessToken", 50), "accessToken");
        let e = Error::service(1203, "token T0K-abcdef-99 expired").redacting("T0K-abcdef-99");
        assert_eq!(
            e.message(),
            "gateway status 1203: token expired (gateway said: token T0K-…(13 bytes) expired)"
        );
    }

    #[test]
    fn transient_classification() {
        assert!(Error::service(1005, "").is_transient());
        assert!(!Error::service(1003, "").is_transient());
        assert!(
            Error::new(ErrorKind::HttpStatus, "x")
                .with_http_status(502)
                .is_transient()
        );
        assert!(
            !Error::new(ErrorKind::HttpStatus, "x")
                .with_http_status(404)
                .is_transient()
        );
        assert!(Error::new(ErrorKind::Timeout, "x").is_transient());
        assert!(!Error::bad_response("x").is_transient());
    }

    #[test]
    fn sanitize_strips_controls_and_truncates() {
        assert_eq!(sanitize_for_message("a\r\nb", 10), "a  b");
        assert_eq!(sanitize_for_message("abcdef", 3), "abc…");
        assert_eq!(
            sanitize_for_message("ok\u{2028}ERROR forged\u{2029}x\u{202E}gnp.exe\u{200B}", 50),
            "ok ERROR forged x gnp.exe"
        );
        assert_eq!(
            sanitize_for_message("\u{2066}a\u{2069}\u{FEFF}\u{0085}b", 50),
            "a   b"
        );
    }
}
