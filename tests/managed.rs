//! The managed token against the fake gateway with short token lifetimes and
//! injected faults: single flight, refresh at the margin, fallback to Get,
//! serving the old token through an outage, retries, no refresh storms, and
//! signed API calls checked by the fake's echo API.

mod support;

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use enos_token::fake::{FakeGateway, Fault};
use enos_token::{Client, ErrorKind};
use enos_token::{LogLevel, Logger};
use support::*;

fn fake_lifetime(seconds: u64) -> FakeGateway {
    fake_with(|config| config.token_lifetime = Duration::from_secs(seconds))
}

fn managed_client(fake: &FakeGateway, margin_s: u64) -> Client {
    let mut builder = builder(&fake.url());
    builder.refresh_margin(Duration::from_secs(margin_s));
    builder.retries(2, Duration::from_millis(20)).unwrap();
    builder.build().unwrap()
}

/// Runs `threads` callers of `access_token` released at the same instant.
fn concurrent_access(client: &Arc<Client>, threads: usize) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let client = client.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                client.access_token()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("no panic").expect("a token"))
        .collect()
}

#[test]
fn sixty_four_first_callers_cause_exactly_one_get() {
    let fake = fake();
    let client = Arc::new(managed_client(&fake, 600));
    // Slow the Get down so that every caller arrives while it is in flight.
    fake.inject(Fault::Delay(Duration::from_millis(300)));
    let tokens = concurrent_access(&client, 64);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    let stats = fake.stats();
    assert_eq!((stats.get_requests, stats.refresh_requests), (1, 0));
    let counters = client.counters();
    assert_eq!(counters.get_requests, 1);
    assert_eq!(counters.waits + counters.cache_hits, 63, "{counters:?}");
    assert!(
        counters.waits > 0,
        "callers waited for the one Get: {counters:?}"
    );

    for _ in 0..1000 {
        assert_eq!(client.access_token().unwrap(), tokens[0]);
    }
    assert_eq!(fake.stats().requests, 1, "fresh token: no network");
}

#[test]
fn exactly_one_refresh_when_the_margin_is_reached_under_concurrency() {
    let fake = fake_lifetime(3);
    // Margin 2 s (+ at most 10%): refresh due 0.8-1.0 s after the Get.
    let client = Arc::new(managed_client(&fake, 2));
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fake.inject(Fault::Delay(Duration::from_millis(300)));
    let tokens = concurrent_access(&client, 64);
    // The token is still valid: every caller but the one refreshing it gets
    // it at once; the refreshing caller gets the new one.
    let refreshed: Vec<&String> = tokens.iter().filter(|t| **t != first).collect();
    assert_eq!(refreshed.len(), 1, "{tokens:?}");
    assert_eq!(client.access_token().unwrap(), *refreshed[0]);
    let stats = fake.stats();
    assert_eq!((stats.get_requests, stats.refresh_requests), (1, 1));
    assert_eq!(stats.status_count(0), 2);
}

#[test]
fn refresh_refused_as_expired_falls_back_to_get() {
    let fake = fake_lifetime(3);
    let client = managed_client(&fake, 2);
    let first = client.access_token().unwrap();
    fake.expire_all_tokens(); // the gateway forgot the token's lifetime
    std::thread::sleep(Duration::from_millis(1100));
    let second = client.access_token().unwrap();
    assert_ne!(second, first);
    let stats = fake.stats();
    assert_eq!((stats.get_requests, stats.refresh_requests), (2, 1));
    assert_eq!(stats.status_count(1203), 1);
}

#[test]
fn old_token_served_through_an_outage_then_an_error_after_expiry() {
    let fake = fake_lifetime(3);
    let mut builder = builder(&fake.url());
    builder.refresh_margin(Duration::from_secs(2));
    builder.retries(1, Duration::from_millis(10)).unwrap();
    let client = builder.build().unwrap();
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    fake.inject_times(Fault::ServerErrorHtml, 1000);
    assert_eq!(
        client.access_token().unwrap(),
        first,
        "old token while valid"
    );
    let after_outage = fake.stats();
    assert_eq!(
        after_outage.refresh_requests, 2,
        "one attempt and one retry"
    );
    for _ in 0..100 {
        assert_eq!(client.access_token().unwrap(), first);
    }
    assert_eq!(
        fake.stats().requests,
        after_outage.requests,
        "no retry on every call"
    );
    assert_eq!(client.counters().failures, 1);

    std::thread::sleep(Duration::from_millis(2100)); // past the 3 s lifetime
    let e = client.access_token().unwrap_err();
    assert_eq!(
        (e.kind(), e.http_status()),
        (ErrorKind::HttpStatus, 500),
        "{e}"
    );
    assert_eq!(
        fake.stats().get_requests,
        1 + 2,
        "expired: Get, retried once"
    );

    fake.clear_faults();
    // Within a second of a failure callers share its error without a request.
    assert_eq!(client.access_token().unwrap_err().http_status(), 500);
    std::thread::sleep(Duration::from_millis(1200)); // the coarse clock ticks every few ms
    assert_ne!(
        client.access_token().unwrap(),
        first,
        "recovers when the gateway does"
    );
}

