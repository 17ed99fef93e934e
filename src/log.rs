//! Logging for operators, and what may be said about a token in it: its
//! first four characters and its length, never the whole of it. No message
//! ever holds a token, the secret or a signature.

use std::fmt;
use std::sync::Arc;

/// How important a log message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// A call failed and the caller gets an error.
    Error = 1,
    /// Something failed but was handled (retry, fallback to a cached token).
    Warn = 2,
    /// A token was fetched or invalidated.
    Info = 3,
    /// One line per API call made with `Client::request`.
    Debug = 4,
}

/// A thread-safe function of level and message.
type LogSink = dyn Fn(LogLevel, &str) + Send + Sync;

/// Where log messages go.
#[derive(Clone)]
pub struct Logger(Arc<LogSink>);

impl Logger {
    pub fn new(sink: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        Logger(Arc::new(sink))
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        (self.0)(level, message);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger")
    }
}

/// `"abcd…(28 bytes)"` for a 28-byte token starting with `abcd`.
pub fn token_hint(token: &str) -> String {
    let prefix: String = token.chars().take(4).collect();
    format!("{prefix}…({} bytes)", token.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hint_shows_only_a_prefix_and_length() {
        assert_eq!(super::token_hint("abcdefgh"), "abcd…(8 bytes)");
        assert_eq!(super::token_hint("ab"), "ab…(2 bytes)");
    }
}
