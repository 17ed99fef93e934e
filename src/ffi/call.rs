//! Calls that never block their caller: `enos_client_send_async()` and the
//! call handle.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{fallible, infallible, required_mut, required_ref};
use super::client::enos_client;
use super::request::enos_request;
use super::response::enos_response;
use super::status::enos_status;
use crate::api::{CallShared, Completion};
use crate::error::{Error, ErrorKind};

/// A call in flight, from `enos_client_send_async()`, freed with
/// `enos_call_free()`. Thread-safe: any thread may wait for it, poll its
/// descriptor, cancel it or free it (once).
pub struct enos_call {
    _private: (),
}

/// Called once when a call is done (succeeded, failed or cancelled), on a
/// thread of the library (the worker that ran it), with the `user_data`
/// given to `enos_client_send_async()` and the call. Take the outcome with
/// `enos_call_wait(call, 0, &response)`. It may call any function of this
/// library, `enos_call_free(call)` included; it should return soon (it holds
/// one of the client's workers).
pub type enos_completion_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, call: *mut enos_call)>;

/// A C callback's `user_data`, carried to the worker thread.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the header says the callback is called, with its user_data, on a
// thread of the library.
unsafe impl Send for UserData {}

impl UserData {
    fn get(self) -> *mut c_void {
        self.0
    }
}

/// The call behind a caller's pointer.
///
/// # Safety
/// NULL or a call from `enos_client_send_async()` not yet freed.
unsafe fn call_ref<'a>(call: *const enos_call) -> Option<&'a CallShared> {
    // SAFETY: forwarded contract; the pointer came from Arc::into_raw.
    unsafe { call.cast::<CallShared>().as_ref() }
}

/// Starts `request` on the client and returns at once: the call runs on one
/// of the client's worker threads, with everything `enos_client_send()`
/// does (signing, renewal, retries, files, outputs, resumed downloads).
///
/// - `client`, `request`: Not NULL. The request is copied: it may be
///   changed or freed as soon as this returns. Its callbacks (parts, output,
///   progress) are called from the worker thread, and its output fd written
///   there: keep them valid until the completion callback runs, which is
///   when the worker is done with them. Once the call is cancelled (or
///   freed), none of them is called any more but one already running, which
///   finishes; so without a completion callback, free what they use only
///   after the call is done *and* was not cancelled, or never.
/// - `callback`: called once when the call is done (see
///   `enos_completion_callback`), or NULL.
/// - `call_out`: receives the call, freed with `enos_call_free()`. Not NULL.
///
/// **Done** is said three ways, for every kind of host: the callback, the
/// descriptor of `enos_call_fd()` (readable from then on: for `poll`,
/// `epoll`, libuv, asyncio's `add_reader`), and `enos_call_wait()`.
///
/// **Concurrency.** At most the client's `max_concurrent_calls` calls run
/// at once (default 64, `enos_client_builder_set_max_concurrent_calls()`);
/// more wait in a queue, in order. Workers are started as needed and end
/// after 30 s without work: an idle client holds no thread.
///
/// **Cancelling** (`enos_call_cancel()`, `enos_call_free()`): a queued call
/// never starts; a running call's connections are shut down (they are never
/// used again) and its waits end. Either way the call is done at once with
/// `ENOS_ERR_CANCELLED`; a POST or PATCH cancelled after its request was
/// sent says that the server may have processed it. The worker may still be
/// letting go of the call for a moment: its completion callback runs when
/// it has (the pattern of every binding: cancel, then release the request's
/// callbacks' data and free the call in the completion callback).
///
/// **fork()**: the calls in flight belong to the process that started
/// them: in a child they are done, cancelled, with a message saying so,
/// their `enos_call_fd()` is -1, and the child's client starts its own
/// workers for new calls. **Freeing the client** cancels its calls (their
/// completion callbacks still run, on the workers, never on the thread
/// that frees the client).
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`; the
/// call's own outcome comes from `enos_call_wait()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_client_send_async(
    client: *const enos_client,
    request: *const enos_request,
    callback: enos_completion_callback,
    user_data: *mut c_void,
    call_out: *mut *mut enos_call,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let call_out = unsafe { required_mut(call_out, "call_out") }?;
        *call_out = ptr::null_mut();
        let client = unsafe { required_ref(client, "client") }?;
        let request = unsafe { required_ref(request, "request") }?;
        let completion = callback.map(|callback| {
            let user_data = UserData(user_data);
            Box::new(move |call: &Arc<CallShared>| {
                // SAFETY: the caller's callback, with its user_data and the
                // call, which stays valid while it runs (the worker holds it).
                unsafe { callback(user_data.get(), Arc::as_ptr(call).cast_mut().cast()) }
            }) as Completion
        });
        let call = client.inner.start(request.request(), completion);
        *call_out = Arc::into_raw(call.into_shared()).cast_mut().cast();
        Ok(())
    })
}

