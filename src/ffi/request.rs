//! Signed API calls: the request object (`enos_request`), sending it
//! (`enos_client_send`) and the one-line form (`enos_client_request`).

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{
    byte_slice, fallible, infallible, optional_str, required_mut, required_ref, required_str,
};
use super::client::enos_client;
use super::response::enos_response;
use super::status::enos_status;
use crate::api::{Progress, ReadFn, Request, WriteFn};
use crate::error::Error;

/// An API call to make with `enos_client_send()`, described piece by
/// piece: method and path (`enos_request_new()`), headers, a body (bytes, a
/// file streamed as it is sent, or `multipart/form-data` parts), where the
/// answer goes (memory, a file descriptor or a callback), a progress
/// callback and a time cap. Each setter checks its arguments at once, with a
/// message naming the argument and the fix.
///
/// Freed with `enos_request_free()`. A request is for one thread at a time
/// while it is being set up; once set up it is read-only during
/// `enos_client_send()`, so one request may be sent many times, and from
/// several threads at once (its callbacks are then called from each of
/// them). Never free or change a request while a send of it is running.
pub struct enos_request {
    inner: Request,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<enos_request>();
};

impl enos_request {
    /// The request object behind the C handle.
    pub(crate) fn request(&self) -> &Request {
        &self.inner
    }
}

/// Receives a streamed answer's bytes (`enos_request_set_output_callback()`):
/// `data` holds `len` bytes, valid only during the call. Return 0 to go on,
/// anything else to stop the call (it then ends with `ENOS_ERR_CANCELLED`).
/// Called on the thread that sends, never with `len` 0; it may call any
/// function of this library except freeing or changing the request being
/// sent.
pub type enos_write_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, data: *const u8, len: usize) -> c_int>;

/// Reports a call's progress (`enos_request_set_progress_callback()`):
/// bytes of the request body sent and to send (the current attempt's),
/// bytes of the answer body received and to receive (`-1` when the server
/// did not say). Called on the thread that sends, at most every 100 ms and
/// once when the call ends.
pub type enos_progress_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        sent: u64,
        send_total: u64,
        received: u64,
        receive_total: i64,
    ),
>;

/// Supplies a callback part's bytes (`enos_request_add_callback_part()`):
/// write at most `capacity` bytes to `buffer` and return how many, 0 at the
/// end of the part, or -1 to stop the call (`ENOS_ERR_CANCELLED`). Called on
/// the thread that sends, with `capacity` at least 1; after the part's
/// declared length it is called once more and must return 0.
pub type enos_read_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, buffer: *mut u8, capacity: usize) -> i64>;

/// A C callback's `user_data`, carried to the thread that sends.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the header tells the caller that callbacks are called, with
// their user_data, on whichever thread sends the request.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer; a method, so that closures capture the whole wrapper.
    fn get(self) -> *mut c_void {
        self.0
    }
}

/// Starts a request for `method` on `path`, with no headers and no body,
/// its answer kept in memory.
///
/// - `method`: an HTTP method name, such as `"GET"` or `"POST"` (any HTTP
///   token; not CONNECT or TRACE). Not NULL.
/// - `path`: path and query relative to the client's gateway URL, starting
///   with one `/`, such as `"/connect-service/v2.1/files?action=download&fileUri=…"`;
///   percent-encode what is not visible ASCII. Not NULL.
/// - `request_out`: receives the request, freed with `enos_request_free()`;
///   NULL on failure. Not NULL.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT` as `enos_client_request()`
/// refuses them: absolute or scheme-relative URLs, control characters,
/// spaces, non-ASCII or a fragment in the path, `.` or `..` segments (also
/// as `%2e`), a method that is not a token.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_new(
    method: *const c_char,
    path: *const c_char,
    request_out: *mut *mut enos_request,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request_out = unsafe { required_mut(request_out, "request_out") }?;
        *request_out = ptr::null_mut();
        let method = unsafe { required_str(method, "method (such as \"GET\")") }?;
        let path = unsafe { required_str(path, "path (such as \"/asset-service/...\")") }?;
        let inner = Request::new(method, path)?;
        *request_out = Box::into_raw(Box::new(enos_request { inner }));
        Ok(())
    })
}

/// The request behind a caller's pointer, for changing.
///
/// # Safety
/// NULL or a live request not used by another thread.
unsafe fn request_mut<'a>(request: *mut enos_request) -> Result<&'a mut Request, Error> {
    // SAFETY: forwarded contract.
    unsafe { required_mut(request, "request") }.map(|r| &mut r.inner)
}

