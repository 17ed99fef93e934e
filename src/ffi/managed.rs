//! The managed token, its options, logging and counters.

use std::ffi::{CString, c_char, c_void};
use std::ptr;
use std::time::Duration;

use super::boundary::{fallible, optional_str, required_mut, required_ref, required_str};
use super::client::{enos_client, enos_client_builder};
use super::status::enos_status;
use super::strings::owned_c_str;
use crate::log::{LogLevel, Logger};

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
}

/// A log callback: `level`, a NUL-terminated UTF-8 `message` valid only
/// during the call, and the `user_data` given with the callback.
///
/// Called on the thread whose call produced the message (or on the
/// client's background thread), possibly from many threads at once. It is
/// never called while the library holds a lock or while a fetch that other
/// callers wait for is still open: the callback may call any library
/// function, on any client, its own included (but must not free the client
/// it is called for), and the time it takes delays only the thread it runs
/// on. Messages never hold a token (at most its first 4 characters and its
/// length), the secret or a signature.
pub type enos_log_callback = Option<
    unsafe extern "C" fn(level: enos_log_level, message: *const c_char, user_data: *mut c_void),
>;

/// What a client has done since it was built. Counters only grow.
///
/// The struct can grow in later versions, at its end: set `struct_size` to
/// `sizeof(enos_client_counters)` before calling
/// `enos_client_get_counters()`, which then fills only the fields that fit
/// in that size (a program built against an older, smaller struct is never
/// written past its end) and sets to 0 the bytes of fields it does not know
/// (a program built against a newer header on an older library).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct enos_client_counters {
    /// Set by the caller: `sizeof(enos_client_counters)`. Never written by
    /// the library.
    pub struct_size: usize,
    /// Get requests sent (every attempt; `enos_client_get_token()` included).
    pub get_requests: u64,
    /// Refresh requests sent (every attempt; `enos_client_refresh_token()` included).
    pub refresh_requests: u64,
    /// Attempts that retried a failed one.
    pub retries: u64,
    /// Managed fetches that ended without a new token (the caller then got
    /// the cached token, or an error when there was no valid one).
    pub failures: u64,
    /// Callers of `enos_client_access_token()` that waited for another
    /// caller's fetch instead of starting their own.
    pub waits: u64,
    /// Tokens served from the cache without a request.
    pub cache_hits: u64,
    /// DNS lookups (none for an IP address; none on a pooled connection).
    pub dns_lookups: u64,
}

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
        };
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the caller promised a callback safe to call from any thread.
        unsafe { (self.callback)(level, message.as_ptr(), self.user_data) };
    }
}

/// Sets when the managed token is refreshed: once less than `seconds` is left
/// of its lifetime (default 600). Each token lengthens its margin by a random
/// 0-10% (at most 60 s), so that processes sharing an app key do not all
/// refresh in the same second. A margin not shorter than the lifetime means
/// a refresh at half the lifetime. 0 refreshes only at expiry.
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

/// Sets how the managed token retries a transient failure (connect, timeout,
/// HTTP 5xx, gateway 1005): at most `max_retries` more attempts (default 2,
/// at most 100), waiting about `base_backoff_ms` (default 200, at most
/// 3600000) before the first and doubling, with jitter. All attempts fit in
/// the overall timeout. A 1001 (replay) is retried once at once; 1002, 1003,
/// 1004 and 1202 never are.
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

/// Shares the managed token with every client, in this process or any other
/// on this host, that is given the same directory `path`, for the same
/// gateway URL and app key: one token and one Get/Refresh for the fleet.
///
/// - `path`: a directory (created with mode 0700 if it does not exist).
///   Refused with `ENOS_ERR_INVALID_ARGUMENT` when it is a symbolic link,
///   belongs to another user, or is writable by group or others. `""`
///   turns sharing off (the default). A good place is
///   `$XDG_RUNTIME_DIR/enos-token` (private to the user, gone at logout).
///
/// Each (gateway URL, app key) gets a file of its own there, mode 0600,
/// holding the current token and when it was fetched, never the secret.
/// `enos_client_build()` refuses (`ENOS_ERR_INVALID_ARGUMENT`) a file that
/// is a symbolic link, not a regular file, not ours, has other links, or is
/// open to others; content that does not check out is ignored and
/// rewritten.
///
/// What holds across the fleet: a client about to Get or Refresh takes the
/// file's lock (a POSIX record lock the kernel drops when its holder dies),
/// re-reads it and fetches only if no sibling did meanwhile; a new token is
/// written to the file and every sibling serves it from its next call on
/// (the cached path checks one shared counter: no system call); a token
/// invalidated by one (`enos_client_invalidate()`) is dropped by all, and
/// the fleet gets one new token; after a failed refresh the whole fleet
/// waits 30 s before the next attempt. Processes on other hosts cannot
/// share a file: each host's fleet fetches its own token, and the gateway's
/// one-token-per-app-key rule then retires the others' tokens on Refresh,
/// so give each host its own app key, or expect their API calls to be
/// rejected (and then call `enos_client_invalidate()`) after a sibling
/// host's refresh.
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

/// Sends the client's log messages to `callback` with `user_data` (see
/// `enos_log_callback` for when and from which threads it is called).
/// `callback` NULL turns logging off (the default). It must be safe to call
/// from any thread with `user_data`. `user_data` may be NULL; it must stay
/// valid as long as the client lives.
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