#[test]
fn retries_are_counted_at_the_gateway() {
    let fake = fake();
    let client = managed_client(&fake, 600);
    fake.inject_times(Fault::ServerErrorHtml, 2);
    client.access_token().expect("third attempt succeeds");
    assert_eq!(fake.stats().get_requests, 3);
    assert_eq!(client.counters().retries, 2);

    // A replay (1001) is retried once, at once, whatever max_retries says.
    let fake = support::fake();
    let mut builder = builder(&fake.url());
    builder.retries(0, Duration::ZERO).unwrap();
    let client = builder.build().unwrap();
    fake.inject_times(Fault::GatewayStatus(1001), 2);
    let e = client.access_token().unwrap_err();
    assert_eq!(e.service_status(), 1001);
    assert_eq!(fake.stats().get_requests, 2);

    // A wrong secret (1003) is never retried.
    let client = enos_token::ClientBuilder::new(&fake.url(), APP_KEY, "wrong")
        .unwrap()
        .build()
        .unwrap();
    let before = fake.stats().get_requests;
    assert_eq!(client.access_token().unwrap_err().service_status(), 1003);
    assert_eq!(fake.stats().get_requests, before + 1);
}

#[test]
fn retries_stay_inside_the_overall_timeout() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder
        .timeouts(Duration::from_millis(500), Duration::from_millis(800))
        .unwrap();
    builder.retries(10, Duration::from_millis(300)).unwrap();
    let client = builder.build().unwrap();
    fake.inject_times(Fault::DropConnection, 100);
    let started = Instant::now();
    let e = client.access_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_margin_longer_than_the_lifetime_does_not_storm() {
    let fake = fake_lifetime(2);
    let client = managed_client(&fake, 600); // default margin, 2 s tokens
    let until = Instant::now() + Duration::from_millis(2500);
    let mut calls = 0;
    while Instant::now() < until {
        client.access_token().unwrap();
        calls += 1;
    }
    let stats = fake.stats();
    assert!(calls > 1000);
    assert!(
        stats.get_requests + stats.refresh_requests <= 4,
        "at most one fetch per half-lifetime: {stats:?}"
    );
}

#[test]
fn invalidate_forgets_only_the_rejected_token() {
    let fake = fake();
    let client = managed_client(&fake, 600);
    let first = client.access_token().unwrap();
    assert!(
        !client.invalidate(Some("some-older-token")),
        "a newer token is kept"
    );
    assert_eq!(client.access_token().unwrap(), first);
    assert_eq!(fake.stats().get_requests, 1);
    assert!(client.invalidate(Some(&first)));
    client.access_token().unwrap();
    assert_eq!(fake.stats().get_requests, 2);
    assert!(client.invalidate(None));
    client.access_token().unwrap();
    assert_eq!(fake.stats().get_requests, 3);
}

#[test]
fn raw_calls_update_the_managed_token() {
    let fake = fake();
    let client = managed_client(&fake, 600);
    let first = client.access_token().unwrap();
    let refreshed = client.refresh_token(&first).unwrap();
    assert_eq!(client.access_token().unwrap(), refreshed.access_token);
    assert_eq!(fake.stats().requests, 2);
}

#[test]
fn auth_headers_pass_the_fake_echo_api() {
    let fake = fake();
    let client = managed_client(&fake, 600);
    let body = br#"{"assetIds":["a"]}"#;
    let headers = client.auth_headers("b=2&a=x+y", body).unwrap();
    let lines: Vec<&str> = headers.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{headers:?}");
    assert!(lines[0].starts_with("apim-accesstoken: "));
    assert!(lines[1].starts_with("apim-signature: "));
    assert!(lines[2].starts_with("apim-timestamp: "));
    assert_eq!(lines[3], "");

    let request = |query: &str, body: &[u8], headers: &str| {
        let mut raw = format!("POST /fake/v1/echo?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n", body.len()).into_bytes();
        raw.extend_from_slice(body);
        let mut stream = std::net::TcpStream::connect(fake.address()).unwrap();
        use std::io::{Read, Write};
        stream.write_all(&raw).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = request("b=2&a=x+y", body, &headers);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("signature ok"), "{answer}");
    let tampered = request("b=3&a=x+y", body, &headers);
    assert!(tampered.starts_with("HTTP/1.1 401"), "{tampered}");
    assert!(tampered.contains("signature mismatch"), "{tampered}");
    let stats = fake.stats();
    assert_eq!((stats.echo_accepted, stats.echo_rejected), (1, 1));
}

