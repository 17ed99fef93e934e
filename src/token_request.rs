//! Get and Refresh requests: the credentials, the JSON body with its
//! `encryption`, the request timestamps, and the answer read without any
//! token the client knows in its messages. Used by the client and the
//! one-shot calls.

use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, ErrorKind, service_status};
use crate::redact::{KnownTokens, Redactor};
use crate::response::{Token, parse_token_answer, parse_token_answer_quoting};
use crate::secret::AppSecret;
use crate::shared_cache::SharedSlot;
use crate::signing;
use crate::time::timestamp::TimestampUse;
use crate::transport::Transport;

/// Path of the Get Access Token operation, appended to the gateway URL.
pub const GET_TOKEN_PATH: &str = "/apim-token-service/v2.0/token/get";
/// Path of the Refresh Access Token operation, appended to the gateway URL.
pub const REFRESH_TOKEN_PATH: &str = "/apim-token-service/v2.0/token/refresh";

/// An application's identity at the gateway.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    pub app_key: String,
    pub app_secret: AppSecret,
}

impl Credentials {
    pub fn new(app_key: &str, app_secret: &str) -> Result<Self, Error> {
        if app_key.is_empty() {
            return Err(Error::invalid_argument("app key is empty"));
        }
        // A newline read from a file with the value is the usual culprit.
        let padded = |text: &str| text.trim() != text;
        if padded(app_key) {
            return Err(Error::invalid_argument(format!(
                "app key \"{}\" has leading or trailing white space (a newline from a file?): remove it",
                app_key.escape_debug().take(80).collect::<String>()
            )));
        }
        if padded(app_secret) {
            return Err(Error::invalid_argument(
                "app secret has leading or trailing white space (a newline from a file?): remove it",
            ));
        }
        Ok(Credentials {
            app_key: app_key.to_string(),
            app_secret: AppSecret::non_empty(app_secret)?,
        })
    }
}

/// The JSON body of Get (without `accessToken`) and Refresh.
#[derive(Serialize)]
struct TokenRequest<'a> {
    #[serde(rename = "appKey")]
    app_key: &'a str,
    encryption: String,
    timestamp: i64,
    #[serde(rename = "accessToken", skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
}

/// A Get or Refresh timestamp: from the fleet's shared sequence when there
/// is a shared cache (unique across its processes), else from the process's
/// own token-request sequence (unique across the process and its forks,
/// spread at random over the last second so that other hosts rarely send
/// the same one).
pub(crate) fn next_timestamp_ms(shared: Option<&SharedSlot>) -> i64 {
    next_timestamp_for(TimestampUse::TokenRequest, shared)
}

/// An API call's `apim-timestamp`: from the fleet's shared sequence when
/// there is a shared cache, else from the process's own (the wall clock,
/// unique across the process and its forks).
pub(crate) fn next_api_call_timestamp_ms(shared: Option<&SharedSlot>) -> i64 {
    next_timestamp_for(TimestampUse::ApiCall, shared)
}

fn next_timestamp_for(usage: TimestampUse, shared: Option<&SharedSlot>) -> i64 {
    match shared {
        Some(shared) => shared.next_timestamp_ms(usage),
        None => usage.next(),
    }
}

/// What a token request uses besides its credentials.
#[derive(Clone, Copy, Default)]
pub(crate) struct TokenRequestContext<'a> {
    /// When the request must have ended (default: the client's timeout).
    pub(crate) deadline: Option<Instant>,
    /// The fleet's shared file: timestamps are drawn from it.
    pub(crate) shared: Option<&'a SharedSlot>,
    /// The client's known tokens: kept out of messages; the tokens sent and
    /// received are added.
    pub(crate) known: Option<&'a KnownTokens>,
}

/// How many times a raw Get answered 1001 is sent again.
const MAX_REPLAY_RETRIES: u32 = 3;

