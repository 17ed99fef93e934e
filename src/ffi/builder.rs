//! The builder: every option of a client, set before `enos_client_build()`.

use std::ffi::{CString, c_char, c_void};
use std::ptr;
use std::time::Duration;

use super::boundary::{credentials, fallible, infallible, required_mut, required_str};
use super::client::enos_client;
use super::status::enos_status;
use crate::client::ClientBuilder;
use crate::log::{LogLevel, Logger};

/// Options for a client, filled in before `enos_client_build()`.
///
/// Created by `enos_client_builder_new()`; consumed by `enos_client_build()`
/// or released by `enos_client_builder_free()`. Not thread-safe: set options
/// from one thread at a time.
pub struct enos_client_builder {
    pub(crate) options: ClientBuilder,
}

/// How important a log message is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum enos_log_level {
    /// A call failed and its caller gets an error.
    ENOS_LOG_ERROR = 1,
    /// A failure was handled: a retry, or a cached token served after a
    /// failed refresh.
    ENOS_LOG_WARN = 2,
    /// A token was fetched or invalidated.
    ENOS_LOG_INFO = 3,
    /// One line per API call made with `enos_client_request()`: method,
    /// path without query values, HTTP status and time.
    ENOS_LOG_DEBUG = 4,
}

/// A log callback: `level`, a NUL-terminated UTF-8 `message` valid only
/// during the call, and the `user_data` given with the callback.
///
/// Called on the thread whose call produced the message (or on the
/// client's background thread, or on the worker running a call of
/// `enos_client_send_async()`), possibly from many threads at once: guard
/// what it writes to. It is
/// never called while the library holds a lock or while a fetch that other
/// callers wait for is still open: the callback may call any library
/// function, on any client, its own included (but must not free the client
/// it is called for), and the time it takes delays only the thread it runs
/// on. Messages never hold a token (at most its first 4 characters and its
/// length), the secret or a signature.
pub type enos_log_callback = Option<
    unsafe extern "C" fn(level: enos_log_level, message: *const c_char, user_data: *mut c_void),
>;

/// `user_data` travels with the callback to whatever thread logs.
struct CallbackTarget {
    callback: unsafe extern "C" fn(enos_log_level, *const c_char, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: the header tells the caller that the callback and its user_data
// are used from any thread that calls into the client.
unsafe impl Send for CallbackTarget {}
unsafe impl Sync for CallbackTarget {}

impl CallbackTarget {
    fn call(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Error => enos_log_level::ENOS_LOG_ERROR,
            LogLevel::Warn => enos_log_level::ENOS_LOG_WARN,
            LogLevel::Info => enos_log_level::ENOS_LOG_INFO,
            LogLevel::Debug => enos_log_level::ENOS_LOG_DEBUG,
        };
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the caller promised a callback safe to call from any thread.
        unsafe { (self.callback)(level, message.as_ptr(), self.user_data) };
    }
}

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
        let (gateway_url, app_key, app_secret) =
            unsafe { credentials(gateway_url, app_key, app_secret) }?;
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
/// and skips the proxy when the gateway's host matches `no_proxy`/`NO_PROXY`
/// or is a loopback one (`localhost`, `127.0.0.0/8`, `::1`: a proxy for the
/// internet never captures a local test gateway, as in Go's `net/http`); this
/// call's proxy applies to any gateway, a loopback one included.
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

/// Sets when the managed token is refreshed: once less than `seconds` is left
/// of its lifetime (default 600), less a random part of the margin, so that
/// processes sharing an app key do not all refresh in the same second. The
/// part is 0-10% for a token this process refreshed, 10-20% for one it got
/// by Get or from a sibling through the shared cache (at most 60 s and
/// 120 s): hosts that share an app key but no cache all hold the token a Get
/// returns, and the one that refreshed it last is the one due first, so no
/// two of them refresh the same token. A margin not shorter than the
/// lifetime means a refresh at half the lifetime. 0 refreshes only at
/// expiry.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_refresh_margin_s(
    builder: *mut enos_client_builder,
    seconds: u32,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder
            .options
            .refresh_margin(Duration::from_secs(u64::from(seconds)));
        Ok(())
    })
}

