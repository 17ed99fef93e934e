//! The details of the last failure, per OS thread.
//!
//! Every fallible export replaces them when it ends: cleared after a
//! success, recorded after a failure; the getters only read. The message
//! lives in this thread's storage until the next fallible call on the same
//! thread has finished, or the thread's exit.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::ptr;

use super::boundary;
use super::status::enos_status;
use crate::error::Error;

struct LastError {
    message: CString,
    service_status: i32,
    http_status: i32,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Forgets the last error of this thread.
pub(crate) fn clear() {
    // `try_with`: during thread teardown there is nothing to clear.
    let _ = LAST_ERROR.try_with(|last| last.borrow_mut().take());
}

/// Records `error` as this thread's last error and returns its status.
pub(crate) fn record(error: &Error) -> enos_status {
    let message = CString::new(error.message().replace('\0', " ")).unwrap_or_default();
    let details = LastError {
        message,
        service_status: error.service_status(),
        http_status: i32::from(error.http_status()),
    };
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = Some(details));
    error.kind().into()
}

fn read<T>(default: T, field: impl FnOnce(&LastError) -> T) -> T {
    LAST_ERROR
        .try_with(|last| last.borrow().as_ref().map(field))
        .ok()
        .flatten()
        .unwrap_or(default)
}

/// The message of the last failure on the calling thread, or NULL when the
/// last fallible call on this thread succeeded (or none was made).
///
/// The text is UTF-8, NUL-terminated, specific ("connect to 127.0.0.1:9
/// refused", "gateway status 1203: token expired") and never contains the app
/// secret. It is owned by the library: do not free it. It stays valid until
/// the next fallible call on this thread has finished (so it may be passed
/// as an argument to that call), or until the thread exits; copy it to keep
/// it. Every fallible call sets it when it ends: NULL after a success,
/// whatever ran inside the call (a log callback's own failing calls
/// included).
///
/// The details are kept per OS thread: read them on the thread that made the
/// failing call, right after it. Hosts that move work between OS threads (Go
/// goroutines without `runtime.LockOSThread`, async executors) must do so
/// before the next scheduling point.
#[unsafe(no_mangle)]
pub extern "C" fn enos_last_error_message() -> *const c_char {
    boundary::infallible(ptr::null(), || {
        read(ptr::null(), |last| last.message.as_ptr())
    })
}

/// The gateway's status code (for example 1203) of the last failure on the
/// calling thread, when the gateway answered with one; otherwise 0.
/// Same lifetime rules as `enos_last_error_message()`.
#[unsafe(no_mangle)]
pub extern "C" fn enos_last_service_status() -> i32 {
    boundary::infallible(0, || read(0, |last| last.service_status))
}

/// The HTTP status of the answer behind the last failure on the calling
/// thread (for example 502), when there was an answer; otherwise 0.
/// Same lifetime rules as `enos_last_error_message()`.
#[unsafe(no_mangle)]
pub extern "C" fn enos_last_http_status() -> i32 {
    boundary::infallible(0, || read(0, |last| last.http_status))
}