/// Sets header `name` to `value` (such as `"Accept"`, `"Range"` or
/// `"If-None-Match"`), replacing a value set before under that name (any
/// case); `value` NULL removes the header.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT`: the `apim-*` headers (the call
/// is signed for you), `Host`, `Content-Length`, `Transfer-Encoding`,
/// `Connection`, `Expect` (the library writes them), `Content-Type` (it
/// comes with the body or part), names that are not HTTP tokens, values
/// with CR or LF, more than 100 headers or a value over 8 KiB.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` (`request` or `name`),
/// `ENOS_ERR_INVALID_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_header(
    request: *mut enos_request,
    name: *const c_char,
    value: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let name = unsafe { required_str(name, "name") }?;
        let value = unsafe { optional_str(value, "value") }?;
        request.header(name, value)?;
        Ok(())
    })
}

/// Sets the body: `body_len` bytes at `body`, copied now, of
/// `content_type` (NULL: `application/json;charset=UTF-8`). Replaces an
/// earlier body. A JSON body (`application/json` or `type/subtype+json`) is part of
/// the signature; any other is not (see `enos_sign_request()`).
///
/// - `body` may be NULL only when `body_len` is 0.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT` when the request already has
/// parts (a body and parts are exclusive; the message names both), for a
/// HEAD request, or for a content type with control characters.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_body(
    request: *mut enos_request,
    content_type: *const c_char,
    body: *const u8,
    body_len: usize,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let body = unsafe { byte_slice(body, body_len, "body") }?;
        request.body(content_type, body)?;
        Ok(())
    })
}

/// Sets the body to the file at `file_path`, read when the request is sent
/// and streamed as it goes (in constant memory, whatever its size), with its
/// length as `Content-Length` (never chunked), of `content_type` (NULL:
/// `application/octet-stream`). A JSON file is signed: it is read once to
/// sign and once to send. The library opens the file anew for each send.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT`, naming the path, when the file
/// is missing, unreadable, a directory or not a regular file; and as
/// `enos_request_set_body()` refuses a body. When it is sent, a file that
/// has become missing or unreadable, or that changes size or is rewritten
/// while it is sent, ends the call with `ENOS_ERR_IO` before its last byte
/// goes out: never a corrupt or short upload.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_body_file(
    request: *mut enos_request,
    content_type: *const c_char,
    file_path: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let file_path = unsafe { required_str(file_path, "file_path") }?;
        request.body_file(content_type, file_path)?;
        Ok(())
    })
}

/// Adds a `multipart/form-data` part named `name` holding `data_len` bytes
/// at `data`, copied now. With a `content_type` the part carries that
/// `Content-Type`; NULL makes it a plain text field without one.
///
/// Parts make the body `multipart/form-data` with a random boundary; each
/// part has its `Content-Disposition`, its `Content-Type` (unless a plain
/// field) and its own `Content-Length`, as EnOS requires since 2.1.0; the
/// request has one `Content-Length`, computed before the first byte. A
/// multipart body is not part of the signature (only the query is).
///
/// - `name`: the form field's name, such as `"enos-message"`. Not NULL.
/// - `data` may be NULL only when `data_len` is 0.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT` when the request has a body (a
/// body and parts are exclusive), for a HEAD request, a name with CR, LF or
/// NUL, or a content type with control characters.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_add_part(
    request: *mut enos_request,
    name: *const c_char,
    content_type: *const c_char,
    data: *const u8,
    data_len: usize,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let name = unsafe { required_str(name, "name") }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let data = unsafe { byte_slice(data, data_len, "data") }?;
        request.part(name, content_type, data)?;
        Ok(())
    })
}

/// Adds a file part named `name`: the file at `file_path`, read when the
/// request is sent and streamed as it goes, named `file_name` in its
/// `Content-Disposition` (NULL: the path's last component), of
/// `content_type` (NULL: `application/octet-stream`).
///
/// Refused as `enos_request_add_part()` refuses a part, and, naming the
/// path, when the file is missing, unreadable, a directory or not a regular
/// file. At send time the file behaves as with `enos_request_set_body_file()`.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_add_file_part(
    request: *mut enos_request,
    name: *const c_char,
    file_name: *const c_char,
    content_type: *const c_char,
    file_path: *const c_char,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let name = unsafe { required_str(name, "name") }?;
        let file_name = unsafe { optional_str(file_name, "file_name") }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let file_path = unsafe { required_str(file_path, "file_path") }?;
        request.file_part(name, file_name, content_type, file_path)?;
        Ok(())
    })
}

