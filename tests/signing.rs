//! `apim-signature` against vectors computed outside the code under test: a
//! separate Python implementation of the rule (hashlib, written from
//! token-service.md and the query rules in the header), its output pasted here.

mod support;

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use enos_token::ffi::enos_status::*;
use enos_token::ffi::signing::enos_sign_request;
use enos_token::ffi::strings::enos_string_free;

const TOKEN: &str = "fk000001abcdef";
const TIMESTAMP: i64 = 1700000000123;
const SECRET: &str = "test-app-secret-8d1f";

const VECTORS: &[(&str, &str, &[u8], &str)] = &[
    (
        "no query, no body",
        "",
        b"",
        "df9380c2e19c5d43312bec3e3211e1b1b7cd6828237cc0823537b7e3ee36a9ee",
    ),
    (
        "sorted query",
        "k3=v3&k1=v1&k2=v2",
        b"",
        "c56f1cc735b1d7557bf7143bda631e880b3f588a382fb2d2aaadfc98b20e1475",
    ),
    (
        "percent-encoded and plus",
        "q=a+b%20c&e=%E2%82%AC%2B",
        b"",
        "e1d943677235673d6991fd66bd19da4a8da7b38e4a53423df456f67a0fe9f0e9",
    ),
    (
        "repeated names keep order",
        "b=2&a=z&b=1&a=y",
        b"",
        "d74fe315b5a8755325336ee29695db4551b64a8ae628c43eb3be871c0f272f3a",
    ),
    (
        "parameter without =",
        "flag&x=1",
        b"",
        "946b66499e07753d7a99e8b76fd9fb29557fc44c1ec8e40f22a128d8fa5a3c23",
    ),
    (
        "json body",
        "",
        br#"{"assetIds":["a1","a2"],"pageSize":10}"#,
        "9130ab3a836be50393bcef9801cf8622de207efa73f150339899088b3ad579e1",
    ),
    (
        "query and json body",
        "orgId=o15&action=get",
        br#"{"k":"v"}"#,
        "084123c71a94982e1645c357f1ace3faa74af1b014c4e4a2f515f0194d1c2090",
    ),
    (
        "non-ASCII UTF-8",
        "name=%E4%B8%AD%E6%96%87&city=M\u{fc}nchen",
        "{\"desc\":\"温度\"}".as_bytes(),
        "8f38fb38c851e7c1e458532d922de16c99fcd028ecc16aadac36224df6f49a16",
    ),
];

fn sign_through_c(
    token: &str,
    query: Option<&str>,
    body: &[u8],
    secret: &str,
) -> (enos_token::ffi::enos_status, Option<String>) {
    let token = CString::new(token).unwrap();
    let query = query.map(|q| CString::new(q).unwrap());
    let secret = CString::new(secret).unwrap();
    let mut out: *mut c_char = ptr::NonNull::dangling().as_ptr();
    let body_ptr = if body.is_empty() {
        ptr::null()
    } else {
        body.as_ptr()
    };
    let status = unsafe {
        enos_sign_request(
            token.as_ptr(),
            query.as_ref().map_or(ptr::null(), |q| q.as_ptr()),
            body_ptr,
            body.len(),
            TIMESTAMP,
            secret.as_ptr(),
            &mut out,
        )
    };
    let text = (!out.is_null()).then(|| {
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
        unsafe { enos_string_free(out) };
        text
    });
    (status, text)
}

#[test]
fn signatures_match_independent_vectors() {
    for (name, query, body, expected) in VECTORS {
        let (status, signature) = sign_through_c(TOKEN, Some(query), body, SECRET);
        assert_eq!(status, ENOS_OK, "{name}");
        assert_eq!(signature.as_deref(), Some(*expected), "{name}");
    }
}

#[test]
fn null_or_empty_query_and_leading_question_mark() {
    let none = VECTORS[0].3;
    assert_eq!(
        sign_through_c(TOKEN, None, b"", SECRET).1.as_deref(),
        Some(none)
    );
    let sorted = VECTORS[1].3;
    assert_eq!(
        sign_through_c(TOKEN, Some("?k3=v3&k1=v1&k2=v2"), b"", SECRET)
            .1
            .as_deref(),
        Some(sorted)
    );
}

#[test]
fn bad_arguments() {
    let (status, out) = sign_through_c("", None, b"", SECRET);
    assert_eq!((status, out), (ENOS_ERR_INVALID_ARGUMENT, None));
    let (status, out) = sign_through_c(TOKEN, None, b"", "");
    assert_eq!((status, out), (ENOS_ERR_INVALID_ARGUMENT, None));
    let token = CString::new(TOKEN).unwrap();
    let secret = CString::new(SECRET).unwrap();
    let mut out: *mut c_char = ptr::NonNull::dangling().as_ptr();
    let status = unsafe {
        enos_sign_request(
            token.as_ptr(),
            ptr::null(),
            ptr::null(),
            5,
            1,
            secret.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status, ENOS_ERR_NULL_ARGUMENT, "NULL body with a length");
    assert!(out.is_null());
    let status = unsafe {
        enos_sign_request(
            ptr::null(),
            ptr::null(),
            ptr::null(),
            0,
            1,
            secret.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status, ENOS_ERR_NULL_ARGUMENT);
    let status = unsafe {
        enos_sign_request(
            token.as_ptr(),
            ptr::null(),
            ptr::null(),
            0,
            1,
            ptr::null(),
            &mut out,
        )
    };
    assert_eq!(status, ENOS_ERR_NULL_ARGUMENT);
    let status = unsafe {
        enos_sign_request(
            token.as_ptr(),
            c"\xff".as_ptr(),
            ptr::null(),
            0,
            1,
            secret.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status, ENOS_ERR_INVALID_ARGUMENT);
    let status = unsafe {
        enos_sign_request(
            token.as_ptr(),
            ptr::null(),
            ptr::null(),
            0,
            1,
            secret.as_ptr(),
            ptr::null_mut(),
        )
    };
    assert_eq!(status, ENOS_ERR_NULL_ARGUMENT);
}
