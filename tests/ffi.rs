//! The C ABI called as C would call it, from Rust: every function with NULL
//! and non-UTF-8 arguments, output reset on failure, the thread's last error,
//! and real calls against the fake gateway.

mod support;

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use enos_status::*;
use enos_token::ffi::builder::*;
use enos_token::ffi::client::*;
use enos_token::ffi::last_error::*;
use enos_token::ffi::oneshot::*;
use enos_token::ffi::status::*;
use enos_token::ffi::strings::enos_string_free;
use enos_token::ffi::{enos_client, enos_client_builder, enos_status};
use support::*;

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Bytes that are not UTF-8, NUL-terminated.
const NOT_UTF8: &[u8] = b"\xff\xfe\0";

fn not_utf8() -> *const c_char {
    NOT_UTF8.as_ptr().cast()
}

fn last_message() -> Option<String> {
    let message = enos_last_error_message();
    (!message.is_null()).then(|| {
        unsafe { CStr::from_ptr(message) }
            .to_str()
            .unwrap()
            .to_string()
    })
}

/// A non-NULL pointer the library must overwrite with NULL on failure.
fn sentinel() -> *mut c_char {
    ptr::NonNull::<c_char>::dangling().as_ptr()
}

fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
    unsafe { enos_string_free(s) };
    text
}

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
    assert_eq!(name(10), "ENOS_UNKNOWN");
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
                format!("{} is NULL", names[position]),
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
            assert_eq!(last_message(), Some(message));
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
            assert_eq!(
                last_message(),
                Some(format!("{} {suffix}", names[position]))
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
    assert_eq!(last_message().as_deref(), Some("gateway_url is NULL"));
}

fn new_builder(url: &str) -> *mut enos_client_builder {
    let (url, key, secret) = (c(url), c(APP_KEY), c(APP_SECRET));
    let mut builder = ptr::null_mut();
    let got = unsafe {
        enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder)
    };
    assert_eq!(got, ENOS_OK);
    assert!(!builder.is_null());
    builder
}

/// What a call does, what it must return, and the call.
type Case<'a> = (&'a str, enos_status, Box<dyn Fn() -> enos_status + 'a>);

#[test]
fn builder_checks_every_argument() {
    let (url, key, secret) = (c("http://127.0.0.1:1"), c(APP_KEY), c(APP_SECRET));
    let args = [url.as_ptr(), key.as_ptr(), secret.as_ptr()];
    for position in 0..3 {
        for bad in [ptr::null(), not_utf8()] {
            let mut a = args;
            a[position] = bad;
            let mut builder = ptr::NonNull::<enos_client_builder>::dangling().as_ptr();
            let got = unsafe { enos_client_builder_new(a[0], a[1], a[2], &mut builder) };
            assert_ne!(got, ENOS_OK);
            assert!(builder.is_null(), "out reset on failure");
        }
    }
    let got = unsafe { enos_client_builder_new(args[0], args[1], args[2], ptr::null_mut()) };
    assert_eq!(got, ENOS_ERR_NULL_ARGUMENT);

    let builder = new_builder("http://127.0.0.1:1");
    let null = ptr::null_mut();
    let (pem, missing, ca) = (c("x"), c("/nonexistent.pem"), c(&tls_file("ca.crt")));
    let (off, gopher) = (c(""), c("gopher://p:1"));
    // Each setter: a NULL builder, each bad argument, then a good call.
    let cases: Vec<Case> = vec![
        (
            "timeout, NULL builder",
            ENOS_ERR_NULL_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_timeout_ms(null, 1, 1) }),
        ),
        (
            "timeout, connect 0",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_timeout_ms(builder, 0, 1000) }),
        ),
        (
            "timeout, total 0",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_timeout_ms(builder, 1000, 0) }),
        ),
        (
            "timeout",
            ENOS_OK,
            Box::new(|| unsafe { enos_client_builder_set_timeout_ms(builder, 100, 1000) }),
        ),
        (
            "CA file, NULL builder",
            ENOS_ERR_NULL_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_ca_file(null, pem.as_ptr()) }),
        ),
        (
            "CA file, NULL path",
            ENOS_ERR_NULL_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_ca_file(builder, ptr::null()) }),
        ),
        (
            "CA file, not UTF-8",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_ca_file(builder, not_utf8()) }),
        ),
        (
            "CA file, missing",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_ca_file(builder, missing.as_ptr()) }),
        ),
        (
            "CA file",
            ENOS_OK,
            Box::new(|| unsafe { enos_client_builder_set_ca_file(builder, ca.as_ptr()) }),
        ),
        (
            "proxy, NULL builder",
            ENOS_ERR_NULL_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_proxy(null, off.as_ptr()) }),
        ),
        (
            "proxy, NULL URL",
            ENOS_ERR_NULL_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_proxy(builder, ptr::null()) }),
        ),
        (
            "proxy, not UTF-8",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_proxy(builder, not_utf8()) }),
        ),
        (
            "proxy, bad scheme",
            ENOS_ERR_INVALID_ARGUMENT,
            Box::new(|| unsafe { enos_client_builder_set_proxy(builder, gopher.as_ptr()) }),
        ),
        (
            "proxy off",
            ENOS_OK,
            Box::new(|| unsafe { enos_client_builder_set_proxy(builder, off.as_ptr()) }),
        ),
    ];
    for (what, expected, call) in &cases {
        assert_eq!(call(), *expected, "{what}");
        if what.ends_with("missing") {
            assert!(
                last_message()
                    .unwrap()
                    .starts_with("cannot read CA file /nonexistent.pem")
            );
        }
    }

    // build with out == NULL still consumes the builder (valgrind would see a leak otherwise).
    assert_eq!(
        unsafe { enos_client_build(builder, ptr::null_mut()) },
        ENOS_ERR_NULL_ARGUMENT
    );
    let mut client = ptr::NonNull::<enos_client>::dangling().as_ptr();
    assert_eq!(
        unsafe { enos_client_build(ptr::null_mut(), &mut client) },
        ENOS_ERR_NULL_ARGUMENT
    );
    assert!(client.is_null());
    assert_eq!(last_message().as_deref(), Some("builder is NULL"));
    unsafe {
        enos_client_builder_free(ptr::null_mut());
        enos_client_free(ptr::null_mut());
        enos_client_builder_free(new_builder("http://127.0.0.1:1"));
    }
}