/// Adds a part named `name` of exactly `length` bytes, pulled from
/// `callback` (see `enos_read_callback`) with `user_data` as the request is
/// sent, named `file_name` in its `Content-Disposition` (NULL: no file
/// name), of `content_type` (NULL: a plain field without one).
///
/// Fewer or more bytes than `length` end the call with
/// `ENOS_ERR_INVALID_ARGUMENT` before the part's last byte is sent; -1 from
/// the callback ends it with `ENOS_ERR_CANCELLED`. Each send pulls the bytes
/// anew (rewind your source between sends). A request with a callback part
/// is never sent twice by the library: a refused token is returned as the
/// answer instead of renewed, and a stale connection is not retried.
/// `user_data` must stay valid as long as the request may be sent.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` (`request`, `name` or
/// `callback`), `ENOS_ERR_INVALID_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_add_callback_part(
    request: *mut enos_request,
    name: *const c_char,
    file_name: *const c_char,
    content_type: *const c_char,
    length: u64,
    callback: enos_read_callback,
    user_data: *mut c_void,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let name = unsafe { required_str(name, "name") }?;
        let file_name = unsafe { optional_str(file_name, "file_name") }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let callback = callback
            .ok_or_else(|| Error::new(crate::ErrorKind::NullArgument, "callback is NULL"))?;
        let user_data = UserData(user_data);
        let read: ReadFn = Arc::new(move |buffer: &mut [u8]| {
            // SAFETY: the caller's callback, with a buffer of `len` writable bytes.
            let read = unsafe { callback(user_data.get(), buffer.as_mut_ptr(), buffer.len()) };
            match read {
                -1 => Err(std::io::Error::other("the callback returned -1")),
                read if read < 0 => Err(std::io::Error::other(format!(
                    "the callback returned {read} (only -1 stops a call)"
                ))),
                read => Ok(usize::try_from(read).unwrap_or(usize::MAX)),
            }
        });
        request.reader_part_from(name, file_name, content_type, length, read)?;
        Ok(())
    })
}

