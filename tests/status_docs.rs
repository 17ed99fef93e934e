//! The statuses each function's entry in the header lists cannot drift from
//! what the function returns: every exported function is driven into each
//! failure it can meet (NULL and non-UTF-8 arguments, a refused connection,
//! a timeout, an HTTP error, an answer that is not JSON, a gateway error,
//! plain HTTP on a TLS port), and every status seen must be one its entry
//! names (or that the entry names through "the statuses of `f()`").

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::time::Duration;

use enos_token::fake::Fault;
use enos_token::ffi::builder::*;
use enos_token::ffi::client::*;
use enos_token::ffi::enos_client;
use enos_token::ffi::enos_status;
use enos_token::ffi::managed::*;
use enos_token::ffi::oneshot::*;
use enos_token::ffi::request::*;
use enos_token::ffi::response::*;
use enos_token::ffi::signing::*;
use enos_token::ffi::status::enos_status_name;
use enos_token::ffi::strings::enos_string_free;
use support::*;

const HEADER: &str = include_str!("../include/enos_token.h");

/// Each function's doc comment in the header.
fn entries() -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut doc = String::new();
    let mut in_doc = false;
    for line in HEADER.lines() {
        if line.starts_with("/**") {
            in_doc = true;
            doc.clear();
        } else if in_doc && line.starts_with(" */") {
            in_doc = false;
        } else if in_doc {
            doc.push_str(line);
            doc.push('\n');
        } else if let Some(open) = line.find("(") {
            let name = line[..open].rsplit([' ', '*']).next().unwrap_or("");
            if name.starts_with("enos_") && !doc.is_empty() {
                entries.insert(name.to_string(), std::mem::take(&mut doc));
            }
        }
    }
    entries
}

/// The statuses an entry names, directly or through another entry.
fn documented(entries: &BTreeMap<String, String>, function: &str) -> BTreeSet<String> {
    let doc = &entries[function];
    let mut names: BTreeSet<String> = doc
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| *word == "ENOS_OK" || word.starts_with("ENOS_ERR_"))
        .map(str::to_string)
        .collect();
    if let Some(rest) = doc.split("the statuses of `").nth(1) {
        let other = rest.split("()").next().unwrap();
        names.extend(documented(entries, other));
    }
    names
}

fn name_of(status: enos_status) -> String {
    unsafe { CStr::from_ptr(enos_status_name(status as i32)) }
        .to_str()
        .unwrap()
        .to_string()
}

