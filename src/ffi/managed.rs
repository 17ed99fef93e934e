//! The managed token, its options, logging and counters.

use std::ffi::c_char;
use std::ptr;

use super::boundary::{fallible, optional_str, required_mut, required_ref};
use super::client::enos_client;
use super::status::enos_status;
use super::strings::owned_c_token;

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
    /// API calls made with `enos_client_request()` (each counted once,
    /// whether or not it was sent again with a renewed token).
    pub api_calls: u64,
    /// Tokens renewed because an API call's token was refused (HTTP 401 or
    /// gateway status 1203).
    pub token_renewals: u64,
    /// API calls sent again after an HTTP 429, a 502/503/504 of an
    /// idempotent call, or a failed connection.
    pub api_retries: u64,
    /// Retries of API calls not made: the client's retry budget was spent,
    /// or the wait would have ended after the call's deadline.
    pub api_retries_denied: u64,
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
///   call (then `ENOS_ERR_TIMEOUT`), and share its outcome. The fetch runs
///   on the latest deadline among the callers waiting for it, never on a
///   shorter one left to the caller that started it (which runs it to the
///   end).
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
        *token_out = client.inner.access_token_with(owned_c_token)??;
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
            v.api_calls,
            v.token_renewals,
            v.api_retries,
            v.api_retries_denied,
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
