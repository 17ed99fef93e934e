//! Rate limits and outages against the fake gateway and raw servers, over
//! real sockets: what is retried (429 any method; 502/503/504 and lost
//! answers only for idempotent methods), how long the library waits
//! (jittered backoff, `Retry-After` in seconds or as a date, never past the
//! deadline), the retry budget that keeps an outage from being multiplied,
//! and what the caller sees (`attempts`, counters, log lines).

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enos_token::fake::TokenRefusal;
use enos_token::{ErrorKind, LogLevel, Logger};
use support::*;

const ECHO: &str = "/fake/v1/echo?orgId=o1";

fn client_with_retries(url: &str, retries: u32, base_ms: u64) -> enos_token::Client {
    let mut builder = builder(url);
    builder
        .retries(retries, Duration::from_millis(base_ms))
        .unwrap();
    builder.build().unwrap()
}

#[test]
fn a_get_answered_503_twice_then_200_returns_200_after_jittered_waits() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 2, 200);
    client.access_token().unwrap();
    fake.set_outage(503, None, Some(2), false, None);
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 3));
    let calls = fake.api_calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    // Full jitter: the first wait is under 200 ms, the second under 400 ms
    // (plus what a loopback call takes).
    let first_wait = calls[1].at_ms - calls[0].at_ms;
    let second_wait = calls[2].at_ms - calls[1].at_ms;
    assert!(first_wait < 200 + 50, "{first_wait} ms");
    assert!(second_wait < 400 + 50, "{second_wait} ms");
    let counters = client.counters();
    assert_eq!((counters.api_retries, counters.api_retries_denied), (2, 0));
}

#[test]
fn a_post_answered_503_is_returned_at_once_and_processed_exactly_once() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 2, 200);
    client.access_token().unwrap();
    fake.set_outage(503, None, Some(1), true, None);
    let started = Instant::now();
    let response = client.request("POST", ECHO, None, br#"{"k":"v"}"#).unwrap();
    assert_eq!((response.status(), response.attempts()), (503, 1));
    assert!(started.elapsed() < Duration::from_millis(150));
    assert_eq!(fake.stats().processed, 1, "the service did act on it");
    assert_eq!(fake.api_calls().len(), 1, "never sent again");
    assert_eq!(client.counters().api_retries, 0);
}

#[test]
fn a_post_answered_429_is_retried_because_the_limiter_refused_it_unprocessed() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 2, 200);
    client.access_token().unwrap();
    fake.set_rate_limit(Some((5.0, 1.0)));
    client.request("POST", ECHO, None, b"{}").unwrap(); // the burst
    let started = Instant::now();
    let response = client.request("POST", ECHO, None, b"{}").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    // Retry-After: 1 (the next token comes in 200 ms; whole seconds only).
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1400),
        "{waited:?}"
    );
    let stats = fake.stats();
    assert_eq!((stats.rate_limited, stats.processed), (1, 2));
}

#[test]
fn retry_after_as_a_date_is_honoured() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 2, 200);
    client.access_token().unwrap();
    // The gateway's clock is the fake's; a date 2 s ahead.
    let in_two_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let date = http_date(in_two_seconds);
    fake.set_outage(503, None, Some(1), false, Some(&date));
    let started = Instant::now();
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "{waited:?} (a date has whole seconds: 1-2 s)"
    );
}

/// An IMF-fixdate for `unix_seconds`.
fn http_date(unix_seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds / 86_400;
    let seconds = unix_seconds % 86_400;
    // Civil from days (H. Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[test]
fn a_wait_past_the_deadline_is_not_taken_and_is_counted_as_denied() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder
        .timeouts(Duration::from_secs(3), Duration::from_secs(3))
        .unwrap();
    let client = builder.build().unwrap();
    client.access_token().unwrap();
    fake.set_outage(503, None, Some(1), false, Some("120"));
    let started = Instant::now();
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (503, 1));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no sleep to time out"
    );
    let counters = client.counters();
    assert_eq!((counters.api_retries, counters.api_retries_denied), (0, 1));
}

#[test]
fn zero_retries_sends_once() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 0, 200);
    client.access_token().unwrap();
    fake.set_outage(503, None, Some(5), false, None);
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (503, 1));
    assert_eq!(fake.api_calls().len(), 1);
}

#[test]
fn an_outage_costs_the_gateway_at_most_the_calls_plus_the_retry_budget() {
    let fake = fake();
    let client = client_with_retries(&fake.url(), 2, 1);
    client.access_token().unwrap();
    fake.set_outage(503, Some(Duration::from_secs(600)), None, false, None);
    for _ in 0..300 {
        assert_eq!(
            client.request("GET", ECHO, None, b"").unwrap().status(),
            503
        );
    }
    let wire = fake.api_calls().len();
    // 300 calls; 100 retries of 5 from a bucket of 500; unlimited would be 900.
    assert_eq!(wire, 400, "{wire}");
    let counters = client.counters();
    assert_eq!(counters.api_retries, 100, "50 calls retried twice");
    assert_eq!(counters.api_retries_denied, 250, "the other 250: once each");
    // Calls that need no retry refill it: after the outage, retries resume.
    fake.set_outage(0, None, None, false, None);
    for _ in 0..10 {
        assert_eq!(
            client.request("GET", ECHO, None, b"").unwrap().status(),
            200
        );
    }
    fake.set_outage(503, None, Some(1), false, None);
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
}