/// Sets how the client retries: at most `max_retries` more attempts
/// (default 2, at most 100), waiting about `base_backoff_ms` (default 200,
/// at most 3600000) before the first and doubling. 0 retries sends once.
///
/// **Token requests** (the managed token's Get and Refresh) retry a
/// transient failure (connect, timeout, HTTP 5xx, gateway 1005) with jitter,
/// all within the overall timeout. A 1001 (a timestamp another process also
/// sent) is retried up to 3 times after a random 1-50 ms; 1002, 1003, 1004
/// and 1202 never are.
///
/// **API calls** (`enos_client_request()`, `enos_client_send()`) retry:
/// - HTTP 429, any method: EnOS API Management's rate limiter refuses before
///   it forwards a call, so a refused call, even a POST, was not processed
///   (the docs do not say so; the library assumes it);
/// - HTTP 502, 503 and 504, and a connection that failed after the request
///   was written but before any byte of the answer: only GET, HEAD, PUT,
///   DELETE and OPTIONS (a POST or PATCH may have been processed: it is
///   returned at once);
/// - a connection that could not be opened (refused, unreachable, timed out
///   while connecting): any method, since nothing was sent.
///
/// Never retried: other statuses, a token refusal (renewed instead), a
/// request with a callback part, an answer already being written to an
/// output (a broken GET download resumes instead, up to `max_retries` times
/// in a row without progress). The wait is exponential backoff with full
/// jitter (a random share of `base_backoff_ms` doubled per retry), each at
/// most 5 s; a `Retry-After` (seconds or an HTTP date) replaces it, at most
/// 60 s, plus up to a tenth more. A wait that would end after the call's
/// deadline is not taken: the last answer is returned at once (`ENOS_OK`
/// with its status). Each client has a retry budget, the AWS SDKs'
/// "standard" retry quota: a token bucket of 500; a retry takes 5 (10 after
/// a timeout or a failed connection), a call whose first answer needs no
/// retry puts 1 back, and with the bucket empty nothing is retried, so an
/// outage costs the gateway at most a hundred retries more than the calls
/// themselves. Counted in `api_retries` and `api_retries_denied`
/// (`enos_client_get_counters()`); each retry logs an `ENOS_LOG_INFO` line.
///
/// On failure the builder is unchanged.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_retries(
    builder: *mut enos_client_builder,
    max_retries: u32,
    base_backoff_ms: u64,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder
            .options
            .retries(max_retries, Duration::from_millis(base_backoff_ms))?;
        Ok(())
    })
}

/// Turns background refresh on (`enabled` true) or off (the default).
///
/// On: the client runs one thread of its own (named `enos-token-refresh`)
/// that refreshes the managed token when it is due, with the same margin,
/// jitter, retries, 30 s pause after a failure and fallback to the cached
/// token as a caller would. Once the client has a token, callers of
/// `enos_client_access_token()` never wait for the network: they wait only
/// while no valid token exists (before the first one, after an
/// invalidation, or after expiry through an outage). The first token is
/// still fetched by the first caller. Log messages about background fetches
/// come from that thread.
///
/// Off: the caller that finds the token due refreshes it, while every other
/// caller is served the still-valid token at once.
///
/// `enos_client_free()` stops the thread: a fetch in flight is interrupted
/// (its connections are shut down, so this takes milliseconds, not the
/// timeout), and the thread has ended when `enos_client_free()` returns.
/// After `fork()` the thread exists only in the parent: in the child the
/// client refreshes lazily, as with this option off. Free every client
/// before unloading the library with `dlclose()`.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_background_refresh(
    builder: *mut enos_client_builder,
    enabled: bool,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder.options.background_refresh(enabled);
        Ok(())
    })
}

/// The largest API answer `enos_client_request()` reads: a larger one is
/// `ENOS_ERR_BAD_RESPONSE` naming the limit, and the body is never buffered
/// past it. Default 64 MiB.
///
/// - `max_bytes`: at least 1.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// (`max_bytes` 0) or `ENOS_ERR_INTERNAL`. On failure the builder is unchanged.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_max_response_bytes(
    builder: *mut enos_client_builder,
    max_bytes: usize,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder.options.max_response_bytes(max_bytes as u64)?;
        Ok(())
    })
}

