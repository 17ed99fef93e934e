//! The app secret, kept out of every message.
//!
//! [`AppSecret`] has no `Display`, a `Debug` that prints `<redacted>`, and
//! overwrites its bytes when dropped, so that neither a log line, a panic
//! message nor a heap dump after free shows it.

use std::fmt;

/// The application's secret. Only the signing code reads it.
pub struct AppSecret(String);

impl AppSecret {
    /// Wraps a secret. An empty secret is refused by the callers, not here.
    pub fn new(secret: &str) -> Self {
        AppSecret(secret.to_owned())
    }

    /// The secret itself, for hashing.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Clone for AppSecret {
    fn clone(&self) -> Self {
        AppSecret(self.0.clone())
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

impl Drop for AppSecret {
    fn drop(&mut self) {
        // SAFETY: writing zero bytes keeps the String valid UTF-8; volatile
        // writes keep the compiler from dropping the stores as dead.
        unsafe {
            for byte in self.0.as_bytes_mut() {
                std::ptr::write_volatile(byte, 0);
            }
        }
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
