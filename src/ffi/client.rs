//! The reusable client handle and its builder.

use std::ffi::c_char;

use super::boundary::{fallible, infallible, required_ref, required_str, with_token_outputs};
use super::status::enos_status;
use crate::client::Client;

/// A reusable client for one gateway and one application: it keeps
/// connections alive and holds the options.
///
/// Created by `enos_client_build()`, released by `enos_client_free()`.
/// Thread-safe: any number of threads may call functions taking a
/// `const enos_client *` on the same client at once. Free it only when no
/// call on it is running.
pub struct enos_client {
    pub(crate) inner: Client,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<enos_client>();
};

/// Releases a client and closes its connections. NULL is accepted and does
/// nothing. No call on `client` may be running, or start, on any thread. Does not
/// touch the last error.
///
/// Its calls in flight (`enos_client_send_async()`) are cancelled; their
/// workers finish without it. Once this returns, the client's log callback
/// is never called again and none is still running, so its `user_data` may
/// be freed: if a worker is inside the log callback, this waits for it to
/// return (do not free the client while holding a lock the callback takes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_free(client: *mut enos_client) {
    infallible((), || {
        if !client.is_null() {
            // SAFETY: per the contract `client` came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// Gets an access token (Get Access Token) with the client's connections,
/// options and credentials. Always a network call; see
/// `enos_client_access_token()` for a cached, self-refreshing token. On
/// success the token also becomes the client's managed token. A Get
/// answered 1001 (another process of the application sent the same
/// timestamp; refused unprocessed) is sent again with a new timestamp after
/// a random 1-50 ms, at most 3 times within the overall timeout (counted in
/// `retries`); a Refresh never is.
///
/// - `client`: the client. Not NULL.
/// - `token_out`: receives the token on success, owned by the caller and
///   freed with `enos_string_free()`; NULL on any failure. Not NULL.
/// - `expire_out`: receives the lifetime in seconds on success, 0 on
///   failure. May be NULL.
///
/// Thread-safe: many threads may call this on one client at once; each
/// request carries its own timestamp.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_CONNECT`,
/// `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`, `ENOS_ERR_HTTP_STATUS`,
/// `ENOS_ERR_BAD_RESPONSE`, `ENOS_ERR_SERVICE`, `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_get_token(
    client: *const enos_client,
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> enos_status {
    // SAFETY (all blocks): the caller's contract, the header's conventions.
    fallible(|| unsafe {
        with_token_outputs(token_out, expire_out, || {
            required_ref(client, "client")?.inner.get_token()
        })
    })
}

/// Refreshes `access_token` (Refresh Access Token) with the client's
/// connections, options and credentials.
///
/// - `client`: the client. Not NULL.
/// - `access_token`: the token to refresh, non-empty UTF-8. Not NULL.
/// - `token_out`: receives the new token on success, owned by the caller and
///   freed with `enos_string_free()`; NULL on any failure. Not NULL.
/// - `expire_out`: receives its lifetime in seconds on success, 0 on
///   failure. May be NULL.
///
/// An expired token cannot be refreshed: the gateway answers 1203
/// (`ENOS_ERR_SERVICE`); get a new one with `enos_client_get_token()`.
/// On success the new token also becomes the client's managed token.
/// Thread-safe.
///
/// **A lost answer** (the connection closed after the request was sent, as
/// a server closing a kept-alive connection does) is told apart by a Get:
/// a token other than `access_token` means the Refresh happened, and it is
/// the result; the same token means it did not, and the Refresh is sent
/// once more (safe then). All within the client's overall timeout. If the
/// Get fails too, the error says the gateway may have processed the
/// Refresh, and a managed token equal to `access_token` is dropped (it may
/// be retired).
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`,
/// `ENOS_ERR_CONNECT`, `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`,
/// `ENOS_ERR_HTTP_STATUS`, `ENOS_ERR_BAD_RESPONSE`, `ENOS_ERR_SERVICE`,
/// `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_refresh_token(
    client: *const enos_client,
    access_token: *const c_char,
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> enos_status {
    // SAFETY (all blocks): the caller's contract, the header's conventions.
    fallible(|| unsafe {
        with_token_outputs(token_out, expire_out, || {
            let client = required_ref(client, "client")?;
            client
                .inner
                .refresh_token(required_str(access_token, "access_token")?)
        })
    })
}
