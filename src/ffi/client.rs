//! The reusable client handle and its builder.

use std::ffi::c_char;
use std::ptr;
use std::time::Duration;

use super::boundary::{fallible, infallible, required_mut, required_ref, required_str};
use super::oneshot::{reset_token_outputs, write_token};
use super::status::enos_status;
use crate::client::{Client, ClientBuilder};

/// Options for a client, filled in before `enos_client_build()`.
///
/// Created by `enos_client_builder_new()`; consumed by `enos_client_build()`
/// or released by `enos_client_builder_free()`. Not thread-safe: set options
/// from one thread at a time.
pub struct enos_client_builder {
    pub(crate) options: ClientBuilder,
}

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

/// Starts the options for a client of `gateway_url` and the application
/// `app_key`/`app_secret`.
///
/// - `gateway_url`: `http://` or `https://` address of the API gateway, with
///   an optional path prefix and trailing slash. Not NULL.
/// - `app_key`, `app_secret`: non-empty UTF-8. Not NULL. The secret is kept
///   only inside the library and never appears in a message.
/// - `out`: receives the new builder on success, NULL on failure. Not NULL.
///   Pass it to `enos_client_build()` (which consumes it) or
///   `enos_client_builder_free()`.
///
/// Defaults: connect timeout 10 s, overall 30 s, the Mozilla roots, proxy
/// from the environment.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_new(
    gateway_url: *const c_char,
    app_key: *const c_char,
    app_secret: *const c_char,
    out: *mut *mut enos_client_builder,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let out = unsafe { required_mut(out, "out") }?;
        *out = ptr::null_mut();
        let gateway_url = unsafe { required_str(gateway_url, "gateway_url") }?;
        let app_key = unsafe { required_str(app_key, "app_key") }?;
        let app_secret = unsafe { required_str(app_secret, "app_secret") }?;
        let builder = ClientBuilder::new(gateway_url, app_key, app_secret)?;
        *out = Box::into_raw(Box::new(enos_client_builder { options: builder }));
        Ok(())
    })
}

/// Sets the time allowed to open a connection (TCP, proxy and TLS
/// handshakes), `connect_ms`, and for a whole call, `total_ms`, from its
/// start to the last byte of the answer. Both must be at least 1; a connect
/// timeout longer than the total is cut to the total. Defaults: 10000 and 30000.
///
/// On failure the builder is unchanged.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` (`builder` NULL),
/// `ENOS_ERR_INVALID_ARGUMENT` (a zero timeout) or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_timeout_ms(
    builder: *mut enos_client_builder,
    connect_ms: u64,
    total_ms: u64,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder.options.timeouts(
            Duration::from_millis(connect_ms),
            Duration::from_millis(total_ms),
        )?;
        Ok(())
    })
}

/// Trusts the certificates in the PEM file `pem_path` (one or more) instead
/// of the built-in Mozilla roots, for gateways behind a private CA. The file
/// is read now; later changes to it have no effect.
///
/// On failure (unreadable file, no certificate, bad PEM) the builder is
/// unchanged.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_ca_file(
    builder: *mut enos_client_builder,
    pem_path: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        let pem_path = unsafe { required_str(pem_path, "pem_path") }?;
        builder.options.ca_file(pem_path)?;
        Ok(())
    })
}

/// Sets the proxy, overriding the environment: `http://host:port` (an
/// `http://` gateway's requests are forwarded to it, as libcurl does, with
/// `Proxy-Authorization` when the URL has credentials; an `https://`
/// gateway is reached through a CONNECT tunnel), `socks5://host:port` (also
/// `https://` for CONNECT over TLS, `socks4://`, `socks4a://`, `socks5h://`;
/// user and password may be given as `scheme://user:password@host:port`,
/// percent-encoded). A port must be 1-65535. The empty string `""` turns proxies
/// off, whatever the environment says.
///
/// Without this call the client reads, when built and as libcurl does,
/// `https_proxy`/`HTTPS_PROXY` for an `https://` gateway or
/// `http_proxy`/`HTTP_PROXY` for an `http://` one, then `all_proxy`/`ALL_PROXY`,
/// and skips the proxy when the gateway's host matches `no_proxy`/`NO_PROXY`.
///
/// On failure the builder is unchanged. Messages never repeat the proxy URL,
/// which may hold a password.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_proxy(
    builder: *mut enos_client_builder,
    proxy_url: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        let proxy_url = unsafe { required_str(proxy_url, "proxy_url") }?;
        builder.options.proxy(proxy_url)?;
        Ok(())
    })
}

/// Builds a client from the options in `builder`.
///
/// **Consumes `builder`, even on failure**: do not use or free `builder` afterwards. The
/// proxy environment is read now, unless a proxy was set. No connection is
/// opened yet.
///
/// - `out`: receives the new client on success, NULL on failure; free it
///   with `enos_client_free()`. Not NULL (if it is, `builder` is still consumed).
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// (for example a proxy environment variable that is not a valid URL) or
/// `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_build(
    builder: *mut enos_client_builder,
    out: *mut *mut enos_client,
) -> enos_status {
    fallible(|| {
        // Take ownership first, so that `builder` is consumed whatever happens next.
        // SAFETY: per the contract `builder` came from `Box::into_raw` and is live.
        let builder = (!builder.is_null()).then(|| unsafe { Box::from_raw(builder) });
        // SAFETY: the caller's contract, documented above.
        let out = unsafe { required_mut(out, "out") }?;
        *out = ptr::null_mut();
        let Some(builder) = builder else {
            return Err(crate::Error::new(
                crate::ErrorKind::NullArgument,
                "builder is NULL",
            ));
        };
        let client = builder.options.build()?;
        *out = Box::into_raw(Box::new(enos_client { inner: client }));
        Ok(())
    })
}

/// Releases a builder that was not passed to `enos_client_build()`.
/// NULL is accepted and does nothing. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_free(builder: *mut enos_client_builder) {
    infallible((), || {
        if !builder.is_null() {
            // SAFETY: per the contract `builder` came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(builder) });
        }
    })
}

/// Releases a client and closes its connections. NULL is accepted and does
/// nothing. No call on `client` may be running, or start, on any thread. Does not
/// touch the last error.
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
/// success the token also becomes the client's managed token.
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
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let (token_out, expire_out) = unsafe { reset_token_outputs(token_out, expire_out) }?;
        let client = unsafe { required_ref(client, "client") }?;
        write_token(client.inner.get_token()?, token_out, expire_out)
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
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let (token_out, expire_out) = unsafe { reset_token_outputs(token_out, expire_out) }?;
        let client = unsafe { required_ref(client, "client") }?;
        let access_token = unsafe { required_str(access_token, "access_token") }?;
        write_token(
            client.inner.refresh_token(access_token)?,
            token_out,
            expire_out,
        )
    })
}