/// Writes the answer's body, whatever its HTTP status, to the open file
/// descriptor `fd` as it arrives, instead of keeping it in memory: the
/// response's body is then empty and the client's `max_response_bytes`
/// does not apply. The library never closes `fd`; a non-blocking `fd` is
/// waited for. Replaces an output callback. `fd` -1 keeps the answer in
/// memory again.
///
/// A failed write (a full disk, a closed pipe) ends the call with
/// `ENOS_ERR_IO`. A GET streamed to an output resumes by itself when its
/// connection breaks mid-body (see `enos_client_send()`).
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_INVALID_ARGUMENT`
/// (an `fd` that is not open) or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_output_fd(
    request: *mut enos_request,
    fd: c_int,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        if fd == -1 {
            request.output_memory();
        } else {
            request.output_fd(fd)?;
        }
        Ok(())
    })
}

/// Hands the answer's body, whatever its HTTP status, to `callback` with
/// `user_data` as it arrives (see `enos_write_callback`), instead of
/// keeping it in memory: the response's body is then empty and the
/// client's `max_response_bytes` does not apply. A callback that returns
/// non-zero stops the call: `ENOS_ERR_CANCELLED`. Replaces an output fd.
/// `callback` NULL keeps the answer in memory again.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_output_callback(
    request: *mut enos_request,
    callback: enos_write_callback,
    user_data: *mut c_void,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let Some(callback) = callback else {
            request.output_memory();
            return Ok(());
        };
        let user_data = UserData(user_data);
        let write: WriteFn = Arc::new(move |data: &[u8]| {
            // SAFETY: the caller's callback, with `len` readable bytes.
            match unsafe { callback(user_data.get(), data.as_ptr(), data.len()) } {
                0 => Ok(()),
                code => Err(std::io::Error::other(format!("it returned {code}"))),
            }
        });
        request.output_from(write);
        Ok(())
    })
}

/// Reports the call's progress to `callback` with `user_data` (see
/// `enos_progress_callback`): at most every 100 ms, and once when the call
/// ends. `callback` NULL turns reports off.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_progress_callback(
    request: *mut enos_request,
    callback: enos_progress_callback,
    user_data: *mut c_void,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let report = callback.map(|callback| {
            let user_data = UserData(user_data);
            Arc::new(move |progress: Progress| {
                let receive_total = progress
                    .receive_total
                    .map_or(-1, |total| i64::try_from(total).unwrap_or(i64::MAX));
                // SAFETY: the caller's callback.
                unsafe {
                    callback(
                        user_data.get(),
                        progress.sent,
                        progress.send_total,
                        progress.received,
                        receive_total,
                    )
                }
            }) as crate::api::ProgressFn
        });
        request.progress_from(report);
        Ok(())
    })
}

/// Caps the whole call at `timeout_ms` milliseconds, a streamed body and
/// answer included; 0 removes the cap (the default).
///
/// Without a cap, the client's overall timeout bounds a call whose body and
/// answer are in memory, from its start to its answer's end. A call that
/// streams (a file body or part, a callback part, an output fd or callback)
/// is bounded by its progress instead: connecting by the connect timeout,
/// then each read and write must make progress within the overall timeout,
/// and the answer's headers must arrive within the overall timeout of the
/// request's last byte. With a cap, the call also ends at the cap
/// (`ENOS_ERR_TIMEOUT`).
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_set_timeout_ms(
    request: *mut enos_request,
    timeout_ms: u64,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let request = unsafe { request_mut(request) }?;
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        request.timeout(timeout)?;
        Ok(())
    })
}

/// Frees a request from `enos_request_new()`, with its copied bodies and
/// parts (files are not touched). NULL is accepted and does nothing. No send
/// of `request` may be running. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_request_free(request: *mut enos_request) {
    infallible((), || {
        if !request.is_null() {
            // SAFETY: a request from enos_request_new, freed once.
            drop(unsafe { Box::from_raw(request) });
        }
    })
}

/// Sends `request` with the client: signed with the managed token, over the
/// client's connections; the answer in `*response_out`.
///
/// - `client`, `request`: Not NULL. The request is only read: it may be sent
///   again, and from several threads at once.
/// - `response_out`: receives the response, freed with
///   `enos_response_free()`; NULL on any failure. Not NULL.
///
/// **Signing.** `apim-signature` covers the query and, only when the body is
/// JSON (`application/json` or `type/subtype+json`, case and parameters ignored),
/// the body: a multipart, binary or form body is not signed. That follows
/// the docs' words ("if the request has a JSON body") and EnOS's own SDKs,
/// which never sign file parts; nobody here could try a live gateway.
///
/// **Answers.** Any HTTP answer is `ENOS_OK`, whatever its status. Kept in
/// memory (at most the client's `max_response_bytes`), or, with an output
/// fd or callback, streamed there as it arrives (any status; the response's
/// body is then empty). A **GET streamed to an output resumes by itself**
/// when its connection breaks mid-body: it asks for the rest with
/// `Range: bytes=N-` and `If-Range`, when the first answer had
/// `Accept-Ranges: bytes` and a strong `ETag` or a `Last-Modified`, up to the
/// client's retries in a row without progress, with backoff, within the
/// request's cap; the output receives every byte exactly once. A file that
/// changed on the server meanwhile ends the call with
/// `ENOS_ERR_BAD_RESPONSE` (the output then holds its first bytes).
///
/// **Retries.** A 429, a 502/503/504 of a GET, HEAD, PUT, DELETE or OPTIONS,
/// and a connection that could not be opened are sent again after a wait
/// (`enos_client_builder_set_retries()` has the rules, the `Retry-After`
/// handling and the retry budget); the response's `enos_response_attempts()`
/// counts the sends, and the last answer is returned when no retry is left.
/// A retried answer is never written to the output.
///
/// **Renewal and resends.** A token refusal (HTTP 401, or a JSON body of at
/// most 64 KiB whose `status` is 1203) makes the call drop the token it sent
/// (unless another thread already renewed it), get a valid one and send the
/// call once more; files are read again. A request with a callback part is
/// not sent again: the refusal is returned as the answer. A GET, HEAD, PUT,
/// DELETE or OPTIONS may be sent once more on a new connection when a
/// reused connection failed before any byte of the answer; a POST, PATCH or
/// other method never is once written (then `ENOS_ERR_CONNECT` says the
/// server may have processed it).
///
/// **Time.** See `enos_request_set_timeout_ms()`.
///
/// Log lines and counters are those of `enos_client_request()`; a resumed
/// download adds an `ENOS_LOG_INFO` line.
///
/// Returns `ENOS_OK`, or `ENOS_ERR_NULL_ARGUMENT`, `ENOS_ERR_CONNECT`,
/// `ENOS_ERR_TIMEOUT`, `ENOS_ERR_TLS`, `ENOS_ERR_HTTP_STATUS` (a token fetch,
/// or a resume answered with another status), `ENOS_ERR_BAD_RESPONSE`,
/// `ENOS_ERR_SERVICE` (a token fetch), `ENOS_ERR_CANCELLED` (a callback
/// asked to stop), `ENOS_ERR_IO` (a file or the output failed),
/// `ENOS_ERR_INVALID_ARGUMENT` (a callback part of the wrong length),
/// `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_send(
    client: *const enos_client,
    request: *const enos_request,
    response_out: *mut *mut enos_response,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let response_out = unsafe { required_mut(response_out, "response_out") }?;
        *response_out = ptr::null_mut();
        let client = unsafe { required_ref(client, "client") }?;
        let request = unsafe { required_ref(request, "request") }?;
        let response = client.inner.send(&request.inner)?;
        *response_out = Box::into_raw(Box::new(enos_response::from(response)));
        Ok(())
    })
}