/// Shares the managed token with every client, in this process or any other
/// on this host, that is given the same directory `path`, for the same
/// gateway URL and app key: one token and one Get/Refresh for the fleet.
///
/// - `path`: a directory (created with mode 0700 if it does not exist),
///   opened and checked now; the files are later created in the directory
///   checked, even if `path` is renamed or replaced meanwhile. Refused with
///   `ENOS_ERR_INVALID_ARGUMENT` when it is a symbolic link, not a
///   directory, belongs to another user, or is writable by group or
///   others, and when one of its ancestors belongs to a user other than
///   root or you, or is writable by group or others without the sticky bit
///   (as OpenSSH checks; `/tmp` is fine); the message names the culprit.
///   `""` turns sharing off (the default). A good place is
///   `$XDG_RUNTIME_DIR/enos-token` (private to the user, gone at logout).
///   Spellings of one directory (`d`, `d/sub/..`, a symbolic link to a
///   parent) share one file and one lock.
///
/// Each (gateway URL, app key) gets a file of its own there, mode 0600,
/// holding the current token and when it was fetched, never the secret.
/// `enos_client_build()` refuses (`ENOS_ERR_INVALID_ARGUMENT`) a file that
/// is a symbolic link, not a regular file, not ours, has other links, or is
/// open to others. The file is read and written with `pread`/`pwrite`,
/// never mapped, so no signal can come of it. Content is believed only if
/// it passes the checks a gateway answer passes (a token of visible ASCII,
/// a lifetime in range, a send time not in the future); anything else (a
/// damaged, truncated or planted record) is ignored with one WARN log line,
/// and a token is fetched and written anew.
///
/// A full, read-only or failing file system (no space to allocate the
/// file's 8 KiB) is not an error: `enos_client_build()` succeeds, logs one
/// WARN line naming the directory and the cause, and the client works
/// without sharing.
///
/// What holds across the fleet: a client about to Get or Refresh takes the
/// file's lock (an open-file-description lock: the kernel drops it when its
/// holder dies, and closing another descriptor never does), re-reads the
/// file and fetches only if no sibling did meanwhile; a new token is
/// written to the file and every sibling serves it within a millisecond
/// (the cached path reads 8 bytes of the file at most once a millisecond);
/// a token invalidated by one (`enos_client_invalidate()`) is dropped by all, and
/// the fleet gets one new token; after a failed refresh the whole fleet
/// waits 30 s before the next attempt. A holder that is stopped or hung
/// (SIGSTOP, a debugger) never freezes the fleet: a sibling without a valid
/// token waits for the lock at most until the holder's deadline or half of
/// its own remaining time, then Gets on its own (one extra Get; a due
/// Refresh is skipped instead, the token still being valid). Request
/// timestamps are drawn from the file too, so no two processes of the
/// fleet ever send the same one (without a shared cache they are unique
/// within a process and the processes forked from it).
///
/// Processes on other hosts cannot share a file: the gateway's
/// one-token-per-app-key rule then makes one host's Refresh retire the token
/// the others hold. `enos_client_request()` handles that (the refused call
/// Gets the current token and is sent again, once); a program that sends
/// its own calls calls `enos_client_invalidate()` on a refusal. Each host
/// then costs one Get per Refresh of the app key's token.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`. On failure the builder is unchanged.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_shared_cache(
    builder: *mut enos_client_builder,
    path: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        let path = unsafe { required_str(path, "path") }?;
        builder.options.shared_cache(path)?;
        Ok(())
    })
}

/// Sets how many calls of `enos_client_send_async()` run at once (default
/// 64, 1-4096); more wait in a queue. The connection pool keeps as many
/// connections to the gateway for reuse.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// (0 or over 4096) or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_max_concurrent_calls(
    builder: *mut enos_client_builder,
    calls: u32,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        builder.options.max_concurrent_calls(calls as usize)?;
        Ok(())
    })
}

/// Sends the client's log messages to `callback` with `user_data` (see
/// `enos_log_callback` for when and from which threads it is called).
/// `callback` NULL turns logging off (the default). It must be safe to call
/// from any thread with `user_data`. `user_data` may be NULL; it must stay
/// valid until `enos_client_free()` returns (after which the callback is
/// never called).
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_builder_set_log_callback(
    builder: *mut enos_client_builder,
    callback: enos_log_callback,
    user_data: *mut c_void,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let builder = unsafe { required_mut(builder, "builder") }?;
        let logger = callback.map(|callback| {
            let target = CallbackTarget {
                callback,
                user_data,
            };
            Logger::new(move |level, message| target.call(level, message))
        });
        builder.options.logger(logger);
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
