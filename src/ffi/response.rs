//! An API's answer as C sees it: `enos_response` and its accessors.

use std::ffi::{CString, c_char};
use std::ptr;

use super::boundary::{infallible, optional_str};

/// An API's answer, owned by the caller until `enos_response_free()`: its
/// HTTP status, its headers and its whole body. Read it with
/// `enos_response_status()`, `enos_response_body()` and
/// `enos_response_header()`; everything they return stays valid until the
/// response is freed. A response may be read from any thread, by several
/// at once; it is not tied to the client (freeing the client first is fine).
pub struct enos_response {
    status: u16,
    /// The body followed by one NUL byte, not counted in `body_len`.
    body: Vec<u8>,
    body_len: usize,
    /// Names (lower case) and values as C strings, in the order of
    /// `enos_response_header_at`.
    headers: Vec<(CString, CString)>,
    attempts: u32,
    /// Read from the body when first asked for.
    request_id: std::sync::OnceLock<Option<CString>>,
}

impl Drop for enos_response {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

impl From<crate::Response> for enos_response {
    fn from(response: crate::Response) -> Self {
        let crate::api::ResponseParts {
            status,
            headers,
            mut body,
            attempts,
            request_id,
        } = response.into_parts();
        let body_len = body.len();
        if body.len() == body.capacity() {
            // Growing by hand: a reallocation would leave the body (it may
            // hold a token) in freed memory.
            let mut bigger = Vec::with_capacity(body.len() + 1);
            bigger.extend_from_slice(&body);
            crate::secret::wipe(&mut body);
            body = bigger;
        }
        body.push(0);
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                let c_string = |text: String| {
                    // A NUL inside would cut the C string: it becomes a space
                    // (in place, no second copy).
                    let mut bytes = text.into_bytes();
                    bytes
                        .iter_mut()
                        .filter(|b| **b == 0)
                        .for_each(|b| *b = b' ');
                    CString::new(bytes).unwrap_or_default()
                };
                (c_string(name), c_string(value))
            })
            .collect();
        enos_response {
            status,
            body,
            body_len,
            headers,
            attempts,
            request_id: match request_id {
                Some(known) => std::sync::OnceLock::from(c_request_id(known)),
                None => std::sync::OnceLock::new(),
            },
        }
    }
}

fn c_request_id(id: Option<String>) -> Option<CString> {
    id.and_then(|id| CString::new(id).ok())
}

impl enos_response {
    fn request_id(&self) -> Option<&CString> {
        self.request_id
            .get_or_init(|| c_request_id(crate::api::request_id_of(&self.body[..self.body_len])))
            .as_ref()
    }
}

/// The HTTP status of `response` (for example 200 or 404); 0 if `response`
/// is NULL. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_status(response: *const enos_response) -> i32 {
    infallible(0, || {
        // SAFETY: NULL or a response from this library, not yet freed.
        unsafe { response.as_ref() }.map_or(0, |r| i32::from(r.status))
    })
}

/// How many times the call was sent: 1 for the first try; a renewed
/// token's resend, each retry (`enos_client_builder_set_retries()`) and each
/// resumed download add one. 0 if `response` is NULL. Does not touch the
/// last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_attempts(response: *const enos_response) -> u32 {
    infallible(0, || {
        // SAFETY: NULL or a response from this library, not yet freed.
        unsafe { response.as_ref() }.map_or(0, |r| r.attempts)
    })
}

/// The `requestId` of an EnOS answer envelope (`{"code"|"status", "msg",
/// "requestId", "data"}`): the id EnOS support asks for when a call went
/// wrong. NULL when the body is not such an envelope (or was streamed to an
/// output, or is over 1 MiB), or when `response` is NULL. Valid until
/// `enos_response_free()`. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_request_id(response: *const enos_response) -> *const c_char {
    infallible(ptr::null(), || {
        // SAFETY: NULL or a response from this library, not yet freed.
        unsafe { response.as_ref() }
            .and_then(|r| r.request_id())
            .map_or(ptr::null(), |id| id.as_ptr())
    })
}

/// The body of `response` and, in `*body_len_out`, its length in bytes. The
/// body is followed by a NUL byte that its length does not count, so a
/// text body can be read as a C string (a binary one may hold NULs: use the
/// length). Valid until `enos_response_free()`. `body_len_out` may be NULL.
/// A NULL `response` gives NULL and a length of 0. Does not touch the last
/// error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_body(
    response: *const enos_response,
    body_len_out: *mut usize,
) -> *const u8 {
    infallible(ptr::null(), || {
        // SAFETY: NULL or a response from this library, not yet freed.
        let response = unsafe { response.as_ref() };
        // SAFETY: NULL or a writable size_t, per the caller's contract.
        if let Some(length) = unsafe { body_len_out.as_mut() } {
            *length = response.map_or(0, |r| r.body_len);
        }
        response.map_or(ptr::null(), |r| r.body.as_ptr())
    })
}

/// The first value of header `name` in `response` (the name in any case:
/// `"content-type"` finds `Content-Type`), as a NUL-terminated string valid
/// until `enos_response_free()`; NULL when there is no such header, or
/// when `response` or `name` is NULL or `name` is not UTF-8. Does not touch
/// the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_header(
    response: *const enos_response,
    name: *const c_char,
) -> *const c_char {
    infallible(ptr::null(), || {
        // SAFETY: NULL or a response from this library, not yet freed.
        let Some(response) = (unsafe { response.as_ref() }) else {
            return ptr::null();
        };
        // SAFETY: NULL or a NUL-terminated string, per the caller's contract.
        let Ok(Some(name)) = (unsafe { optional_str(name, "name") }) else {
            return ptr::null();
        };
        response
            .headers
            .iter()
            .find(|(header, _)| header.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map_or(ptr::null(), |(_, value)| value.as_ptr())
    })
}

/// The header at `index` (0, 1, ...: in the order received; through a
/// proxy, grouped by name, the names in the order they first came, so that
/// `A, B, A` reads `A, A, B` there): its name (lower
/// case) in `*name_out` and its value in `*value_out`, both NUL-terminated
/// and valid until `enos_response_free()`. Returns true, or false past the
/// last header (and when `response` is NULL), with both outputs set to NULL.
/// `name_out` and `value_out` may be NULL. To list every header, call it
/// with index 0, 1, ... until it returns false. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_header_at(
    response: *const enos_response,
    index: usize,
    name_out: *mut *const c_char,
    value_out: *mut *const c_char,
) -> bool {
    infallible(false, || {
        // SAFETY: NULL or a response from this library, not yet freed.
        let header = unsafe { response.as_ref() }.and_then(|r| r.headers.get(index));
        // SAFETY: NULL or writable pointers, per the caller's contract.
        if let Some(name_out) = unsafe { name_out.as_mut() } {
            *name_out = header.map_or(ptr::null(), |(name, _)| name.as_ptr());
        }
        // SAFETY: as above.
        if let Some(value_out) = unsafe { value_out.as_mut() } {
            *value_out = header.map_or(ptr::null(), |(_, value)| value.as_ptr());
        }
        header.is_some()
    })
}

/// Frees a response from `enos_client_request()` or `enos_client_send()`, and with it its body and
/// header strings. NULL is accepted and does nothing. Does not touch the
/// last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_free(response: *mut enos_response) {
    infallible((), || {
        if !response.is_null() {
            // SAFETY: a response from enos_client_request, freed once.
            drop(unsafe { Box::from_raw(response) });
        }
    })
}
