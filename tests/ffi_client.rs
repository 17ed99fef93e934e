//! The builder and the client through the C ABI: every argument checked,
//! every output reset on failure, calls against the fake gateway.

mod support;

use std::ptr;

use enos_status::*;
use enos_token::ffi::builder::*;
use enos_token::ffi::client::*;
use enos_token::ffi::last_error::enos_last_service_status;
use enos_token::ffi::{enos_client, enos_client_builder, enos_status};
use support::c_abi::*;
use support::*;

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
