//! The C ABI called as C would call it, from Rust: every function with NULL
//! and non-UTF-8 arguments, output reset on failure, the thread's last error,
//! and real calls against the fake gateway.

mod support;

use std::ffi::{CStr, c_char};
use std::ptr;

use enos_status::*;
use enos_token::ffi::enos_status;
use enos_token::ffi::last_error::*;
use enos_token::ffi::oneshot::*;
use enos_token::ffi::status::*;
use enos_token::ffi::strings::enos_string_free;
use support::c_abi::*;
use support::*;

#[test]
fn status_names_and_version() {
    let name = |s: i32| {
        unsafe { CStr::from_ptr(enos_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(0), "ENOS_OK");
    assert_eq!(name(4), "ENOS_ERR_TIMEOUT");
    assert_eq!(name(9), "ENOS_ERR_INTERNAL");
    assert_eq!(name(10), "ENOS_ERR_CANCELLED");
    assert_eq!(name(11), "ENOS_ERR_IO");
    assert_eq!(name(12), "ENOS_UNKNOWN");
    assert_eq!(name(-1), "ENOS_UNKNOWN");
    let version = unsafe { CStr::from_ptr(enos_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn string_free_accepts_null() {
    unsafe { enos_string_free(ptr::null_mut()) };
}

type GetFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const c_char,
    *mut *mut c_char,
    *mut i64,
) -> enos_status;

#[test]
fn one_shot_get_checks_every_argument() {
    let (url, key, secret) = (c("http://127.0.0.1:1"), c(APP_KEY), c(APP_SECRET));
    let get: GetFn = enos_get_access_token;
    let args = [url.as_ptr(), key.as_ptr(), secret.as_ptr()];
    let names = ["gateway_url", "app_key", "app_secret"];
    for position in 0..3 {
        for (bad, status, message) in [
            (
                ptr::null(),
                ENOS_ERR_NULL_ARGUMENT,
                format!(
                    "{} is NULL: pass the {}",
                    names[position],
                    [
                        "API gateway's base URL",
                        "application's key",
                        "application's secret"
                    ][position]
                ),
            ),
            (
                not_utf8(),
                ENOS_ERR_INVALID_ARGUMENT,
                format!("{} is not valid UTF-8", names[position]),
            ),
        ] {
            let mut a = args;
            a[position] = bad;
            let mut token = sentinel();
            let mut expire = 99i64;
            let got = unsafe { get(a[0], a[1], a[2], &mut token, &mut expire) };
            assert_eq!(got, status);
            assert!(token.is_null(), "token_out reset on failure");
            assert_eq!(expire, 0, "expire_out reset on failure");
            let said = last_message().unwrap();
            assert!(said.starts_with(&message), "{said}");
        }
    }
    let got = unsafe { get(args[0], args[1], args[2], ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(got, ENOS_ERR_NULL_ARGUMENT);
    assert_eq!(last_message().as_deref(), Some("token_out is NULL"));
    let empty = c("");
    let mut token = sentinel();
    let got = unsafe {
        get(
            args[0],
            empty.as_ptr(),
            args[2],
            &mut token,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_INVALID_ARGUMENT);
    assert_eq!(last_message().as_deref(), Some("app key is empty"));
    let got = unsafe {
        get(
            args[0],
            args[1],
            empty.as_ptr(),
            &mut token,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_INVALID_ARGUMENT);
    assert_eq!(last_message().as_deref(), Some("app secret is empty"));
    let bad_url = c("ftp://x");
    let got = unsafe {
        get(
            bad_url.as_ptr(),
            args[1],
            args[2],
            &mut token,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_INVALID_ARGUMENT);
    assert!(last_message().unwrap().starts_with("gateway URL"));
}

#[test]
fn one_shot_refresh_checks_every_argument() {
    let (url, key, secret, token) = (c("http://127.0.0.1:1"), c(APP_KEY), c(APP_SECRET), c("t"));
    let args = [url.as_ptr(), key.as_ptr(), secret.as_ptr(), token.as_ptr()];
    let names = ["gateway_url", "app_key", "app_secret", "access_token"];
    for position in 0..4 {
        for (bad, status, suffix) in [
            (ptr::null(), ENOS_ERR_NULL_ARGUMENT, "is NULL"),
            (not_utf8(), ENOS_ERR_INVALID_ARGUMENT, "is not valid UTF-8"),
        ] {
            let mut a = args;
            a[position] = bad;
            let mut out = sentinel();
            let got = unsafe {
                enos_refresh_access_token(a[0], a[1], a[2], a[3], &mut out, ptr::null_mut())
            };
            assert_eq!(got, status);
            assert!(out.is_null());
            let said = last_message().unwrap();
            assert!(
                said.starts_with(&format!("{} {suffix}", names[position])),
                "{said}"
            );
        }
    }
    let empty = c("");
    let mut out = sentinel();
    let got = unsafe {
        enos_refresh_access_token(
            args[0],
            args[1],
            args[2],
            empty.as_ptr(),
            &mut out,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_INVALID_ARGUMENT);
    assert_eq!(
        last_message().as_deref(),
        Some("access token to refresh is empty")
    );
}

#[test]
fn one_shot_calls_against_the_fake() {
    let fake = fake();
    let (url, key, secret) = (c(&fake.url()), c(APP_KEY), c(APP_SECRET));
    let mut token = ptr::null_mut();
    let mut expire = 0i64;
    let got = unsafe {
        enos_get_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            &mut token,
            &mut expire,
        )
    };
    assert_eq!(got, ENOS_OK);
    assert_eq!(expire, 7200);
    assert!(
        enos_last_error_message().is_null(),
        "success clears the last error"
    );
    let first = take_string(token);
    let first_c = c(&first);
    let mut refreshed = ptr::null_mut();
    let got = unsafe {
        enos_refresh_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            first_c.as_ptr(),
            &mut refreshed,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_OK, "{:?}", last_message());
    assert_ne!(take_string(refreshed), first);

    // The old token was replaced: refreshing it again is a gateway error.
    let mut out = sentinel();
    let got = unsafe {
        enos_refresh_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            first_c.as_ptr(),
            &mut out,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_SERVICE);
    assert!(out.is_null());
    assert_eq!(enos_last_service_status(), 1204);
    assert_eq!(enos_last_http_status(), 200);
    // Reading the details does not clear them.
    assert_eq!(enos_last_service_status(), 1204);
    assert!(last_message().unwrap().starts_with("gateway status 1204"));
}

#[test]
fn last_error_is_per_thread_and_cleared_by_the_next_call() {
    let port = closed_port();
    let (url, key, secret) = (
        c(&format!("http://127.0.0.1:{port}")),
        c(APP_KEY),
        c(APP_SECRET),
    );
    let mut token = ptr::null_mut();
    let got = unsafe {
        enos_get_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            &mut token,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_CONNECT);
    let message = last_message().unwrap();
    assert_eq!(message, format!("connect to 127.0.0.1:{port} refused"));
    assert_eq!(
        (enos_last_service_status(), enos_last_http_status()),
        (0, 0)
    );
    std::thread::spawn(|| {
        assert!(
            enos_last_error_message().is_null(),
            "other threads see nothing"
        )
    })
    .join()
    .unwrap();
    assert_eq!(last_message(), Some(message), "still there on this thread");
    let got = unsafe {
        enos_get_access_token(
            ptr::null(),
            key.as_ptr(),
            secret.as_ptr(),
            &mut token,
            ptr::null_mut(),
        )
    };
    assert_eq!(got, ENOS_ERR_NULL_ARGUMENT);
    assert!(
        last_message()
            .unwrap()
            .contains("gateway_url is NULL: pass the API gateway's base URL"),
        "names what to pass"
    );
}

#[test]
fn the_secret_never_appears_in_a_message() {
    let secret = "S3CR3T-do-not-print-0451";
    let fake = fake();
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let (key, secret_c) = (c(APP_KEY), c(secret));
    for url in [fake.url(), refused, "ftp://x".to_string()] {
        let url = c(&url);
        let mut token = ptr::null_mut();
        let got = unsafe {
            enos_get_access_token(
                url.as_ptr(),
                key.as_ptr(),
                secret_c.as_ptr(),
                &mut token,
                ptr::null_mut(),
            )
        };
        assert_ne!(got, ENOS_OK);
        let message = last_message().unwrap();
        assert!(!message.contains(secret), "{message}");
    }
}
