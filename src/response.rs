//! The gateway's answer to Get and Refresh: the JSON envelope
//! `{"status": 0, "msg": "…", "business": "…", "data": {"accessToken": "…", "expire": 7200}}`.
//!
//! Whatever the HTTP status, a body that is the envelope with a non-zero
//! `status` is a gateway error. A non-2xx answer that is not such an envelope
//! is an HTTP error. A 2xx answer must be the envelope, with `status` 0, a
//! usable token and a non-negative integer lifetime. `business` is not
//! checked (EnOS Edge answers `edge-iam`).

use serde_json::Value;

use crate::error::{Error, ErrorKind, sanitize_quoting};
use crate::redact::Redactor;
use crate::transport::HttpAnswer;

/// Tokens longer than this are refused: real ones are a few dozen bytes, and
/// every API call sends the token in a header.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// An access token and its lifetime as the gateway reported it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token, visible ASCII only.
    pub access_token: String,
    /// Seconds until it expires, counted from when the request was sent.
    pub expire_s: i64,
}

impl Drop for Token {
    /// The token is zeroed before its memory is freed.
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the String valid UTF-8.
        crate::secret::wipe(unsafe { self.access_token.as_bytes_mut() });
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &crate::log::token_hint(&self.access_token))
            .field("expire_s", &self.expire_s)
            .finish()
    }
}

/// Reads a Get or Refresh answer.
pub fn parse_token_answer(answer: &HttpAnswer) -> Result<Token, Error> {
    parse_token_answer_quoting(answer, &Redactor::default())
}

/// [`parse_token_answer`], keeping every token `redactor` knows out of the
/// messages that quote the answer.
pub(crate) fn parse_token_answer_quoting(
    answer: &HttpAnswer,
    redactor: &Redactor,
) -> Result<Token, Error> {
    let mut parsed: Result<Value, _> = serde_json::from_slice(&answer.body);
    let outcome = interpret(answer, &parsed, redactor);
    if let Ok(value) = &mut parsed {
        wipe_strings(value); // the token, in memory about to be freed
    }
    outcome
}

/// Zeroes every string in `value`.
fn wipe_strings(value: &mut Value) {
    match value {
        // SAFETY: zero bytes keep the String valid UTF-8.
        Value::String(text) => crate::secret::wipe(unsafe { text.as_bytes_mut() }),
        Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        Value::Object(fields) => fields.values_mut().for_each(wipe_strings),
        _ => {}
    }
}

fn interpret(
    answer: &HttpAnswer,
    parsed: &Result<Value, serde_json::Error>,
    redactor: &Redactor,
) -> Result<Token, Error> {
    let http_status = answer.status;
    let success = (200..300).contains(&http_status);

    if !success {
        if let Ok(value) = parsed {
            if let Some(status) = envelope_status(value).and_then(Result::ok) {
                if status != 0 {
                    return Err(Error::service_quoting(status, message_of(value), redactor)
                        .with_http_status(http_status));
                }
            }
        }
        return Err(Error::new(
            ErrorKind::HttpStatus,
            format!(
                "HTTP status {http_status} without a gateway error in the body{}",
                body_excerpt(&answer.body, redactor)
            ),
        )
        .with_http_status(http_status));
    }

    let value = parsed.as_ref().map_err(|e| {
        let what = if std::str::from_utf8(&answer.body).is_err() {
            "response body is not UTF-8 JSON".to_string()
        } else {
            format!("response body is not JSON ({e})")
        };
        Error::bad_response(what).with_http_status(http_status)
    })?;
    let bad = |what: &str| Err(Error::bad_response(what).with_http_status(http_status));

    let status = match envelope_status(value) {
        None => return bad("response has no numeric \"status\" field"),
        Some(Err(())) => return bad("response \"status\" is not an integer"),
        Some(Ok(status)) => status,
    };
    if status != 0 {
        return Err(Error::service_quoting(status, message_of(value), redactor)
            .with_http_status(http_status));
    }
    let Some(data) = value.get("data").filter(|d| d.is_object()) else {
        return bad("response has status 0 but no \"data\" object");
    };
    let access_token = match data.get("accessToken") {
        Some(Value::String(token)) => token,
        Some(_) => return bad("response \"data.accessToken\" is not a string"),
        None => return bad("response has no \"data.accessToken\""),
    };
    if access_token.is_empty() {
        return bad("response \"data.accessToken\" is empty");
    }
    if access_token.len() > MAX_TOKEN_BYTES {
        return bad(&format!(
            "response \"data.accessToken\" is longer than {MAX_TOKEN_BYTES} bytes"
        ));
    }
    if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("response \"data.accessToken\" holds spaces, control or non-ASCII characters");
    }
    let expire_s = match data.get("expire") {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(seconds), _) if seconds >= 0 => seconds,
            (Some(_), _) => return bad("response \"data.expire\" is negative"),
            (None, Some(_)) => return bad("response \"data.expire\" is out of range"),
            (None, None) => {
                return bad("response \"data.expire\" is not an integer number of seconds");
            }
        },
        Some(_) => return bad("response \"data.expire\" is not a number"),
        None => return bad("response has no \"data.expire\""),
    };
    Ok(Token {
        access_token: access_token.clone(),
        expire_s,
    })
}

