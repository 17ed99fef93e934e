//! Helpers for tests that call the C functions from Rust.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use enos_token::ffi::builder::{
    enos_client_build, enos_client_builder_new, enos_client_builder_set_proxy,
};
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::last_error::enos_last_error_message;
use enos_token::ffi::{enos_client, enos_client_builder};

use super::{APP_KEY, APP_SECRET};
use enos_token::ffi::strings::enos_string_free;

pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Bytes that are not UTF-8, NUL-terminated.
pub const NOT_UTF8: &[u8] = b"\xff\xfe\0";

pub fn not_utf8() -> *const c_char {
    NOT_UTF8.as_ptr().cast()
}

pub fn last_message() -> Option<String> {
    let message = enos_last_error_message();
    (!message.is_null()).then(|| {
        unsafe { CStr::from_ptr(message) }
            .to_str()
            .unwrap()
            .to_string()
    })
}

/// A non-NULL pointer the library must overwrite with NULL on failure.
pub fn sentinel() -> *mut c_char {
    ptr::NonNull::<c_char>::dangling().as_ptr()
}

pub fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
    unsafe { enos_string_free(s) };
    text
}

/// A client of `url` for the test app, built through the C ABI with proxies
/// off, after `configure` has set more options on its builder.
pub fn c_client_with(
    url: &str,
    configure: impl FnOnce(*mut enos_client_builder),
) -> *mut enos_client {
    let (url, key, secret) = (c(url), c(APP_KEY), c(APP_SECRET));
    let (mut builder, mut client) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid strings and out-pointers; the builder is consumed by build.
    unsafe {
        assert_eq!(
            enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
            ENOS_OK
        );
        assert_eq!(
            enos_client_builder_set_proxy(builder, c"".as_ptr()),
            ENOS_OK
        );
        configure(builder);
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    client
}
