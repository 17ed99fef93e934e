//! The app secret, kept out of every message.
//!
//! [`AppSecret`] has no `Display`, a `Debug` that prints `<redacted>`, and
//! overwrites its bytes when dropped, so that neither a log line, a panic
//! message nor a heap dump after free shows it.

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
