//! The managed token against the fake gateway with short token lifetimes and
//! injected faults: single flight, refresh at the margin, fallback to Get,
//! serving the old token through an outage, retries, no refresh storms, and
//! signed API calls checked by the fake's echo API.

mod support;

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
    // Margin 2 s (less 10-20% for a token got): due 1.2-1.4 s after the Get.
    let client = Arc::new(managed_client(&fake, 2));
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
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
    std::thread::sleep(Duration::from_millis(1500));
    let second = client.access_token().unwrap();
    assert_ne!(second, first);
    let stats = fake.stats();
    assert_eq!((stats.get_requests, stats.refresh_requests), (2, 1));
    assert_eq!(stats.status_count(1203), 1);
}

#[test]
fn a_refresh_whose_answer_is_lost_is_never_resent_and_a_get_follows() {
    let fake = fake_lifetime(3);
    let client = managed_client(&fake, 2); // two retries
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // due, on a kept-alive connection
    // The gateway refreshes the token, then the connection dies unanswered.
    fake.inject(Fault::ProcessThenDrop);
    let second = client.access_token().unwrap();
    assert_ne!(second, first, "the refreshed token, learnt through a Get");
    let stats = fake.stats();
    assert_eq!(
        (stats.refresh_requests, stats.get_requests),
        (1, 2),
        "one Refresh on the wire, whatever the retries"
    );
    assert_eq!(
        stats.status_count(1204),
        0,
        "never sent again with the retired token"
    );
}

#[test]
fn a_raw_refresh_whose_answer_is_lost_is_told_by_a_get() {
    let fake = fake();
    let client = client(&fake.url());
    let first = client.get_token().unwrap().access_token.clone(); // keeps a connection alive
    // The gateway refreshes, then the connection dies unanswered: the Get
    // finds a new token, which is the Refresh's result.
    fake.inject(Fault::ProcessThenDrop);
    let refreshed = client.refresh_token(&first).unwrap().access_token.clone();
    assert_ne!(refreshed, first, "the Refresh had happened");
    assert_eq!(
        client.access_token().unwrap(),
        refreshed,
        "and it is the managed token"
    );
    let stats = fake.stats();
    assert_eq!(
        (stats.refresh_requests, stats.get_requests),
        (1, 2),
        "sent once"
    );

    // The connection dies before the gateway read it: the Get returns the
    // same token, so the Refresh did not happen and is sent again.
    fake.inject(Fault::DropConnection);
    let again = client
        .refresh_token(&refreshed)
        .unwrap()
        .access_token
        .clone();
    assert_ne!(again, refreshed);
    let stats = fake.stats();
    assert_eq!((stats.refresh_requests, stats.get_requests), (3, 3));
    assert_eq!(
        stats.status_count(1204),
        0,
        "never sent for a retired token"
    );

    // Lost, and the Get fails too: the error says what may have happened,
    // and the managed token, which the Refresh may have retired, is dropped.
    fake.inject_times(Fault::DropConnection, 2);
    let error = client.refresh_token(&again).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(
        error.message().contains("may have processed the request"),
        "{error}"
    );
    let gets = fake.stats().get_requests;
    client.access_token().unwrap();
    assert_eq!(
        fake.stats().get_requests,
        gets + 1,
        "the managed token was dropped"
    );
}

#[test]
fn a_managed_refresh_lost_before_the_gateway_read_it_is_sent_again() {
    let fake = fake_lifetime(3);
    let client = managed_client(&fake, 2);
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // due, on a kept-alive connection
    fake.inject(Fault::DropConnection);
    let second = client.access_token().unwrap();
    assert_ne!(second, first, "refreshed after all");
    let stats = fake.stats();
    assert_eq!(
        (stats.refresh_requests, stats.get_requests),
        (2, 2),
        "the Get told the Refresh had not happened"
    );
    assert_eq!(stats.status_count(1204), 0);
}

#[test]
fn old_token_served_through_an_outage_then_an_error_after_expiry() {
    let fake = fake_lifetime(3);
    let mut builder = builder(&fake.url());
    builder.refresh_margin(Duration::from_secs(2));
    builder.retries(1, Duration::from_millis(10)).unwrap();
    let client = builder.build().unwrap();
    let first = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1500));

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

    // A replay (1001) is retried 3 times, whatever max_retries says.
    let fake = support::fake();
    let mut builder = builder(&fake.url());
    builder.retries(0, Duration::ZERO).unwrap();
    let client = builder.build().unwrap();
    fake.inject_times(Fault::GatewayStatus(1001), 4);
    let e = client.access_token().unwrap_err();
    assert_eq!(e.service_status(), 1001);
    assert_eq!(fake.stats().get_requests, 4);

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
        let mut raw = format!("POST /fake/v1/echo?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n", body.len()).into_bytes();
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
    std::thread::sleep(Duration::from_millis(1500));
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