#[test]
fn a_refused_token_is_renewed_not_retried() {
    let fake = fake();
    fake.set_token_refusal(TokenRefusal::Http401);
    let client = client_with_retries(&fake.url(), 2, 200);
    let old = client.access_token().unwrap();
    support::client(&fake.url()).refresh_token(&old).unwrap();
    let response = client.request("GET", ECHO, None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    let counters = client.counters();
    assert_eq!((counters.token_renewals, counters.api_retries), (1, 0));
}

/// A server that answers token requests, drops the first API request after
/// reading it, and answers the others; every connection is closed after one
/// request (so no resend is a stale kept-alive connection's).
fn dropping_server(api_requests: Arc<AtomicUsize>) -> RawServer {
    RawServer::start(move |mut stream| {
        let request = read_request(&mut stream);
        if request.contains("/token/get") {
            let body = token_json("tok-for-retries-0001", 7200);
            let _ = stream.write_all(&http_answer("200 OK", "application/json", body.as_bytes()));
            return;
        }
        if api_requests.fetch_add(1, Ordering::SeqCst) == 0 {
            return; // read, then closed without an answer
        }
        let _ = stream.write_all(&http_answer("200 OK", "application/json", b"{\"code\":0}"));
    })
}

#[test]
fn a_lost_answer_is_retried_for_a_get_and_never_for_a_post() {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = dropping_server(seen.clone());
    let client = client_with_retries(&server.url(), 2, 10);
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    assert_eq!(seen.load(Ordering::SeqCst), 2);

    let seen = Arc::new(AtomicUsize::new(0));
    let server = dropping_server(seen.clone());
    let client = client_with_retries(&server.url(), 2, 10);
    let error = client.request("POST", "/api/x", None, b"{}").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.message().contains("may have processed"), "{error}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "a POST is never sent again");
}

#[test]
fn a_connection_that_cannot_be_opened_is_retried_even_for_a_post() {
    // A gateway that serves the token, then restarts: for 300 ms nothing
    // listens on its port (connections are refused: nothing is sent).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&mut stream);
        // Nothing listens from before the answer: a client quick to open
        // its next connection must not find it in the old backlog.
        drop(listener);
        let body = token_json("tok-for-restart-0001", 7200);
        stream
            .write_all(&http_answer("200 OK", "application/json", body.as_bytes()))
            .unwrap();
        drop(stream);
        std::thread::sleep(Duration::from_millis(300));
        let listener = std::net::TcpListener::bind(address).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&mut stream);
        counted.fetch_add(1, Ordering::SeqCst);
        stream
            .write_all(&http_answer("200 OK", "application/json", b"{\"code\":0}"))
            .unwrap();
    });
    let client = client_with_retries(&format!("http://{address}"), 8, 200);
    let response = client.request("POST", "/api/x", None, b"{}").unwrap();
    server.join().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.attempts() >= 2, "{}", response.attempts());
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "sent once: the refused ones never left"
    );
    assert_eq!(
        client.counters().api_retries,
        u64::from(response.attempts() - 1)
    );
}

#[test]
fn each_retry_logs_one_info_line_and_the_call_one_debug_line_with_the_request_id() {
    let fake = fake();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    let mut builder = builder(&fake.url());
    builder.retries(2, Duration::from_millis(5)).unwrap();
    builder.logger(Some(Logger::new(move |level, line| {
        seen.lock().unwrap().push((level, line.to_string()))
    })));
    let client = builder.build().unwrap();
    client.access_token().unwrap();
    fake.set_outage(502, None, Some(1), false, None);
    let path = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=secret-org";
    let mut request = enos_token::Request::new("PUT", path).unwrap();
    request
        .part("enos-message", Some("application/json"), b"{}".to_vec())
        .unwrap();
    let response = client.send(&request).unwrap();
    assert_eq!(response.attempts(), 2);
    let request_id = response.request_id().expect("an EnOS envelope").to_string();
    assert!(request_id.starts_with("fake-"), "{request_id}");
    let lines = lines.lock().unwrap();
    let info: Vec<_> = lines
        .iter()
        .filter(|(l, line)| *l == LogLevel::Info && line.contains("HTTP 502"))
        .collect();
    assert_eq!(info.len(), 1, "{lines:?}");
    assert!(
        info[0].1.starts_with(
            "PUT /connect-service/v2.1/integration?action&orgId: HTTP 502; retrying in "
        ) && info[0].1.ends_with(" ms (retry 1 of 2)"),
        "{lines:?}"
    );
    let debug: Vec<_> = lines
        .iter()
        .filter(|(l, _)| *l == LogLevel::Debug)
        .collect();
    assert!(
        debug
            .last()
            .unwrap()
            .1
            .ends_with(&format!("(2 attempts, requestId {request_id})")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|(_, l)| !l.contains("secret-org")));
}
