//! Signed API calls (`Client::send`, `Client::request`,
//! `enos_client_send`, `enos_client_request`).
//!
//! | file | what |
//! |---|---|
//! | `request.rs` | the request object and the checks of its pieces |
//! | `body.rs`, `multipart.rs`, `file.rs` | where the body's bytes come from: memory, a file, `multipart/form-data` parts |
//! | `output.rs` | where the answer goes (memory, a descriptor, a callback) and progress reports |
//! | `call.rs` | one call across its attempts: a refused token renewed, a rate limit or an outage retried |
//! | `attempt.rs` | one attempt: the token, the signed request, its head |
//! | `retry.rs` | which answers are retried, the waits, the client's retry budget |
//! | `resume.rs` | a streamed answer delivered, a broken download resumed |
//! | `nonblocking.rs` | calls in flight: the worker threads, the call handle, cancelling |
//! | `response.rs` | the answer |
//!
//! The signing rule (which bodies are signed) is `signing::signs_body`.

mod attempt;
mod body;
mod call;
mod file;
mod multipart;
mod nonblocking;
mod output;
mod request;
mod response;
mod resume;
mod retry;

use serde::Deserialize;

pub(crate) use body::{BodyView, ReadFn};
pub(crate) use call::{CallContext, CallSpec, send};
pub use nonblocking::Call;
pub(crate) use nonblocking::{CallShared, Completion, Executor};
pub use output::Progress;
pub(crate) use output::{Output, ProgressFn, WriteFn};
pub use request::{BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE, Request};
pub(crate) use request::{check_method, check_path, checked_content_type};
pub use response::Response;
pub(crate) use response::{ResponseParts, request_id_of};
pub(crate) use retry::RetryBudget;

/// Answers larger than this are refused unless the builder says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Calls in flight at once per client, unless the builder says otherwise.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;

/// The path with query values left out, for log lines.
pub(crate) fn path_for_logs(path: &str) -> String {
    match path.split_once('?') {
        None => path.to_string(),
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

/// Whether the gateway refused the token of a call: HTTP 401, or a JSON
/// body whose `status` is 1203 (the token has expired).
pub(crate) fn token_refused(status: u16, body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        status: Option<i64>,
    }
    // Parsed only if the digits are there at all: most answers are
    // successes, and this runs on every call.
    let mentions_1203 = || body.windows(4).any(|w| w == b"1203");
    status == 401
        || (body.len() <= 64 * 1024
            && body.first() == Some(&b'{')
            && mentions_1203()
            && serde_json::from_slice::<Envelope>(body).is_ok_and(|envelope| {
                envelope.status == Some(i64::from(crate::service_status::TOKEN_EXPIRED))
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_show_query_names_without_values() {
        assert_eq!(path_for_logs("/a/b?k2=v2&k1=v%201"), "/a/b?k2&k1");
        assert_eq!(path_for_logs("/a"), "/a");
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
