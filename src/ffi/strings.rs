//! Strings the library hands to C, and the one function that frees them.

use std::ffi::{CString, c_char};

use super::boundary;
use crate::error::{Error, ErrorKind};

/// Hands `text` to C as a new NUL-terminated string, owned by the caller
/// until `enos_string_free`.
pub(crate) fn owned_c_string(text: String) -> Result<*mut c_char, Error> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Error::new(
            ErrorKind::BadResponse,
            "text for the caller holds a NUL byte",
        )
    })
}

/// Frees a string that this library handed out through a `char **` output
/// (tokens, headers, signatures). NULL is accepted and does nothing.
///
/// Pass each such string exactly once, and only strings from this library:
/// not the `const char *` returned by `enos_last_error_message()`,
/// `enos_status_name()` or `enos_version()`, which the library owns. Safe to
/// call from any thread. Does not touch the last error.
///
/// # Safety
/// `s` is NULL or a string returned through an output of this library and
/// not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_string_free(s: *mut c_char) {
    boundary::infallible((), || {
        if !s.is_null() {
            // SAFETY: per the contract, `s` came from `CString::into_raw`
            // in `owned_c_string` and is freed only once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