struct Seen(BTreeMap<&'static str, BTreeSet<String>>);

impl Seen {
    fn record(&mut self, function: &'static str, status: enos_status) {
        self.0.entry(function).or_default().insert(name_of(status));
    }
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn client_of(url: &str, total_ms: u64) -> *mut enos_client {
    support::c_abi::c_client_with(url, |builder| unsafe {
        enos_client_builder_set_retries(builder, 0, 0);
        enos_client_builder_set_timeout_ms(builder, total_ms, total_ms);
    })
}

/// Every token-fetching function against `url`, recorded.
fn network_calls(seen: &mut Seen, url_text: &str, total_ms: u64) {
    let client = client_of(url_text, total_ms);
    let (url, key, secret) = (c(url_text), c(APP_KEY), c(APP_SECRET));
    let mut token: *mut c_char = ptr::null_mut();
    unsafe {
        let status = enos_get_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            &mut token,
            ptr::null_mut(),
        );
        seen.record("enos_get_access_token", status);
        enos_string_free(token);
        let status = enos_refresh_access_token(
            url.as_ptr(),
            key.as_ptr(),
            secret.as_ptr(),
            c"tok-x".as_ptr(),
            &mut token,
            ptr::null_mut(),
        );
        seen.record("enos_refresh_access_token", status);
        enos_string_free(token);
        seen.record(
            "enos_client_get_token",
            enos_client_get_token(client, &mut token, ptr::null_mut()),
        );
        enos_string_free(token);
        seen.record(
            "enos_client_refresh_token",
            enos_client_refresh_token(client, c"tok-x".as_ptr(), &mut token, ptr::null_mut()),
        );
        enos_string_free(token);
        enos_client_free(client);
        // Fresh clients: no cached token, and no failure shared from the last second.
        let fresh = client_of(url_text, total_ms);
        seen.record(
            "enos_client_access_token",
            enos_client_access_token(fresh, &mut token),
        );
        enos_string_free(token);
        enos_client_free(fresh);
        let fresh = client_of(url_text, total_ms);
        seen.record(
            "enos_client_auth_headers",
            enos_client_auth_headers(fresh, ptr::null(), ptr::null(), 0, &mut token),
        );
        enos_string_free(token);
        enos_client_free(fresh);
        let fresh = client_of(url_text, total_ms);
        let mut response = ptr::null_mut();
        seen.record(
            "enos_client_request",
            enos_client_request(
                fresh,
                c"GET".as_ptr(),
                c"/fake/v1/echo?a=1".as_ptr(),
                ptr::null(),
                ptr::null(),
                0,
                &mut response,
            ),
        );
        enos_response_free(response);
        enos_client_free(fresh);
    }
}

#[test]
fn every_status_a_function_returns_is_in_its_entry() {
    let mut seen = Seen(BTreeMap::new());
    // The network's failures, one kind per gateway.
    let fake = fake();
    network_calls(&mut seen, &fake.url(), 2000);
    network_calls(
        &mut seen,
        &format!("http://127.0.0.1:{}", closed_port()),
        2000,
    );
    for fault in [
        Fault::ServerErrorHtml,
        Fault::NotJson,
        Fault::GatewayStatus(1003),
        Fault::Delay(Duration::from_millis(800)),
    ] {
        fake.inject_times(fault, 100);
        network_calls(&mut seen, &fake.url(), 300);
        fake.clear_faults();
    }
    // A certificate from a CA the client does not trust.
    let tls = fake_with(|config| config.tls = Some(tls_identity("localhost")));
    network_calls(
        &mut seen,
        &format!("https://localhost:{}", tls.address().port()),
        2000,
    );

    // The arguments' failures.
    let bad = [0xffu8, 0].as_ptr().cast::<c_char>();
    let mut out: *mut c_char = ptr::null_mut();
    let client = client_of(&fake.url(), 2000);
    unsafe {
        seen.record(
            "enos_get_access_token",
            enos_get_access_token(ptr::null(), bad, bad, &mut out, ptr::null_mut()),
        );
        seen.record(
            "enos_get_access_token",
            enos_get_access_token(bad, bad, bad, &mut out, ptr::null_mut()),
        );
        seen.record(
            "enos_refresh_access_token",
            enos_refresh_access_token(bad, bad, bad, bad, &mut out, ptr::null_mut()),
        );
        seen.record(
            "enos_client_refresh_token",
            enos_client_refresh_token(client, bad, &mut out, ptr::null_mut()),
        );
        seen.record(
            "enos_client_auth_headers",
            enos_client_auth_headers(client, bad, ptr::null(), 0, &mut out),
        );
        seen.record(
            "enos_sign_request",
            enos_sign_request(ptr::null(), bad, ptr::null(), 0, 1, bad, &mut out),
        );
        seen.record(
            "enos_sign_request",
            enos_sign_request(bad, bad, ptr::null(), 0, 1, bad, &mut out),
        );
        seen.record(
            "enos_client_invalidate",
            enos_client_invalidate(client, bad),
        );
        let mut response = ptr::null_mut();
        for (method, path, content_type) in [
            (bad, c"/a".as_ptr(), ptr::null()),
            (c"GET".as_ptr(), c"http://elsewhere/a".as_ptr(), ptr::null()),
            (
                c"POST".as_ptr(),
                c"/a".as_ptr(),
                c"text/plain\r\nX: 1".as_ptr(),
            ),
            (ptr::null(), c"/a".as_ptr(), ptr::null()),
        ] {
            seen.record(
                "enos_client_request",
                enos_client_request(
                    client,
                    method,
                    path,
                    content_type,
                    ptr::null(),
                    0,
                    &mut response,
                ),
            );
        }
        seen.record(
            "enos_client_request",
            enos_client_request(
                client,
                c"POST".as_ptr(),
                c"/a".as_ptr(),
                ptr::null(),
                ptr::null(),
                3,
                &mut response,
            ),
        );
        seen.record(
            "enos_client_invalidate",
            enos_client_invalidate(ptr::null(), ptr::null()),
        );
        seen.record(
            "enos_client_access_token",
            enos_client_access_token(ptr::null(), &mut out),
        );
        seen.record(
            "enos_client_get_token",
            enos_client_get_token(ptr::null(), &mut out, ptr::null_mut()),
        );
        let mut counters = enos_token::ffi::enos_client_counters::default();
        seen.record(
            "enos_client_get_counters",
            enos_client_get_counters(client, &mut counters),
        );
        seen.record(
            "enos_client_get_counters",
            enos_client_get_counters(ptr::null(), ptr::null_mut()),
        );
        let mut builder = ptr::null_mut();
        seen.record(
            "enos_client_builder_new",
            enos_client_builder_new(bad, bad, bad, &mut builder),
        );
        seen.record(
            "enos_client_builder_new",
            enos_client_builder_new(ptr::null(), bad, bad, &mut builder),
        );
        seen.record(
            "enos_client_builder_new",
            enos_client_builder_new(
                c"http://h:1".as_ptr(),
                c"k".as_ptr(),
                c"s".as_ptr(),
                &mut builder,
            ),
        );
        seen.record(
            "enos_client_builder_set_timeout_ms",
            enos_client_builder_set_timeout_ms(builder, 0, 0),
        );
        seen.record(
            "enos_client_builder_set_max_response_bytes",
            enos_client_builder_set_max_response_bytes(builder, 0),
        );
        seen.record(
            "enos_client_builder_set_max_response_bytes",
            enos_client_builder_set_max_response_bytes(ptr::null_mut(), 1),
        );
        seen.record(
            "enos_client_builder_set_timeout_ms",
            enos_client_builder_set_timeout_ms(ptr::null_mut(), 0, 0),
        );
        seen.record(
            "enos_client_builder_set_ca_file",
            enos_client_builder_set_ca_file(builder, bad),
        );
        seen.record(
            "enos_client_builder_set_ca_file",
            enos_client_builder_set_ca_file(builder, ptr::null()),
        );
        seen.record(
            "enos_client_builder_set_proxy",
            enos_client_builder_set_proxy(builder, bad),
        );
        seen.record(
            "enos_client_builder_set_proxy",
            enos_client_builder_set_proxy(builder, ptr::null()),
        );
        seen.record(
            "enos_client_builder_set_refresh_margin_s",
            enos_client_builder_set_refresh_margin_s(ptr::null_mut(), 1),
        );
        seen.record(
            "enos_client_builder_set_retries",
            enos_client_builder_set_retries(builder, 1000, 0),
        );
        seen.record(
            "enos_client_builder_set_retries",
            enos_client_builder_set_retries(ptr::null_mut(), 1, 0),
        );
        seen.record(
            "enos_client_builder_set_background_refresh",
            enos_client_builder_set_background_refresh(ptr::null_mut(), true),
        );
        seen.record(
            "enos_client_builder_set_shared_cache",
            enos_client_builder_set_shared_cache(builder, bad),
        );
        seen.record(
            "enos_client_builder_set_shared_cache",
            enos_client_builder_set_shared_cache(builder, ptr::null()),
        );
        seen.record(
            "enos_client_builder_set_log_callback",
            enos_client_builder_set_log_callback(ptr::null_mut(), None, ptr::null_mut()),
        );
        let mut built = ptr::null_mut();
        seen.record(
            "enos_client_build",
            enos_client_build(ptr::null_mut(), &mut built),
        );
        seen.record("enos_client_build", enos_client_build(builder, &mut built));
        enos_client_free(built);
        enos_client_free(client);
    }

    let entries = entries();
    let mut undocumented = Vec::new();
    for (function, statuses) in &seen.0 {
        let listed = documented(&entries, function);
        for status in statuses {
            if !listed.contains(status) {
                undocumented.push(format!("{function} returned {status}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "missing from the header: {undocumented:#?}"
    );
    // The drive reached every kind of failure.
    let all: BTreeSet<&String> = seen.0.values().flatten().collect();
    for status in [
        "ENOS_ERR_CONNECT",
        "ENOS_ERR_TIMEOUT",
        "ENOS_ERR_TLS",
        "ENOS_ERR_HTTP_STATUS",
        "ENOS_ERR_BAD_RESPONSE",
        "ENOS_ERR_SERVICE",
        "ENOS_ERR_NULL_ARGUMENT",
        "ENOS_ERR_INVALID_ARGUMENT",
    ] {
        assert!(all.contains(&status.to_string()), "{status} never seen");
    }
}