/// `Some(Ok(status))` for an object with an integer `status` in `i32` range,
/// `Some(Err)` for one whose `status` is something else, `None` without one.
fn envelope_status(value: &Value) -> Option<Result<i32, ()>> {
    let status = value.as_object()?.get("status")?;
    Some(
        status
            .as_i64()
            .and_then(|s| i32::try_from(s).ok())
            .ok_or(()),
    )
}

fn message_of(value: &Value) -> &str {
    value.get("msg").and_then(Value::as_str).unwrap_or("")
}

/// `: <first 120 characters>` of a body, for HTTP error messages. Tokens
/// are hidden in far more than is shown, so that a cut never reveals one.
fn body_excerpt(body: &[u8], redactor: &Redactor) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
    let excerpt = sanitize_quoting(&text, 120, redactor);
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn error_of(status: u16, body: &str) -> Error {
        parse_token_answer(&answer(status, body)).unwrap_err()
    }

    #[test]
    fn success_envelope() {
        let token = parse_token_answer(&answer(
            200,
            r#"{"status":0,"msg":"SUCCESS","business":"edge-iam","data":{"accessToken":"abc-123","expire":7199}}"#,
        ))
        .unwrap();
        assert_eq!(token.access_token, "abc-123");
        assert_eq!(token.expire_s, 7199);
    }

    #[test]
    fn gateway_error_in_any_http_status() {
        for http in [200, 400, 500] {
            let e = error_of(http, r#"{"status":1203,"msg":"token expired"}"#);
            assert_eq!(e.kind(), ErrorKind::Service, "HTTP {http}");
            assert_eq!(e.service_status(), 1203);
            assert_eq!(e.http_status(), http);
        }
    }

    #[test]
    fn http_error_without_envelope() {
        let e = error_of(502, "<html>Bad Gateway</html>");
        assert_eq!(e.kind(), ErrorKind::HttpStatus);
        assert_eq!(e.http_status(), 502);
        assert!(e.message().contains("Bad Gateway"), "{}", e.message());
        let e = error_of(302, "");
        assert_eq!(e.kind(), ErrorKind::HttpStatus);
        let e = error_of(500, r#"{"status":0,"data":{"accessToken":"a","expire":1}}"#);
        assert_eq!(e.kind(), ErrorKind::HttpStatus, "status 0 on HTTP 500");
    }

    #[test]
    fn malformed_success_bodies() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "no numeric \"status\""),
            (r#"{"msg":"x"}"#, "no numeric \"status\""),
            (r#"{"status":"0"}"#, "\"status\" is not an integer"),
            (r#"{"status":0}"#, "no \"data\" object"),
            (
                r#"{"status":0,"data":{"expire":1}}"#,
                "no \"data.accessToken\"",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"","expire":1}}"#,
                "is empty",
            ),
            (
                r#"{"status":0,"data":{"accessToken":7,"expire":1}}"#,
                "not a string",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a b","expire":1}}"#,
                "spaces",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a"}}"#,
                "no \"data.expire\"",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":-5}}"#,
                "negative",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":7200.5}}"#,
                "not an integer",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":1e30}}"#,
                "not an integer",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":18446744073709551615}}"#,
                "\"data.expire\" is out of range",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":9223372036854775808}}"#,
                "\"data.expire\" is out of range",
            ),
            (
                r#"{"status":0,"data":{"accessToken":"a","expire":"7200"}}"#,
                "not a number",
            ),
        ];
        for (body, expected) in cases {
            let e = error_of(200, body);
            assert_eq!(e.kind(), ErrorKind::BadResponse, "{body}");
            assert!(e.message().contains(expected), "{body}: {}", e.message());
        }
        let long = format!(
            r#"{{"status":0,"data":{{"accessToken":"{}","expire":1}}}}"#,
            "a".repeat(MAX_TOKEN_BYTES + 1)
        );
        assert!(error_of(200, &long).message().contains("longer than"));
        let e = parse_token_answer(&HttpAnswer {
            status: 200,
            body: vec![b'{', 0xff, b'}'],
        })
        .unwrap_err();
        assert!(e.message().contains("not UTF-8"), "{}", e.message());
        let deep = "[".repeat(100_000);
        assert_eq!(error_of(200, &deep).kind(), ErrorKind::BadResponse);
    }
}