/// A Get made by `get`, sent again when the gateway answers 1001: another
/// process of the app sent the same timestamp, and the gateway refused this
/// one before processing it (a Get only returns the current token, so
/// sending it again changes nothing). After a random 1-50 ms, with a
/// timestamp spread over the last second, at most [`MAX_REPLAY_RETRIES`]
/// times, never past `deadline`; `on_retry` counts each.
pub(crate) fn get_sending_replays_again(
    deadline: Instant,
    mut get: impl FnMut() -> Result<Token, Error>,
    mut on_retry: impl FnMut(),
) -> Result<Token, Error> {
    let mut result = get();
    for _ in 0..MAX_REPLAY_RETRIES {
        match &result {
            Err(e) if e.service_status() == service_status::REPEATED_REQUEST => {}
            _ => break,
        }
        let wait =
            std::time::Duration::from_millis(1 + (crate::time::random_fraction() * 49.0) as u64);
        if Instant::now() + wait >= deadline || !crate::transport::sleep_unless_cancelled(wait) {
            break;
        }
        on_retry();
        result = crate::time::timestamp::spreading(true, &mut get);
    }
    result
}

/// One Get (`refresh_of` = `None`) or Refresh request, with a fresh
/// timestamp (see [`next_timestamp_ms`]).
pub(crate) fn request_token(
    transport: &Transport,
    credentials: &Credentials,
    refresh_of: Option<&str>,
    context: TokenRequestContext<'_>,
) -> Result<Token, Error> {
    if refresh_of.is_some_and(str::is_empty) {
        return Err(Error::invalid_argument("access token to refresh is empty"));
    }
    if let (Some(known), Some(token)) = (context.known, refresh_of) {
        known.remember(token);
    }
    let make_body = || {
        let timestamp = next_timestamp_ms(context.shared);
        let request = TokenRequest {
            app_key: &credentials.app_key,
            encryption: signing::encryption(
                &credentials.app_key,
                timestamp,
                &credentials.app_secret,
            ),
            timestamp,
            access_token: refresh_of,
        };
        // Sized up front: a growing vector would leave copies of the token.
        let mut body =
            Vec::with_capacity(256 + request.app_key.len() + refresh_of.map_or(0, str::len));
        serde_json::to_writer(&mut body, &request)
            .expect("a struct of strings and an integer serializes");
        body
    };
    let path = match refresh_of {
        None => GET_TOKEN_PATH,
        Some(_) => REFRESH_TOKEN_PATH,
    };
    let idempotent = refresh_of.is_none(); // a Get only returns the current token
    let answer = transport
        .post_json(path, make_body, context.deadline, idempotent)
        .map_err(|error| match error.answer_lost() {
            true => error.with_answer_lost(
                "if it did, the token sent is retired: a Get returns the current token",
            ),
            false => error,
        })?;
    // A failure is parsed again, quoting the answer without any token the
    // client knows (the redactor costs more than a success needs).
    let parsed = parse_token_answer(&answer).or_else(|_| {
        let redactor = match context.known {
            Some(known) => known.redactor(refresh_of),
            None => Redactor::for_tokens(refresh_of),
        };
        parse_token_answer_quoting(&answer, &redactor)
    });
    let token = parsed.map_err(|error| match error {
        // Which URL answered: a wrong host or path shows at once; a web
        // server saying the port wants HTTPS, the fix.
        e if e.kind() == ErrorKind::HttpStatus => {
            let wants_https = transport.url_of(path).starts_with("http://")
                && crate::transport::https_port_page(answer.status, &answer.body);
            e.appending(&format!(" (requested {})", transport.url_of(path)))
                .appending(if wants_https {
                    ": the server says that port speaks HTTPS: use https://"
                } else {
                    ""
                })
        }
        // The app key is no secret: name the one the gateway does not know.
        e if e.service_status() == service_status::UNKNOWN_APP_KEY => e.appending(&format!(
            " (app key \"{}\")",
            crate::error::sanitize_for_message(&credentials.app_key, 80)
        )),
        e => e,
    })?;
    if let Some(known) = context.known {
        known.remember(&token.access_token);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_has_the_documented_fields_and_types() {
        let request = TokenRequest {
            app_key: "key",
            encryption: "e".into(),
            timestamp: 1572574909697,
            access_token: None,
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"appKey":"key","encryption":"e","timestamp":1572574909697}"#
        );
        let request = TokenRequest {
            access_token: Some("tok"),
            ..request
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"appKey":"key","encryption":"e","timestamp":1572574909697,"accessToken":"tok"}"#
        );
    }
}
