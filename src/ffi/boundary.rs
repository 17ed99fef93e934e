//! The one road every export takes across the C boundary.
//!
//! `fallible` runs the body, catches any panic, and turns the outcome into
//! an `enos_status`, replacing the thread's last error with the details of a
//! failure (or clearing it after a success). `infallible` catches panics for exports that return no
//! status. The argument helpers turn raw pointers into references and
//! strings, or into `ENOS_ERR_NULL_ARGUMENT` / `ENOS_ERR_INVALID_ARGUMENT`.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use super::last_error;
use super::status::enos_status;
use super::strings::owned_c_str;
use crate::error::{Error, ErrorKind};
use crate::response::Token;

/// Runs the body of a fallible export.
///
/// The thread's last error is replaced only when the body has finished:
/// until then the previous message stays valid, so a caller may pass it back
/// in as an argument, and whatever a log callback did inside the call (even
/// a failing library call) is overwritten by this call's own outcome.
pub(crate) fn fallible(body: impl FnOnce() -> Result<(), Error>) -> enos_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            last_error::clear();
            enos_status::ENOS_OK
        }
        Ok(Err(error)) => last_error::record(&error),
        Err(_) => last_error::record(&Error::new(
            ErrorKind::Internal,
            "internal error: a panic was caught at the C boundary (a bug in enos-token; please report it)",
        )),
    }
}

/// Runs the body of an export that returns no status; a panic yields `fallback`.
pub(crate) fn infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn null_argument(name: &str) -> Error {
    // The configuration a program usually reads from its environment: say
    // what to pass (a NULL is most often an unset variable).
    let what = match name {
        "gateway_url" => {
            ": pass the API gateway's base URL, https://<apim-gateway host> (the examples \
             read ENOS_GATEWAY_URL: is it set?)"
        }
        "app_key" => ": pass the application's key (the examples read ENOS_APP_KEY: is it set?)",
        "app_secret" => {
            ": pass the application's secret (the examples read ENOS_APP_SECRET: is it set?)"
        }
        _ => "",
    };
    Error::new(ErrorKind::NullArgument, format!("{name} is NULL{what}"))
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `pointer` is NULL or points to a NUL-terminated string that stays valid
/// and unchanged for the returned lifetime.
pub(crate) unsafe fn required_str<'a>(
    pointer: *const c_char,
    name: &str,
) -> Result<&'a str, Error> {
    if pointer.is_null() {
        return Err(null_argument(name));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map_err(|_| Error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
/// As [`required_str`].
pub(crate) unsafe fn optional_str<'a>(
    pointer: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    if pointer.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { required_str(pointer, name) }.map(Some)
}

/// A required pointer to a caller's object, read-only.
///
/// # Safety
/// `pointer` is NULL or points to a live `T` for the returned lifetime.
pub(crate) unsafe fn required_ref<'a, T>(pointer: *const T, name: &str) -> Result<&'a T, Error> {
    // SAFETY: per this function's contract.
    unsafe { pointer.as_ref() }.ok_or_else(|| null_argument(name))
}

/// A required pointer to a caller's object or out-parameter, writable.
///
/// # Safety
/// `pointer` is NULL or points to a live, writable `T` not aliased for the
/// returned lifetime.
pub(crate) unsafe fn required_mut<'a, T>(pointer: *mut T, name: &str) -> Result<&'a mut T, Error> {
    // SAFETY: per this function's contract.
    unsafe { pointer.as_mut() }.ok_or_else(|| null_argument(name))
}

/// An optional out-parameter: NULL is `None`.
///
/// # Safety
/// As [`required_mut`].
pub(crate) unsafe fn optional_mut<'a, T>(pointer: *mut T) -> Option<&'a mut T> {
    // SAFETY: per this function's contract.
    unsafe { pointer.as_mut() }
}

/// Bytes given as pointer and length; NULL is allowed only with length 0.
///
/// # Safety
/// `pointer` is NULL or points to `length` readable bytes for the lifetime.
pub(crate) unsafe fn byte_slice<'a>(
    pointer: *const u8,
    length: usize,
    name: &str,
) -> Result<&'a [u8], Error> {
    if length == 0 {
        return Ok(&[]);
    }
    if pointer.is_null() {
        return Err(null_argument(name));
    }
    if length > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "{name} length is too large"
        )));
    }
    // SAFETY: non-NULL, `length` readable bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(pointer, length) })
}

/// Resets the token outputs, as every failure must leave them: `*token_out`
/// NULL and `*expire_out` 0. Returns them for writing on success.
///
/// # Safety
/// Each pointer is NULL or valid for writes.
unsafe fn reset_token_outputs<'a>(
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
) -> Result<(&'a mut *mut c_char, Option<&'a mut i64>), Error> {
    // SAFETY: forwarded contract.
    let mut expire = unsafe { optional_mut(expire_out) };
    if let Some(expire) = expire.as_deref_mut() {
        *expire = 0;
    }
    // SAFETY: forwarded contract.
    let token = unsafe { required_mut(token_out, "token_out") }?;
    *token = ptr::null_mut();
    Ok((token, expire))
}

/// Writes a token and its lifetime to the outputs.
fn write_token(
    token: Token,
    token_out: &mut *mut c_char,
    expire_out: Option<&mut i64>,
) -> Result<(), Error> {
    *token_out = owned_c_str(&token.access_token)?;
    if let Some(expire) = expire_out {
        *expire = token.expire_s;
    }
    Ok(())
}

/// Runs `call` for an export that hands out a token: the outputs are reset
/// first (so that any failure leaves `*token_out` NULL and `*expire_out` 0)
/// and written on success.
///
/// # Safety
/// Each output pointer is NULL or valid for writes.
pub(crate) unsafe fn with_token_outputs(
    token_out: *mut *mut c_char,
    expire_out: *mut i64,
    call: impl FnOnce() -> Result<Token, Error>,
) -> Result<(), Error> {
    // SAFETY: forwarded contract.
    let (token_out, expire_out) = unsafe { reset_token_outputs(token_out, expire_out) }?;
    write_token(call()?, token_out, expire_out)
}

/// The gateway URL, app key and app secret arguments every handle-less call
/// and the builder take.
///
/// # Safety
/// As [`required_str`], for each.
pub(crate) unsafe fn credentials<'a>(
    gateway_url: *const c_char,
    app_key: *const c_char,
    app_secret: *const c_char,
) -> Result<(&'a str, &'a str, &'a str), Error> {
    // SAFETY: forwarded contract.
    unsafe {
        Ok((
            required_str(gateway_url, "gateway_url")?,
            required_str(app_key, "app_key")?,
            required_str(app_secret, "app_secret")?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_internal_with_message() {
        let status = fallible(|| panic!("boom"));
        assert_eq!(status, enos_status::ENOS_ERR_INTERNAL);
        let message =
            unsafe { CStr::from_ptr(super::super::last_error::enos_last_error_message()) };
        assert!(message.to_str().unwrap().contains("panic was caught"));
        assert_eq!(fallible(|| Ok(())), enos_status::ENOS_OK);
        assert!(super::super::last_error::enos_last_error_message().is_null());
        assert_eq!(infallible(7, || panic!("boom")), 7);
    }
}
