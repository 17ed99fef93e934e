//! One-shot Get and Refresh: no handle, for scripts and simple programs.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{fallible, optional_mut, required_mut, required_str};
use super::status::enos_status;
use super::strings::owned_c_str;
use crate::error::Error;
use crate::response::Token;

/// Resets the token outputs, as every failure must leave them: `*token_out`
/// NULL and `*expire_out` 0. Returns them for writing on success.
///
/// # Safety
/// Each pointer is NULL or valid for writes.
pub(crate) unsafe fn reset_token_outputs<'a>(
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> Result<(&'a mut *mut c_char, Option<&'a mut i64>), Error> {
    // SAFETY: forwarded contract.
    let mut expire = unsafe { optional_mut(expire_out) };
    if let Some(expire) = expire.as_deref_mut() {
        *expire = 0;
    }
    // SAFETY: forwarded contract.
    let token = unsafe { required_mut(token_out, "token_out") }?;
    *token = ptr::null_mut();
    Ok((token, expire))
}

/// Writes a token and its lifetime to the outputs.
pub(crate) fn write_token(
    token: Token,
    token_out: &mut *mut c_char,
    expire_out: Option<&mut i64>,
) -> Result<(), Error> {
    *token_out = owned_c_str(&token.access_token)?;
    if let Some(expire) = expire_out {
        *expire = token.expire_s;
    }
    Ok(())
}

/// Gets an access token from the gateway at `gateway_url`, without a handle.
///
/// Sends Get Access Token (`POST {gateway_url}/apim-token-service/v2.0/token/get`)
/// with a fresh millisecond timestamp and its `encryption`. The gateway
/// returns the application's current token while it is valid, so the
/// lifetime can be less than 7200 s.
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
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let (token_out, expire_out) = unsafe { reset_token_outputs(token_out, expire_out) }?;
        let gateway_url = unsafe { required_str(gateway_url, "gateway_url") }?;
        let app_key = unsafe { required_str(app_key, "app_key") }?;
        let app_secret = unsafe { required_str(app_secret, "app_secret") }?;
        let token = crate::client::get_access_token(gateway_url, app_key, app_secret)?;
        write_token(token, token_out, expire_out)
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
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let (token_out, expire_out) = unsafe { reset_token_outputs(token_out, expire_out) }?;
        let gateway_url = unsafe { required_str(gateway_url, "gateway_url") }?;
        let app_key = unsafe { required_str(app_key, "app_key") }?;
        let app_secret = unsafe { required_str(app_secret, "app_secret") }?;
        let access_token = unsafe { required_str(access_token, "access_token") }?;
        let token =
            crate::client::refresh_access_token(gateway_url, app_key, app_secret, access_token)?;
        write_token(token, token_out, expire_out)
    })
}
