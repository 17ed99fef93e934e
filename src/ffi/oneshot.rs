//! One-shot Get and Refresh: no handle, for scripts and simple programs.

use std::ffi::c_char;

use super::boundary::{credentials, fallible, required_str, with_token_outputs};
use super::status::enos_status;

/// Gets an access token from the gateway at `gateway_url`, without a handle.
///
/// Sends Get Access Token (`POST {gateway_url}/apim-token-service/v2.0/token/get`)
/// with a fresh millisecond timestamp and its `encryption`. The gateway
/// returns the application's current token while it is valid, so the
/// lifetime can be less than 7200 s. A Get answered 1001 (another process of
/// the application sent the same timestamp; the gateway refused this one
/// unprocessed) is sent again with a new timestamp after a random 1-50 ms,
/// at most 3 times within the overall timeout.
///
/// - `gateway_url`: `http://` or `https://` address of the API gateway, with
///   an optional path prefix and trailing slash. Not NULL.
/// - `app_key`, `app_secret`: the application's credentials, non-empty. Not NULL.
/// - `token_out`: receives a new NUL-terminated token string on success,
///   owned by the caller and freed with `enos_string_free()`; set to NULL on
///   any failure. Not NULL.
/// - `expire_out`: receives the token's lifetime in seconds on success, 0 on
///   failure. May be NULL.
///
/// All strings are NUL-terminated UTF-8. Default options: connect timeout
/// 10 s, overall 30 s, the Mozilla roots, and the proxy environment variables
/// (as libcurl reads them). Connections are pooled per gateway URL for the
/// whole process, so calling this in a loop costs no new handshake per call.
/// Thread-safe; timestamps never repeat within the process.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`,
/// `ENOS_ERR_CONNECT`, `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`,
/// `ENOS_ERR_HTTP_STATUS`, `ENOS_ERR_BAD_RESPONSE`, `ENOS_ERR_SERVICE`,
/// `ENOS_ERR_INTERNAL`; details in `enos_last_error_message()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_get_access_token(
    gateway_url: *const c_char,
    app_key: *const c_char,
    app_secret: *const c_char,
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> enos_status {
    // SAFETY (all blocks): the caller's contract, the header's conventions.
    fallible(|| unsafe {
        with_token_outputs(token_out, expire_out, || {
            let (gateway_url, app_key, app_secret) = credentials(gateway_url, app_key, app_secret)?;
            crate::oneshot::get_access_token(gateway_url, app_key, app_secret)
        })
    })
}

/// Refreshes `access_token` at the gateway at `gateway_url`, without a handle.
///
/// Sends Refresh Access Token (`POST {gateway_url}/apim-token-service/v2.0/token/refresh`).
/// The gateway answers with a token of renewed lifetime. An expired token can
/// no longer be refreshed: the gateway answers 1203 (`ENOS_ERR_SERVICE`,
/// `enos_last_service_status() == 1203`), and a new one must be got with
/// `enos_get_access_token()`.
///
/// - `gateway_url`, `app_key`, `app_secret`: as for `enos_get_access_token()`.
/// - `access_token`: the token to refresh, non-empty. Not NULL.
/// - `token_out`: receives the new token on success, owned by the caller and
///   freed with `enos_string_free()`; set to NULL on any failure. Not NULL.
/// - `expire_out`: receives the new token's lifetime in seconds on success,
///   0 on failure. May be NULL.
///
/// Options, pooling and thread safety as for `enos_get_access_token()`.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`,
/// `ENOS_ERR_CONNECT`, `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`,
/// `ENOS_ERR_HTTP_STATUS`, `ENOS_ERR_BAD_RESPONSE`, `ENOS_ERR_SERVICE`,
/// `ENOS_ERR_INTERNAL`; details in `enos_last_error_message()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_refresh_access_token(
    gateway_url: *const c_char,
    app_key: *const c_char,
    app_secret: *const c_char,
    access_token: *const c_char,
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> enos_status {
    // SAFETY (all blocks): the caller's contract, the header's conventions.
    fallible(|| unsafe {
        with_token_outputs(token_out, expire_out, || {
            let (gateway_url, app_key, app_secret) = credentials(gateway_url, app_key, app_secret)?;
            let access_token = required_str(access_token, "access_token")?;
            crate::oneshot::refresh_access_token(gateway_url, app_key, app_secret, access_token)
        })
    })
}
