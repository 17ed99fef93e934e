//! Strings the library hands to C, and the one function that frees them.
//!
//! They are allocated with the C library's `malloc` and released with its
//! `free`, after being zeroed: they hold tokens, signatures and headers,
//! which must not linger in freed memory.
//!
//! A string shorter than [`SMALL_BLOCK`] bytes (a token) gets a block of
//! that size, and each thread keeps one such block when it is freed (zeroed)
//! for the next string it hands out: a program that reads the cached token
//! before every call then makes no `malloc` or `free` for it, which were
//! a fifth of the read. The kept block is freed when the thread ends.

use std::cell::Cell;
use std::ffi::c_char;

use super::boundary;
use crate::error::{Error, ErrorKind};

/// Strings shorter than this are made in blocks of this size.
const SMALL_BLOCK: usize = 64;

/// This thread's kept block (zeroed), or null.
struct KeptBlock(Cell<*mut u8>);

impl Drop for KeptBlock {
    fn drop(&mut self) {
        // SAFETY: null, or a block from malloc that nothing else refers to.
        unsafe { libc::free(self.0.get().cast()) };
    }
}

thread_local! {
    static KEPT_BLOCK: KeptBlock = const { KeptBlock(Cell::new(std::ptr::null_mut())) };
}

/// A block for a string of `length` bytes and its NUL, or null.
fn block_for(length: usize) -> *mut u8 {
    if length < SMALL_BLOCK {
        let kept = KEPT_BLOCK
            .try_with(|kept| kept.0.replace(std::ptr::null_mut()))
            .unwrap_or(std::ptr::null_mut());
        if !kept.is_null() {
            return kept;
        }
    }
    // SAFETY: malloc of at least length + 1 bytes (never 0).
    unsafe { libc::malloc((length + 1).max(SMALL_BLOCK)) }.cast()
}

/// Keeps `block` (zeroed, of `SMALL_BLOCK` bytes) for this thread's next
/// string, or frees it.
///
/// # Safety
/// `block` came from [`block_for`] and nothing else refers to it.
unsafe fn keep_or_free(block: *mut u8) {
    let kept = KEPT_BLOCK
        .try_with(|kept| kept.0.get().is_null() && kept.0.replace(block).is_null())
        .unwrap_or(false);
    if !kept {
        // SAFETY: the caller's contract.
        unsafe { libc::free(block.cast()) };
    }
}

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
    let copy = block_for(bytes.len());
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
/// call from any thread. Does not touch the last error. A thread keeps one
/// freed block of a short string (64 bytes, zeroed) for the next string it is
/// given, and releases it when it ends.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn enos_string_free(s: *mut c_char) {
    boundary::infallible((), || {
        if s.is_null() {
            return;
        }
        // SAFETY: per the contract, `s` came from `block_for` (every string
        // this library hands out does), is NUL-terminated and writable, and
        // is freed only once. Shorter than SMALL_BLOCK, it has a block of
        // SMALL_BLOCK bytes, zeroed whole before it is kept.
        unsafe {
            let length = libc::strlen(s);
            if length < SMALL_BLOCK {
                crate::secret::wipe(std::slice::from_raw_parts_mut(s.cast::<u8>(), SMALL_BLOCK));
                keep_or_free(s.cast());
            } else {
                crate::secret::wipe(std::slice::from_raw_parts_mut(s.cast::<u8>(), length));
                libc::free(s.cast());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_short_string_is_zeroed_and_its_block_serves_the_next_one() {
        let first = owned_c_str("APP_first-token-of-thirty-bytes").unwrap();
        // SAFETY: strings from owned_c_str, each freed once; the block is
        // read only while this thread keeps it (no other string is made).
        unsafe {
            enos_string_free(first);
            let kept = std::slice::from_raw_parts(first.cast::<u8>(), SMALL_BLOCK);
            assert!(kept.iter().all(|&b| b == 0), "zeroed when freed");
            let second = owned_c_token("APP_second").unwrap();
            assert_eq!(second, first, "the kept block is used again");
            assert_eq!(std::ffi::CStr::from_ptr(second).to_bytes(), b"APP_second");
            let third = owned_c_str("APP_third").unwrap();
            assert_ne!(third, second, "one block is kept, not a list");
            enos_string_free(second);
            enos_string_free(third); // freed: the thread keeps one already
            let long = owned_c_str(&"x".repeat(100)).unwrap();
            enos_string_free(long);
        }
    }

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