/// A token valid now, for an API call: the managed token.
///
/// - A cached token with more than the refresh margin left: returned at
///   once, without a request or a lock.
/// - A cached token inside the margin but still valid: returned at once as
///   well. Meanwhile one caller refreshes it (Refresh, and Get if the
///   gateway answers 1203 or 1204), or the background thread does
///   (`enos_client_builder_set_background_refresh()`); no other caller waits.
/// - No valid token (none yet, invalidated, or expired by the monotonic or
///   the wall clock, counted from when its request was sent): Get. At most
///   one Get/Refresh per client is in flight: other callers wait for it,
///   each at most the client's overall timeout from the start of its own
///   call (then `ENOS_ERR_TIMEOUT`), and share its outcome.
/// - Transient failures are retried (`enos_client_builder_set_retries()`).
///   If the fetch still fails while the cached token is valid, that token is
///   returned and the next attempt waits 30 s (or until expiry). Only when
///   there is no valid token does the caller get the error, with the
///   gateway's status in `enos_last_service_status()` when there was one;
///   callers within the next second get the same error without a request.
/// - The client starts at most one managed Get/Refresh per second. A token
///   the gateway gives less than a second to live (`expire` 0 in a token's
///   last second) is served for one second after its request was sent.
///
/// - `client`: the client. Not NULL.
/// - `token_out`: receives the token on success, owned by the caller and
///   freed with `enos_string_free()`; NULL on any failure. Not NULL.
///
/// Thread-safe; meant to be called before every API call, from any number
/// of threads.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_CONNECT`,
/// `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`, `ENOS_ERR_HTTP_STATUS`,
/// `ENOS_ERR_BAD_RESPONSE`, `ENOS_ERR_SERVICE`, `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_access_token(
    client: *const enos_client,
    token_out: *mut *mut c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let token_out = unsafe { required_mut(token_out, "token_out") }?;
        *token_out = ptr::null_mut();
        let client = unsafe { required_ref(client, "client") }?;
        *token_out = client.inner.access_token_with(owned_c_str)??;
        Ok(())
    })
}

/// Tells the client that an API call rejected `rejected_token`: the cached
/// token is forgotten if it is `rejected_token` (a newer token is kept), so
/// the next `enos_client_access_token()` gets a new one. `rejected_token`
/// NULL forgets whatever is cached. Never makes a request.
///
/// Thread-safe.
///
/// Returns `ENOS_OK` (whether or not a token was forgotten),
/// `ENOS_ERR_NULL_ARGUMENT` (`client` NULL), `ENOS_ERR_INVALID_ARGUMENT` (not
/// UTF-8) or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_invalidate(
    client: *const enos_client,
    rejected_token: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let client = unsafe { required_ref(client, "client") }?;
        let rejected_token = unsafe { optional_str(rejected_token, "rejected_token") }?;
        client.inner.invalidate(rejected_token);
        Ok(())
    })
}

/// Copies the client's counters into `*counters_out`, whose `struct_size`
/// the caller has set (see `enos_client_counters`). Cheap; thread-safe. The
/// counters of a client in use by other threads are each exact but not read
/// at one instant.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// (`struct_size` smaller than the first version of the struct, 64 bytes on
/// 64-bit systems, or over 4096: not set) or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_get_counters(
    client: *const enos_client,
    counters_out: *mut enos_client_counters,
) -> enos_status {
    fallible(|| {
        if counters_out.is_null() {
            return Err(crate::Error::new(
                crate::ErrorKind::NullArgument,
                "counters_out is NULL",
            ));
        }
        // SAFETY: non-NULL, and `struct_size` is the first field of every
        // version of the struct.
        let size = unsafe { std::ptr::addr_of!((*counters_out).struct_size).read_unaligned() };
        if !(FIRST_COUNTERS_SIZE..=MAX_COUNTERS_SIZE).contains(&size) {
            return Err(crate::Error::invalid_argument(format!(
                "counters_out->struct_size is {size}: set it to sizeof(enos_client_counters), {}",
                std::mem::size_of::<enos_client_counters>()
            )));
        }
        // SAFETY: the caller's contract, documented above.
        let client = unsafe { required_ref(client, "client") }?;
        let v = client.inner.counters();
        let values = [
            v.get_requests,
            v.refresh_requests,
            v.retries,
            v.failures,
            v.waits,
            v.cache_hits,
            v.dns_lookups,
        ];
        let base = counters_out.cast::<u8>();
        let first_field = std::mem::offset_of!(enos_client_counters, get_requests);
        for (index, value) in values.into_iter().enumerate() {
            let offset = first_field + index * std::mem::size_of::<u64>();
            if offset + std::mem::size_of::<u64>() <= size {
                // SAFETY: inside the `size` bytes the caller said are writable.
                unsafe { base.add(offset).cast::<u64>().write_unaligned(value) };
            }
        }
        let known = std::mem::size_of::<enos_client_counters>();
        if size > known {
            // SAFETY: as above; the fields of a newer struct this library does not know.
            unsafe { std::ptr::write_bytes(base.add(known), 0, size - known) };
        }
        Ok(())
    })
}

/// The size of the first version of `enos_client_counters`: smaller is refused.
const FIRST_COUNTERS_SIZE: usize = std::mem::size_of::<usize>() + 7 * std::mem::size_of::<u64>();
/// A larger `struct_size` is taken for one that was never set.
const MAX_COUNTERS_SIZE: usize = 4096;
