//! Strings the library hands to C, and the one function that frees them.
//!
//! They are allocated with the C library's `malloc` and released with its
//! `free`, after being zeroed: they hold tokens, signatures and headers,
//! which must not linger in freed memory.

use std::ffi::c_char;

use super::boundary;
use crate::error::{Error, ErrorKind};

/// Hands a copy of `text` to C as a new NUL-terminated string, owned by the
/// caller until `enos_string_free`.
pub(crate) fn owned_c_str(text: &str) -> Result<*mut c_char, Error> {
    let bytes = text.as_bytes();
    // SAFETY: memchr reads `bytes.len()` bytes of a live slice. (glibc's
    // vectorised memchr: a token is checked in a few nanoseconds, where a
    // byte-by-byte scan took a fifth of a cached token read.)
    let holds_nul = !bytes.is_empty()
        && !unsafe { libc::memchr(bytes.as_ptr().cast(), 0, bytes.len()) }.is_null();
    if holds_nul {
        return Err(Error::new(
            ErrorKind::BadResponse,
            "text for the caller holds a NUL byte",
        ));
    }
    copy_to_c(bytes)
}

/// A token for C: a token in the client's cache is visible ASCII (checked
/// when the gateway's answer, or the shared file, was read), so it holds
/// no NUL to look for.
pub(crate) fn owned_c_token(token: &str) -> Result<*mut c_char, Error> {
    debug_assert!(token.bytes().all(|b| b.is_ascii_graphic()));
    copy_to_c(token.as_bytes())
}

fn copy_to_c(bytes: &[u8]) -> Result<*mut c_char, Error> {
    // SAFETY: malloc of len + 1 bytes (never 0); checked for NULL below.
    let copy = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if copy.is_null() {
        return Err(Error::new(ErrorKind::Internal, "out of memory"));
    }
    // SAFETY: `copy` has room for the bytes and the NUL; the regions are distinct.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
        *copy.add(bytes.len()) = 0;
    }
    Ok(copy.cast())
}

/// Frees a string that this library handed out through a `char **` output
/// (tokens, headers, signatures). NULL is accepted and does nothing.
///
/// The string is overwritten with zeros before it is freed (it may hold a
/// token). Pass each such string exactly once, and only strings from this library:
/// not the `const char *` returned by `enos_last_error_message()`,
/// `enos_status_name()` or `enos_version()`, which the library owns. Safe to
/// call from any thread. Does not touch the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_string_free(s: *mut c_char) {
    boundary::infallible((), || {
        if s.is_null() {
            return;
        }
        // SAFETY: per the contract, `s` came from `malloc` in `owned_c_str`,
        // is NUL-terminated and writable, and is freed only once.
        unsafe {
            let length = libc::strlen(s);
            crate::secret::wipe(std::slice::from_raw_parts_mut(s.cast::<u8>(), length));
            libc::free(s.cast());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_nul_terminated_and_text_holding_a_nul_is_refused() {
        for text in ["", "t", "APP_0123456789abcdef0123456789abcdef0123456789"] {
            let copy = owned_c_str(text).unwrap();
            // SAFETY: a NUL-terminated string from owned_c_str, freed once.
            unsafe {
                assert_eq!(std::ffi::CStr::from_ptr(copy).to_str().unwrap(), text);
                enos_string_free(copy);
            }
        }
        let long = "x".repeat(200);
        for position in [0, 1, 15, 16, 31, 32, 63, 199] {
            let mut text = long.clone().into_bytes();
            text[position] = 0;
            let text = String::from_utf8(text).unwrap();
            let refused = owned_c_str(&text).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::BadResponse, "NUL at {position}");
        }
    }
}