#[test]
fn log_messages_never_hold_tokens_or_secrets() {
    let fake = fake_lifetime(3);
    let messages = Arc::new(Mutex::new(Vec::new()));
    let sink = messages.clone();
    let mut builder = builder(&fake.url());
    builder.refresh_margin(Duration::from_secs(2));
    builder.retries(1, Duration::from_millis(10)).unwrap();
    builder.logger(Some(Logger::new(move |level, message| {
        sink.lock().unwrap().push((level, message.to_string()))
    })));
    let client = builder.build().unwrap();
    let token = client.access_token().unwrap();
    let headers = client.auth_headers("", b"").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fake.inject_times(Fault::ServerErrorHtml, 2);
    client.access_token().unwrap(); // falls back to the cached token
    let messages = messages.lock().unwrap();
    let levels: Vec<LogLevel> = messages.iter().map(|(l, _)| *l).collect();
    assert!(
        levels.contains(&LogLevel::Info) && levels.contains(&LogLevel::Warn),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(_, m)| m.starts_with("Get succeeded: token fk00…(")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(_, m)| m.contains("serving the cached token")),
        "{messages:?}"
    );
    let signature = headers
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("apim-signature: ");
    for (_, message) in messages.iter() {
        assert!(!message.contains(&token), "{message}");
        assert!(!message.contains(APP_SECRET), "{message}");
        assert!(!message.contains(signature), "{message}");
    }
}

unsafe extern "C" fn collect(
    level: enos_token::ffi::enos_log_level,
    message: *const c_char,
    user_data: *mut c_void,
) {
    let sink = unsafe { &*(user_data as *const Mutex<Vec<(i32, String)>>) };
    let message = unsafe { CStr::from_ptr(message) }
        .to_str()
        .unwrap()
        .to_string();
    sink.lock().unwrap().push((level as i32, message));
}