/// A descriptor that becomes readable when `call` is done, and stays so:
/// for `poll`, `epoll`, libuv or asyncio's `add_reader`. Never read from it
/// or close it: it belongs to the call (closed by `enos_call_free()`). -1
/// for NULL, and in a process forked after the call started. Does not
/// touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_call_fd(call: *const enos_call) -> i32 {
    infallible(-1, || {
        // SAFETY: the caller's contract, documented above.
        unsafe { call_ref(call) }.map_or(-1, CallShared::fd)
    })
}

/// Whether `call` is done (false for NULL). Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_call_done(call: *const enos_call) -> bool {
    infallible(false, || {
        // SAFETY: the caller's contract, documented above.
        unsafe { call_ref(call) }.is_some_and(CallShared::is_done)
    })
}

/// Waits until `call` is done, at most `timeout_ms` milliseconds (-1: as
/// long as it takes; 0: only looks), and hands out its outcome.
///
/// - `response_out`: receives the response of a call that succeeded
///   (whatever its HTTP status), freed with `enos_response_free()`; NULL
///   otherwise. Not NULL.
///
/// Returns `ENOS_ERR_TIMEOUT` when the call is not done within the wait
/// (the call goes on; wait again later). Once it is done: the call's own
/// status (`ENOS_OK` with the response, or its failure, with its message in
/// the last error, `ENOS_ERR_CANCELLED` for a cancelled call). The response
/// is handed out once: a later wait is `ENOS_ERR_INVALID_ARGUMENT`; a
/// failure is returned to every wait. Any thread may wait, several at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_call_wait(
    call: *mut enos_call,
    timeout_ms: i64,
    response_out: *mut *mut enos_response,
) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let response_out = unsafe { required_mut(response_out, "response_out") }?;
        *response_out = ptr::null_mut();
        let call = unsafe { call_ref(call) }
            .ok_or_else(|| Error::new(ErrorKind::NullArgument, "call is NULL"))?;
        let timeout = match timeout_ms {
            -1 => None,
            ms if ms >= 0 => Some(Duration::from_millis(ms as u64)),
            ms => {
                return Err(Error::invalid_argument(format!(
                    "timeout_ms is {ms}: give -1 (no limit), 0 (only look) or a positive wait"
                )));
            }
        };
        let response = call.wait(timeout)?;
        *response_out = Box::into_raw(Box::new(enos_response::from(response)));
        Ok(())
    })
}

/// Cancels `call`: a queued call never starts, a running call's connections
/// are shut down; it is done at once with `ENOS_ERR_CANCELLED` (see
/// `enos_client_send_async()`). Nothing for a call already done. Never
/// blocks on the network.
///
/// Returns `ENOS_OK`, `ENOS_ERR_NULL_ARGUMENT` or `ENOS_ERR_INTERNAL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_call_cancel(call: *mut enos_call) -> enos_status {
    fallible(|| {
        // SAFETY: the caller's contract, documented above.
        let call = unsafe { call_ref(call) }
            .ok_or_else(|| Error::new(ErrorKind::NullArgument, "call is NULL"))?;
        call.cancel();
        Ok(())
    })
}

/// Frees `call`, once. A call still running is cancelled first (without
/// blocking on the network), and its callback is no longer called; if the
/// callback is running at that moment it finishes, and the call's memory
/// stays valid until it returns. A response not taken is freed. NULL is
/// accepted and does nothing. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_call_free(call: *mut enos_call) {
    infallible((), || {
        if !call.is_null() {
            // SAFETY: a call from enos_client_send_async, freed once: the
            // strong count the caller held.
            let call = unsafe { Arc::from_raw(call.cast_const().cast::<CallShared>()) };
            call.release();
        }
    })
}
