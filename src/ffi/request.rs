//! Signed API calls and their responses.

use std::ffi::{CString, c_char};
use std::ptr;

use super::boundary::{
    byte_slice, fallible, infallible, optional_str, required_mut, required_ref, required_str,
};
use super::client::enos_client;
use super::status::enos_status;

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
    /// Names (lower case) and values as C strings, in the order received.
    headers: Vec<(CString, CString)>,
}

impl Drop for enos_response {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

impl From<crate::Response> for enos_response {
    fn from(response: crate::Response) -> Self {
        let (status, headers, mut body) = response.into_parts();
        let body_len = body.len();
        body.push(0);
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                let c_string =
                    |text: String| CString::new(text.replace('\0', " ")).unwrap_or_default();
                (c_string(name), c_string(value))
            })
            .collect();
        enos_response {
            status,
            body,
            body_len,
            headers,
        }
    }
}

/// Calls an API of the gateway: `method` on `path`, signed with the managed
/// token, over the client's connections; the answer in `*response_out`.
///
/// - `client`: the client. Not NULL.
/// - `method`: an HTTP method name, such as `"GET"`, `"POST"`, `"PUT"`,
///   `"DELETE"` or `"PATCH"` (any HTTP token; not CONNECT or TRACE). Not NULL.
/// - `path`: path and query relative to the client's gateway URL, starting
///   with one `/`, such as `"/asset-service/v2.1/assets?orgId=o1"`; a path
///   prefix of the gateway URL is kept (gateway `https://gw/pfx` and
///   `/a/b` go to `https://gw/pfx/a/b`). Percent-encode what is not visible
///   ASCII. Not NULL.
/// - `content_type`: the body's `Content-Type`, or NULL for none.
/// - `body`, `body_len`: the body, sent exactly as given; `body` may be
///   NULL only when `body_len` is 0.
/// - `response_out`: receives the response, freed with
///   `enos_response_free()`; NULL on any failure. Not NULL.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT` before a byte is sent: whatever
/// could send the token elsewhere or split the request (an absolute or
/// scheme-relative URL such as `http://…` or `//host/…`, a path not
/// starting with `/`, CR, LF or other control characters or spaces in the
/// path, a method that is not an HTTP token, control characters in the
/// content type), a fragment, and a body with HEAD.
///
/// The call signs exactly the query and body it sends (the rule of
/// `enos_sign_request()`) with the managed token (as
/// `enos_client_access_token()` gets it) and a fresh, unique timestamp, and
/// sends the headers `apim-accesstoken`, `apim-signature` and
/// `apim-timestamp`, with the client's proxy, CA and timeouts; the overall
/// timeout bounds the whole call, a token renewal included.
///
/// Any HTTP answer is `ENOS_OK`, whatever its status: 4xx and 5xx are the
/// API's answer, read with `enos_response_status()` and the body. A token
/// refusal (HTTP 401, or a JSON body whose `status` is 1203) makes the call
/// drop the token it sent (unless another thread already renewed it), get
/// a valid one (one fetch per client, and per fleet with a shared cache),
/// sign again with a new timestamp and send the call once more; the second
/// answer is returned whatever it is. Never more than one renewal per call.
///
/// Resends: a GET, HEAD, PUT, DELETE or OPTIONS may be sent once more on a
/// new connection when a reused connection failed before any byte of the
/// answer; a POST, PATCH or other method never is once written (then
/// `ENOS_ERR_CONNECT` says the server may have processed it: the caller
/// decides).
///
/// Answers larger than the client's limit (64 MiB unless
/// `enos_client_builder_set_max_response_bytes()` set another) are
/// `ENOS_ERR_BAD_RESPONSE` naming the limit; the body is never buffered
/// past it. Log lines: one `ENOS_LOG_DEBUG` line per call (method, path
/// without query values, HTTP status, time), an `ENOS_LOG_WARN` line when a
/// token was refused and renewed; never a header value. Counted in
/// `api_calls` and `token_renewals` (`enos_client_get_counters()`).
///
/// Thread-safe: any number of threads may make calls on one client.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`,
/// `ENOS_ERR_CONNECT`, `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`,
/// `ENOS_ERR_HTTP_STATUS` (only from a token fetch), `ENOS_ERR_BAD_RESPONSE`,
/// `ENOS_ERR_SERVICE` (only from a token fetch), `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_request(
    client: *const enos_client,
    method: *const c_char,
    path: *const c_char,
    content_type: *const c_char,
    body: *const u8,
    body_len: usize,
    response_out: *mut *mut enos_response,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let response_out = unsafe { required_mut(response_out, "response_out") }?;
        *response_out = ptr::null_mut();
        let client = unsafe { required_ref(client, "client") }?;
        let method = unsafe { required_str(method, "method") }?;
        let path = unsafe { required_str(path, "path") }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let body = unsafe { byte_slice(body, body_len, "body") }?;
        let response = client.inner.request(method, path, content_type, body)?;
        *response_out = Box::into_raw(Box::new(enos_response::from(response)));
        Ok(())
    })
}

/// The HTTP status of `response` (for example 200 or 404); 0 if `response`
/// is NULL. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_response_status(response: *const enos_response) -> i32 {
    infallible(0, || {
        // SAFETY: NULL or a response from enos_client_request, not yet freed.
        unsafe { response.as_ref() }.map_or(0, |r| i32::from(r.status))
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
        // SAFETY: NULL or a response from enos_client_request, not yet freed.
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
        // SAFETY: NULL or a response from enos_client_request, not yet freed.
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

/// The header at `index` (0, 1, ... in the order received): its name (lower
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
        // SAFETY: NULL or a response from enos_client_request, not yet freed.
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

/// Frees a response from `enos_client_request()`, and with it its body and
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