/// Calls an API of the gateway: `method` on `path`, signed with the managed
/// token, over the client's connections; the answer in `*response_out`. The
/// one-line form of `enos_request_new()` + `enos_client_send()`.
///
/// - `client`: the client. Not NULL.
/// - `method`: an HTTP method name, such as `"GET"`, `"POST"`, `"PUT"`,
///   `"DELETE"` or `"PATCH"` (any HTTP token; not CONNECT or TRACE). Not NULL.
/// - `path`: path and query relative to the client's gateway URL, starting
///   with one `/`, such as `"/asset-service/v2.1/assets?orgId=o1"`; a path
///   prefix of the gateway URL is kept (gateway `https://gw/pfx` and
///   `/a/b` go to `https://gw/pfx/a/b`). Percent-encode what is not visible
///   ASCII. Not NULL.
/// - `content_type`: the body's `Content-Type`; NULL with a body means
///   `application/json;charset=UTF-8`, NULL without one sends none.
/// - `body`, `body_len`: the body, sent exactly as given; `body` may be
///   NULL only when `body_len` is 0.
/// - `response_out`: receives the response, freed with
///   `enos_response_free()`; NULL on any failure. Not NULL.
///
/// Refused with `ENOS_ERR_INVALID_ARGUMENT` before a byte is sent: whatever
/// could send the token elsewhere or split the request (an absolute or
/// scheme-relative URL such as `http://…` or `//host/…`, a path not
/// starting with `/`, CR, LF or other control characters or spaces in the
/// path, `.` or `..` segments (also as `%2e`: a server would resolve them
/// out of the gateway URL's path prefix), a method that is not an HTTP
/// token, control characters in the content type), a fragment, and a body
/// with HEAD.
///
/// The call signs the query it sends, and the body when it is JSON (the
/// rule of `enos_client_send()`), with the managed token (as
/// `enos_client_access_token()` gets it) and a fresh, unique timestamp, and
/// sends the headers `apim-accesstoken`, `apim-signature` and
/// `apim-timestamp`, with the client's proxy, CA and timeouts; the overall
/// timeout bounds the whole call, a token renewal included.
///
/// Any HTTP answer is `ENOS_OK`, whatever its status: 4xx and 5xx are the
/// API's answer, read with `enos_response_status()` and the body. No
/// compression is asked for; a body a server compressed anyway comes as it
/// was sent, its `Content-Encoding` header with it (outputs too). A token
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
/// decides). Retries: a 429 (any method), a 502, 503 or 504 (those methods
/// only) and a connection that could not be opened are sent again after a
/// wait, within the client's retries, deadline and retry budget
/// (`enos_client_builder_set_retries()` has the rules; `Retry-After` is
/// honoured); the last answer is returned when no retry is left.
///
/// Answers larger than the client's limit (64 MiB unless
/// `enos_client_builder_set_max_response_bytes()` set another) are
/// `ENOS_ERR_BAD_RESPONSE` naming the limit; the body is never buffered
/// past it (stream a larger answer with `enos_client_send()` and an output).
/// Log lines: one `ENOS_LOG_DEBUG` line per call (method, path without query
/// values, HTTP status, time), an `ENOS_LOG_WARN` line when a token was
/// refused and renewed; never a header value. Counted in `api_calls` and
/// `token_renewals` (`enos_client_get_counters()`).
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
        let method = unsafe { required_str(method, "method (such as \"GET\")") }?;
        let path = unsafe { required_str(path, "path (such as \"/asset-service/...\")") }?;
        let content_type = unsafe { optional_str(content_type, "content_type") }?;
        let body = unsafe { byte_slice(body, body_len, "body") }?;
        let response = client.inner.request(method, path, content_type, body)?;
        *response_out = Box::into_raw(Box::new(enos_response::from(response)));
        Ok(())
    })
}
