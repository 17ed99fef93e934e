//! The app secret and the tokens the library keeps, out of every message
//! and zeroed when no longer needed.
//!
//! [`AppSecret`] has no `Display`, a `Debug` that prints `<redacted>`, and
//! overwrites its bytes when dropped, so that neither a log line, a panic
//! message nor a heap dump after free shows it.

use std::cell::UnsafeCell;
use std::fmt;

/// The application's secret. Only the signing code reads it.
#[derive(Clone)]
pub struct AppSecret(String);

impl AppSecret {
    /// Wraps a secret, which may be empty (see [`AppSecret::non_empty`]).
    pub fn new(secret: &str) -> Self {
        AppSecret(secret.to_owned())
    }

    /// Wraps a secret, refusing an empty one.
    pub fn non_empty(secret: &str) -> Result<Self, crate::Error> {
        if secret.is_empty() {
            return Err(crate::Error::invalid_argument("app secret is empty"));
        }
        Ok(AppSecret::new(secret))
    }

    /// The secret itself, for hashing.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

impl Drop for AppSecret {
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the String valid UTF-8.
        wipe(unsafe { self.0.as_bytes_mut() });
    }
}

/// Overwrites `bytes` with zeros in a way the compiler cannot drop as dead
/// stores before the memory is freed: glibc's `explicit_bzero` (memset
/// speed: a streamed gigabyte passes through these buffers), else volatile
/// writes.
pub(crate) fn wipe(bytes: &mut [u8]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `bytes` is valid and writable for its length.
    unsafe {
        libc::explicit_bzero(bytes.as_mut_ptr().cast(), bytes.len())
    };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    for byte in bytes.iter_mut() {
        // SAFETY: a valid, writable byte.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// A token kept by the library: zeroed when dropped, and zeroed early by
/// its owner when nothing may read it any more (a freed client's token that
/// other threads' caches still hold).
pub(crate) struct TokenText(UnsafeCell<Box<str>>);

// SAFETY: the text is only written by `Drop` (exclusive) and by `wipe_now`,
// whose callers guarantee that nothing reads it concurrently.
unsafe impl Send for TokenText {}
unsafe impl Sync for TokenText {}

impl TokenText {
    pub(crate) fn new(text: String) -> Self {
        TokenText(UnsafeCell::new(text.into_boxed_str()))
    }

    /// Zeroes the text in place.
    ///
    /// # Safety
    /// No other thread reads this text now or later (it may be dropped).
    pub(crate) unsafe fn wipe_now(&self) {
        // SAFETY: exclusive by the caller's promise; zeros are valid UTF-8.
        wipe(unsafe { (*self.0.get()).as_bytes_mut() });
    }
}

impl std::ops::Deref for TokenText {
    type Target = str;
    fn deref(&self) -> &str {
        // SAFETY: only `wipe_now` writes through a shared reference, and
        // its callers guarantee no reader exists.
        unsafe { &*self.0.get() }
    }
}

impl Clone for TokenText {
    fn clone(&self) -> Self {
        TokenText::new(self.to_string())
    }
}

impl Drop for TokenText {
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the str valid UTF-8.
        wipe(unsafe { self.0.get_mut().as_bytes_mut() });
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::log::token_hint(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = AppSecret::new("s3cr3t-value");
        assert_eq!(format!("{secret:?}"), "AppSecret(<redacted>)");
        assert_eq!(secret.expose(), "s3cr3t-value");
    }
}
