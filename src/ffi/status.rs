//! `enos_status`, its names, and the library version.

use std::ffi::{CStr, c_char};

use crate::error::ErrorKind;

/// The result of every fallible function. The values are fixed: other
/// languages bind to them, and they are never renumbered.
///
/// On any status other than `ENOS_OK`, `enos_last_error_message()` explains
/// the failure on the calling thread.
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum enos_status {
    /// Success.
    ENOS_OK = 0,
    /// A required pointer argument was NULL.
    ENOS_ERR_NULL_ARGUMENT = 1,
    /// An argument is not valid: not UTF-8, an empty key, secret or token,
    /// a bad URL, file or option.
    ENOS_ERR_INVALID_ARGUMENT = 2,
    /// Could not reach the gateway: DNS failure, connection refused or
    /// unreachable, or closed or reset before a response.
    ENOS_ERR_CONNECT = 3,
    /// The connect timeout or the overall deadline passed.
    ENOS_ERR_TIMEOUT = 4,
    /// The TLS handshake or the certificate verification failed.
    ENOS_ERR_TLS = 5,
    /// A non-2xx HTTP answer whose body is not a gateway error; see
    /// `enos_last_http_status()`. Redirects are not followed and end here.
    ENOS_ERR_HTTP_STATUS = 6,
    /// The answer is unusable: not JSON, missing fields, wrong types, a body
    /// over 1 MiB, a malformed or truncated HTTP response.
    ENOS_ERR_BAD_RESPONSE = 7,
    /// The gateway answered with a non-zero status (for example 1203, token
    /// expired); see `enos_last_service_status()`.
    ENOS_ERR_SERVICE = 8,
    /// A bug in this library: a Rust panic was caught at the boundary.
    ENOS_ERR_INTERNAL = 9,
    /// The call was stopped at the caller's request: a read, write or
    /// other callback asked to stop.
    ENOS_ERR_CANCELLED = 10,
    /// A local file or descriptor failed: a file to send vanished, became
    /// unreadable or changed size while it was sent, or the answer could not
    /// be written to its output (a full disk, a closed descriptor).
    ENOS_ERR_IO = 11,
}

impl From<ErrorKind> for enos_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NullArgument => enos_status::ENOS_ERR_NULL_ARGUMENT,
            ErrorKind::InvalidArgument => enos_status::ENOS_ERR_INVALID_ARGUMENT,
            ErrorKind::Connect => enos_status::ENOS_ERR_CONNECT,
            ErrorKind::Timeout => enos_status::ENOS_ERR_TIMEOUT,
            ErrorKind::Tls => enos_status::ENOS_ERR_TLS,
            ErrorKind::HttpStatus => enos_status::ENOS_ERR_HTTP_STATUS,
            ErrorKind::BadResponse => enos_status::ENOS_ERR_BAD_RESPONSE,
            ErrorKind::Service => enos_status::ENOS_ERR_SERVICE,
            ErrorKind::Internal => enos_status::ENOS_ERR_INTERNAL,
            ErrorKind::Cancelled => enos_status::ENOS_ERR_CANCELLED,
            ErrorKind::Io => enos_status::ENOS_ERR_IO,
        }
    }
}

fn status_name(status: i32) -> &'static CStr {
    match status {
        0 => c"ENOS_OK",
        1 => c"ENOS_ERR_NULL_ARGUMENT",
        2 => c"ENOS_ERR_INVALID_ARGUMENT",
        3 => c"ENOS_ERR_CONNECT",
        4 => c"ENOS_ERR_TIMEOUT",
        5 => c"ENOS_ERR_TLS",
        6 => c"ENOS_ERR_HTTP_STATUS",
        7 => c"ENOS_ERR_BAD_RESPONSE",
        8 => c"ENOS_ERR_SERVICE",
        9 => c"ENOS_ERR_INTERNAL",
        10 => c"ENOS_ERR_CANCELLED",
        11 => c"ENOS_ERR_IO",
        _ => c"ENOS_UNKNOWN",
    }
}

/// The name of a status as static text, for example `"ENOS_ERR_TIMEOUT"`;
/// `"ENOS_UNKNOWN"` for a value outside `enos_status`.
///
/// Takes a plain integer, so any value is safe to pass. The returned string
/// is static: never free it. Thread-safe. Does not touch the last error.
#[unsafe(no_mangle)]
pub extern "C" fn enos_status_name(status: i32) -> *const c_char {
    status_name(status).as_ptr()
}

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the crate version has no NUL byte"),
    };

/// The library's version, for example `"0.1.0"`, as static text: never free
/// it. Thread-safe. Does not touch the last error.
#[unsafe(no_mangle)]
pub extern "C" fn enos_version() -> *const c_char {
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_variants() {
        use enos_status::*;
        let all = [
            ENOS_OK,
            ENOS_ERR_NULL_ARGUMENT,
            ENOS_ERR_INVALID_ARGUMENT,
            ENOS_ERR_CONNECT,
            ENOS_ERR_TIMEOUT,
            ENOS_ERR_TLS,
            ENOS_ERR_HTTP_STATUS,
            ENOS_ERR_BAD_RESPONSE,
            ENOS_ERR_SERVICE,
            ENOS_ERR_INTERNAL,
            ENOS_ERR_CANCELLED,
            ENOS_ERR_IO,
        ];
        for (value, status) in all.iter().enumerate() {
            assert_eq!(*status as i32, value as i32, "values are fixed");
            assert_eq!(
                status_name(value as i32).to_str().unwrap(),
                format!("{status:?}")
            );
        }
        for unknown in [-1, 12, i32::MAX, i32::MIN] {
            assert_eq!(status_name(unknown), c"ENOS_UNKNOWN");
        }
    }
}