#[test]
fn managed_token_through_the_c_abi() {
    use enos_token::ffi::builder::*;
    use enos_token::ffi::client::*;
    use enos_token::ffi::enos_status::*;
    use enos_token::ffi::managed::*;
    use enos_token::ffi::signing::enos_client_auth_headers;
    use enos_token::ffi::strings::enos_string_free;

    let fake = fake();
    let (url, key, secret) = (
        CString::new(fake.url()).unwrap(),
        CString::new(APP_KEY).unwrap(),
        CString::new(APP_SECRET).unwrap(),
    );
    let sink: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
    let mut builder = ptr::null_mut();
    let mut client = ptr::null_mut();
    unsafe {
        assert_eq!(
            enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
            ENOS_OK
        );
        assert_eq!(
            enos_client_builder_set_refresh_margin_s(builder, 60),
            ENOS_OK
        );
        assert_eq!(enos_client_builder_set_retries(builder, 1, 5), ENOS_OK);
        assert_eq!(
            enos_client_builder_set_retries(builder, 101, 5),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_retries(ptr::null_mut(), 1, 5),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_refresh_margin_s(ptr::null_mut(), 1),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_log_callback(ptr::null_mut(), None, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_builder_set_log_callback(
                builder,
                Some(collect),
                &sink as *const _ as *mut c_void
            ),
            ENOS_OK
        );
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);

        let mut token: *mut c_char = ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            enos_client_access_token(ptr::null(), &mut token),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert!(token.is_null());
        assert_eq!(
            enos_client_access_token(client, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(enos_client_access_token(client, &mut token), ENOS_OK);
        let first = CStr::from_ptr(token).to_owned();
        enos_string_free(token);
        for _ in 0..10 {
            assert_eq!(enos_client_access_token(client, &mut token), ENOS_OK);
            assert_eq!(CStr::from_ptr(token), first.as_c_str());
            enos_string_free(token);
        }

        let mut headers: *mut c_char = ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            enos_client_auth_headers(ptr::null(), ptr::null(), ptr::null(), 0, &mut headers),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert!(headers.is_null());
        assert_eq!(
            enos_client_auth_headers(client, ptr::null(), ptr::null(), 3, &mut headers),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, c"\xff".as_ptr(), ptr::null(), 0, &mut headers),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, ptr::null(), ptr::null(), 0, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_auth_headers(client, c"a=1".as_ptr(), ptr::null(), 0, &mut headers),
            ENOS_OK
        );
        let text = CStr::from_ptr(headers).to_str().unwrap().to_string();
        enos_string_free(headers);
        assert!(
            text.starts_with(&format!(
                "apim-accesstoken: {}\r\n",
                first.to_str().unwrap()
            )),
            "{text}"
        );

        assert_eq!(
            enos_client_invalidate(ptr::null(), ptr::null()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_invalidate(client, c"\xff".as_ptr()),
            ENOS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(enos_client_invalidate(client, first.as_ptr()), ENOS_OK);

        let mut counters = enos_client_counters {
            struct_size: std::mem::size_of::<enos_client_counters>(),
            ..Default::default()
        };
        assert_eq!(
            enos_client_get_counters(ptr::null(), &mut counters),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            enos_client_get_counters(client, ptr::null_mut()),
            ENOS_ERR_NULL_ARGUMENT
        );
        assert_eq!(enos_client_get_counters(client, &mut counters), ENOS_OK);
        assert_eq!(counters.get_requests, 1);
        assert_eq!(counters.cache_hits, 11, "10 reads and the auth headers");
        assert_eq!(counters.dns_lookups, 0);
        enos_client_free(client);
    }
    let messages = sink.lock().unwrap();
    assert!(
        messages
            .iter()
            .any(|(level, m)| *level == 3 && m.starts_with("Get succeeded")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(level, m)| *level == 3 && m.contains("invalidated")),
        "{messages:?}"
    );
}

#[test]
fn counters_fill_only_what_the_callers_struct_holds() {
    use enos_token::ffi::builder::*;
    use enos_token::ffi::client::*;
    use enos_token::ffi::enos_client_counters;
    use enos_token::ffi::enos_status::*;
    use enos_token::ffi::managed::enos_client_get_counters;

    let fake = fake();
    let url = CString::new(fake.url()).unwrap();
    let (key, secret) = (
        CString::new(APP_KEY).unwrap(),
        CString::new(APP_SECRET).unwrap(),
    );
    let (mut builder, mut client) = (ptr::null_mut(), ptr::null_mut());
    unsafe {
        enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder);
        enos_client_builder_set_proxy(builder, c"".as_ptr());
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    let mut token = ptr::null_mut();
    unsafe { enos_client_get_token(client, &mut token, ptr::null_mut()) };
    unsafe { enos_token::ffi::strings::enos_string_free(token) };
    let size = std::mem::size_of::<enos_client_counters>();
    let first_version: usize = 64;

    // An older program's struct, followed by memory the library must not touch.
    let mut memory = [0xAAu8; 128];
    memory[..8].copy_from_slice(&first_version.to_ne_bytes());
    let status = unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) };
    assert_eq!(status, ENOS_OK);
    assert_eq!(
        u64::from_ne_bytes(memory[8..16].try_into().unwrap()),
        1,
        "one Get"
    );
    assert!(
        memory[first_version..].iter().all(|b| *b == 0xAA),
        "nothing past its end"
    );

    // A newer program's larger struct: the fields this library does not know are 0.
    let newer = size + 16;
    memory = [0xAAu8; 128];
    memory[..8].copy_from_slice(&newer.to_ne_bytes());
    assert_eq!(
        unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) },
        ENOS_OK
    );
    assert!(memory[size..newer].iter().all(|b| *b == 0));
    assert!(memory[newer..].iter().all(|b| *b == 0xAA));
    assert_eq!(
        usize::from_ne_bytes(memory[..8].try_into().unwrap()),
        newer,
        "struct_size kept"
    );

    // Not set: refused, nothing written.
    for bad in [0usize, 63, 1 << 20] {
        memory = [0xAAu8; 128];
        memory[..8].copy_from_slice(&bad.to_ne_bytes());
        let status = unsafe { enos_client_get_counters(client, memory.as_mut_ptr().cast()) };
        assert_eq!(status, ENOS_ERR_INVALID_ARGUMENT, "struct_size {bad}");
        assert!(memory[8..].iter().all(|b| *b == 0xAA));
    }
    unsafe { enos_client_free(client) };
}