#[test]
fn client_calls_through_the_c_abi() {
    let fake = fake();
    let builder = new_builder(&fake.url());
    assert_eq!(
        unsafe { enos_client_builder_set_proxy(builder, c("").as_ptr()) },
        ENOS_OK
    );
    let mut client = ptr::null_mut();
    assert_eq!(unsafe { enos_client_build(builder, &mut client) }, ENOS_OK);

    let mut token = sentinel();
    assert_eq!(
        unsafe { enos_client_get_token(ptr::null(), &mut token, ptr::null_mut()) },
        ENOS_ERR_NULL_ARGUMENT
    );
    assert!(token.is_null());
    assert_eq!(
        unsafe { enos_client_get_token(client, ptr::null_mut(), ptr::null_mut()) },
        ENOS_ERR_NULL_ARGUMENT
    );
    let mut expire = 0;
    assert_eq!(
        unsafe { enos_client_get_token(client, &mut token, &mut expire) },
        ENOS_OK
    );
    assert_eq!(expire, 7200);
    let first = take_string(token);

    let first_c = c(&first);
    let mut out = sentinel();
    assert_eq!(
        unsafe {
            enos_client_refresh_token(ptr::null(), first_c.as_ptr(), &mut out, ptr::null_mut())
        },
        ENOS_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { enos_client_refresh_token(client, ptr::null(), &mut out, ptr::null_mut()) },
        ENOS_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { enos_client_refresh_token(client, not_utf8(), &mut out, ptr::null_mut()) },
        ENOS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe {
            enos_client_refresh_token(client, first_c.as_ptr(), ptr::null_mut(), ptr::null_mut())
        },
        ENOS_ERR_NULL_ARGUMENT
    );
    assert!(out.is_null());
    assert_eq!(
        unsafe { enos_client_refresh_token(client, first_c.as_ptr(), &mut out, ptr::null_mut()) },
        ENOS_OK
    );
    assert_ne!(take_string(out), first);

    fake.expire_all_tokens();
    let mut token = ptr::null_mut();
    assert_eq!(
        unsafe { enos_client_get_token(client, &mut token, &mut expire) },
        ENOS_OK
    );
    let current = take_string(token);
    fake.expire_all_tokens();
    let current_c = c(&current);
    let mut out = sentinel();
    assert_eq!(
        unsafe { enos_client_refresh_token(client, current_c.as_ptr(), &mut out, &mut expire) },
        ENOS_ERR_SERVICE
    );
    assert_eq!((enos_last_service_status(), expire), (1203, 0));
    assert!(out.is_null());
    unsafe { enos_client_free(client) };
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
