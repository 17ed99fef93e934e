//! Signing API calls.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{
    byte_slice, fallible, optional_str, required_mut, required_ref, required_str,
};
use super::client::enos_client;
use super::status::enos_status;
use super::strings::owned_c_str;
use crate::error::Error;
use crate::secret::AppSecret;

/// Computes the `apim-signature` header of one API call:
/// `hex(sha256(access_token + paramsData + timestamp_ms + app_secret))`,
/// where `paramsData` is the decoded query's parameters sorted by name,
/// written `name1value1name2value2…`, followed by the body bytes **when the
/// body is JSON**.
///
/// Which bodies are signed: a body is part of the signature exactly when
/// its `Content-Type` is JSON (`application/json`, or any
/// `type/subtype+json`; case and parameters such as `charset` ignored).
/// For a multipart, binary or form body, pass no body (`body_len` 0): the
/// signature covers the query only. This follows the docs' words ("if the
/// request has a JSON body") and EnOS's own SDKs, which never sign file
/// parts; `enos_client_send()` and the fake gateway apply the same rule.
///
/// - `access_token`: the token sent in `apim-accesstoken`, non-empty. Not NULL.
/// - `query`: the raw query string, e.g. `"k3=v3&k1=v1"` (a leading `?` is
///   ignored); NULL or `""` for none. Parameters are separated by `&`, empty
///   ones skipped; `+` means a space and `%XX` is decoded (a `%` without two
///   hex digits stays as it is; decoded bytes that are not UTF-8 become
///   U+FFFD); sorted by name in byte order, parameters with the same name
///   keeping their order. **A parameter without `=`** (`"flag"`) is a
///   parameter with an empty value: it signs as its name alone.
/// - `body`, `body_len`: the exact request body bytes as sent when it is a
///   JSON body, else nothing; `body` may be NULL only when `body_len` is 0.
/// - `timestamp_ms`: the value sent in `apim-timestamp` (UNIX milliseconds).
/// - `app_secret`: non-empty. Not NULL. Never appears in a message.
/// - `signature_out`: receives 64 lowercase hex characters on success, owned
///   by the caller and freed with `enos_string_free()`; NULL on failure. Not NULL.
///
/// Makes no request. Thread-safe.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_sign_request(
    access_token: *const c_char,
    query: *const c_char,
    body: *const u8,
    body_len: usize,
    timestamp_ms: i64,
    app_secret: *const c_char,
    signature_out: *mut *mut c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let signature_out = unsafe { required_mut(signature_out, "signature_out") }?;
        *signature_out = ptr::null_mut();
        let access_token = unsafe { required_str(access_token, "access_token") }?;
        let query = unsafe { optional_str(query, "query") }?.unwrap_or("");
        let body = unsafe { byte_slice(body, body_len, "body") }?;
        let app_secret = unsafe { required_str(app_secret, "app_secret") }?;
        if access_token.is_empty() {
            return Err(Error::invalid_argument("access token is empty"));
        }
        let app_secret = AppSecret::non_empty(app_secret)?;
        let signature =
            crate::signing::api_signature(access_token, query, body, timestamp_ms, &app_secret);
        *signature_out = owned_c_str(&signature)?;
        Ok(())
    })
}

/// The three headers of an API call, signed with the client's managed token
/// (as from `enos_client_access_token()`, so this may fetch one) and a fresh
/// timestamp, as one string:
/// `"apim-accesstoken: <token>\r\napim-signature: <signature>\r\napim-timestamp: <ms>\r\n"`.
///
/// - `client`: the client. Not NULL.
/// - `query`, `body`, `body_len`: as for `enos_sign_request()` (a body only
///   when it is JSON); the request must then be sent with exactly this query
///   and body, and a signed body with a JSON `Content-Type`.
/// - `headers_out`: receives the headers on success, owned by the caller and
///   freed with `enos_string_free()`; NULL on any failure. Not NULL.
///
/// Thread-safe. If the API call is rejected for its token, call
/// `enos_client_invalidate()` with that token.
///
/// Returns `ENOS_OK`, or the statuses of `enos_client_access_token()`, and
/// `ENOS_ERR_INVALID_ARGUMENT` for a query that is not UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_auth_headers(
    client: *const enos_client,
    query: *const c_char,
    body: *const u8,
    body_len: usize,
    headers_out: *mut *mut c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let headers_out = unsafe { required_mut(headers_out, "headers_out") }?;
        *headers_out = ptr::null_mut();
        let client = unsafe { required_ref(client, "client") }?;
        let query = unsafe { optional_str(query, "query") }?.unwrap_or("");
        let body = unsafe { byte_slice(body, body_len, "body") }?;
        let mut headers = client.inner.auth_headers(query, body)?;
        let copied = owned_c_str(&headers);
        // SAFETY: zero bytes keep the String valid UTF-8.
        crate::secret::wipe(unsafe { headers.as_bytes_mut() });
        *headers_out = copied?;
        Ok(())
    })
}
