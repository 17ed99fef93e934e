//! Get and Refresh through the Rust API against real HTTP peers on loopback:
//! the fake gateway, and raw TCP servers where the fake cannot misbehave
//! enough.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use enos_token::AppSecret;
use enos_token::fake::Fault;
use enos_token::{ErrorKind, get_access_token, refresh_access_token};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::*;

/// Vectors computed outside the code under test, with Python's hashlib:
/// `hashlib.sha256((key + str(ts) + secret).encode()).hexdigest()`.
#[test]
fn encryption_matches_independent_vectors() {
    let cases = [
        (
            "test-app-key",
            1572574909697,
            "test-app-secret-8d1f",
            "1ac51cea8a50057d135f0f1bae55e08301d2badff4a1eeff05601bc584bc27a0",
        ),
        (
            "5acb82e7-a11e-4300-9164-c8b20b638e8b",
            1572574909697,
            "my-secret",
            "78b41fca9862a3800dd9daace05f0c4f813e6bd68ba8279e0bba9837f4c59b08",
        ),
        (
            "ключ",
            1,
            "秘密",
            "5eedaedff8b628107f810af1e4a943f21639c2d45b262e18d334b88be495fbbc",
        ),
    ];
    for (key, timestamp, secret, expected) in cases {
        let secret = AppSecret::new(secret);
        assert_eq!(
            enos_token::signing::encryption(key, timestamp, &secret),
            expected
        );
    }
}

#[test]
fn get_then_refresh_round_trip() {
    let fake = fake();
    let client = client(&fake.url());
    let first = client.get_token().unwrap();
    assert_eq!(first.expire_s, 7200);
    assert!(!first.access_token.is_empty());
    let again = client.get_token().unwrap();
    assert_eq!(
        again.access_token, first.access_token,
        "Get returns the current token"
    );
    let refreshed = client.refresh_token(&first.access_token).unwrap();
    assert_ne!(refreshed.access_token, first.access_token);
    assert_eq!(refreshed.expire_s, 7200);
    let stats = fake.stats();
    assert_eq!((stats.get_requests, stats.refresh_requests), (2, 1));
    assert_eq!(stats.status_count(0), 3);
}

fn check_request_body(body: &[u8], refresh_of: Option<&str>) {
    let body: Value = serde_json::from_slice(body).expect("JSON body");
    let object = body.as_object().unwrap();
    let expected_fields = if refresh_of.is_some() { 4 } else { 3 };
    assert_eq!(object.len(), expected_fields, "{body}");
    assert_eq!(object["appKey"], APP_KEY);
    let timestamp = object["timestamp"]
        .as_i64()
        .expect("timestamp is a JSON integer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - timestamp).abs() < 60_000, "timestamp in ms near now");
    let expected = hex::encode(Sha256::digest(format!("{APP_KEY}{timestamp}{APP_SECRET}")));
    assert_eq!(object["encryption"], expected.as_str());
    match refresh_of {
        Some(token) => assert_eq!(object["accessToken"], token),
        None => assert!(!object.contains_key("accessToken")),
    }
}

#[test]
fn a_path_prefix_the_gateway_does_not_have_is_a_404_naming_the_url() {
    let fake = fake(); // no prefix, as a gateway without one
    let url = format!("{}/wrong/prefix", fake.url());
    let error = client(&url).get_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::HttpStatus, "{error}");
    assert_eq!(error.http_status(), 404);
    assert!(
        error
            .message()
            .contains(&format!("{url}/apim-token-service/v2.0/token/get")),
        "{error}"
    );
}

#[test]
fn exact_request_with_and_without_prefix_and_trailing_slash() {
    let plain = fake();
    let behind_a_prefix = fake_with(|config| config.path_prefix = "/gw/enos".into());
    for (suffix, prefix) in [
        ("", ""),
        ("/", ""),
        ("/gw/enos", "/gw/enos"),
        ("/gw/enos/", "/gw/enos"),
    ] {
        let fake = if prefix.is_empty() {
            &plain
        } else {
            &behind_a_prefix
        };
        let client = client(&format!("{}{suffix}", fake.url()));
        let token = client.get_token().unwrap();
        client.refresh_token(&token.access_token).unwrap();
        let recent = fake.recent_requests();
        let [.., get, refresh] = recent.as_slice() else {
            panic!("two requests recorded")
        };
        assert_eq!(get.method, "POST");
        assert_eq!(
            get.path,
            format!("{prefix}/apim-token-service/v2.0/token/get")
        );
        assert_eq!(
            refresh.path,
            format!("{prefix}/apim-token-service/v2.0/token/refresh")
        );
        for request in [get, refresh] {
            assert_eq!(request.query, "");
            assert_eq!(
                request.header("content-type"),
                Some("application/json;charset=UTF-8")
            );
            assert_eq!(
                request.header("accept-encoding"),
                None,
                "no compression asked for"
            );
            assert_eq!(
                request.header("content-length"),
                Some(request.body.len().to_string().as_str())
            );
        }
        check_request_body(&get.body, None);
        check_request_body(&refresh.body, Some(&token.access_token));
    }
}

#[test]
fn real_gateway_errors_from_the_fake() {
    let fake = fake();
    let url = fake.url();

    let e = enos_token::ClientBuilder::new(&url, "no-such-app", "x")
        .unwrap()
        .build()
        .unwrap()
        .get_token()
        .unwrap_err();
    assert_eq!((e.kind(), e.service_status()), (ErrorKind::Service, 1002));
    assert!(
        e.message()
            .starts_with("gateway status 1002: app key does not exist"),
        "{e}"
    );

    let wrong_secret = "wrong-secret-value";
    let e = enos_token::ClientBuilder::new(&url, APP_KEY, wrong_secret)
        .unwrap()
        .build()
        .unwrap()
        .get_token()
        .unwrap_err();
    assert_eq!((e.kind(), e.service_status()), (ErrorKind::Service, 1003));
    assert!(!e.message().contains(wrong_secret));

    let client = client(&url);
    let e = client.refresh_token("never-issued").unwrap_err();
    assert_eq!((e.kind(), e.service_status()), (ErrorKind::Service, 1204));

    let token = client.get_token().unwrap();
    fake.expire_all_tokens();
    let e = client.refresh_token(&token.access_token).unwrap_err();
    assert_eq!((e.kind(), e.service_status()), (ErrorKind::Service, 1203));
    assert!(
        e.message()
            .starts_with("gateway status 1203: token expired"),
        "{e}"
    );
    assert_eq!(e.http_status(), 200);
}

#[test]
fn every_documented_gateway_status_is_reported() {
    let fake = fake();
    let client = client(&fake.url());
    for code in [1001, 1002, 1003, 1004, 1005, 1202, 1203, 1204, 4321] {
        // A 1001 is sent again three times (the next test): four make it stay.
        let times = if code == 1001 { 4 } else { 1 };
        fake.inject_times(Fault::GatewayStatus(code), times);
        let e = client.get_token().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Service);
        assert_eq!(e.service_status(), code);
        assert!(
            e.message().starts_with(&format!("gateway status {code}")),
            "{e}"
        );
    }
    // The gateway's envelope wins over a non-2xx HTTP status.
    fake.inject(Fault::Raw {
        status: 400,
        content_type: "application/json",
        body: br#"{"status":1004,"msg":"invalid parameter"}"#.to_vec(),
    });
    let e = client.get_token().unwrap_err();
    assert_eq!(
        (e.kind(), e.service_status(), e.http_status()),
        (ErrorKind::Service, 1004, 400)
    );
}

#[test]
fn a_get_answered_1001_is_sent_again_and_a_refresh_never() {
    // 1001: another process of the app sent the same timestamp; the gateway
    // refused this request unprocessed. A Get changes nothing: sent again
    // with a new timestamp. A Refresh is never sent behind the caller's back.
    let fake = fake();
    let client = client(&fake.url());
    fake.inject_times(Fault::GatewayStatus(1001), 2);
    let token = client.get_token().unwrap();
    let counters = client.counters();
    assert_eq!((counters.get_requests, counters.retries), (3, 2));
    fake.inject(Fault::GatewayStatus(1001));
    let error = client.refresh_token(&token.access_token).unwrap_err();
    assert_eq!(error.service_status(), 1001, "{error}");
    assert_eq!(client.counters().refresh_requests, 1);
    fake.inject_times(Fault::GatewayStatus(1001), 2);
    get_access_token(&fake.url(), APP_KEY, APP_SECRET).expect("the one-shot Get too");
}

#[test]
fn http_errors_and_redirects() {
    let fake = fake();
    let client = client(&fake.url());
    fake.inject(Fault::ServerErrorHtml);
    let e = client.get_token().unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 500));
    assert!(e.message().contains("HTTP status 500"), "{e}");
    fake.inject(Fault::Redirect);
    let e = client.get_token().unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 302));
    assert_eq!(fake.stats().requests, 2, "the redirect was not followed");
    assert!(client.get_token().is_ok(), "the client recovers");
}

#[test]
fn unusable_bodies() {
    let fake = fake();
    let client = client(&fake.url());
    fake.inject(Fault::NotJson);
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.message().contains("not JSON"), "{e}");

    let limit = 1024 * 1024;
    fake.inject(Fault::Oversized(limit));
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(
        e.message().contains("no \"data\" object"),
        "a body of exactly 1 MiB is read: {e}"
    );
    fake.inject(Fault::Oversized(limit + 1));
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert_eq!(e.message(), "response body over 1 MiB");

    fake.inject(Fault::Truncated);
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.message().contains("truncated"), "{e}");

    fake.inject(Fault::DropConnection);
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert!(e.message().contains("closed before a response"), "{e}");

    assert!(client.get_token().is_ok(), "the client recovers");
}

#[test]
fn compressed_answer_is_refused() {
    let body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00";
    let mut answer = http_answer("200 OK", "application/json", body);
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    answer.splice(
        head_end..head_end,
        b"\r\nContent-Encoding: gzip".iter().copied(),
    );
    let server = RawServer::answering(answer);
    let e = client(&server.url()).get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.message().contains("Content-Encoding: gzip"), "{e}");
}

#[test]
fn deadline_ends_a_slow_gateway() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder
        .timeouts(Duration::from_millis(500), Duration::from_millis(400))
        .unwrap();
    let client = builder.build().unwrap();
    fake.inject(Fault::Delay(Duration::from_secs(5)));
    let started = Instant::now();
    let e = client.get_token().unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("400 ms"), "{e}");
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(1500),
        "ended after {elapsed:?}"
    );
}

#[test]
fn refused_connection() {
    let port = closed_port();
    let e = client(&format!("http://127.0.0.1:{port}"))
        .get_token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.message(), format!("connect to 127.0.0.1:{port} refused"));
}

#[test]
fn unknown_host_is_a_connect_error() {
    let e = client("http://no-such-host.invalid:8080")
        .get_token()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(
        e.message()
            .starts_with("cannot resolve host no-such-host.invalid"),
        "{e}"
    );
}

#[test]
fn common_setup_mistakes_name_their_fix() {
    let fake = fake();
    // The token endpoint given as the gateway URL.
    for url in [
        format!("{}/apim-token-service/v2.0/token/get", fake.url()),
        "https://gw.example/pfx/APIM-TOKEN-SERVICE/v2.0/token/refresh".to_string(),
    ] {
        for e in [
            enos_token::ClientBuilder::new(&url, APP_KEY, APP_SECRET).unwrap_err(),
            get_access_token(&url, APP_KEY, APP_SECRET).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(
                e.message().contains(
                    "the gateway URL is the API gateway's base address \
                     (for example https://<apim-gateway host>), not the token endpoint"
                ),
                "{e}"
            );
        }
    }
    // White space around the credentials (a newline read from a file).
    for (key, secret, names) in [
        ("test-app-key\n", APP_SECRET, "app key \"test-app-key\\n\""),
        (" test-app-key", APP_SECRET, "app key \" test-app-key\""),
        (APP_KEY, "test-app-secret-8d1f\n", "app secret"),
        (APP_KEY, "\ttest-app-secret-8d1f", "app secret"),
    ] {
        for e in [
            enos_token::ClientBuilder::new(&fake.url(), key, secret).unwrap_err(),
            get_access_token(&fake.url(), key, secret).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(
                e.message().starts_with(names) && e.message().contains("white space"),
                "{e}"
            );
            assert!(!e.message().contains("secret-8d1f"), "{e}");
        }
    }
    // An unknown app key is named (it is no secret).
    let e = get_access_token(&fake.url(), "no-such-app", APP_SECRET).unwrap_err();
    assert_eq!(e.service_status(), 1002, "{e}");
    assert!(e.message().contains("app key \"no-such-app\""), "{e}");
}

#[test]
fn host_names_are_resolved_once_per_connection_not_per_call() {
    let fake = fake();
    let by_name = client(&format!("http://localhost:{}", fake.address().port()));
    for _ in 0..50 {
        by_name.get_token().unwrap();
    }
    assert_eq!(
        by_name.counters().dns_lookups,
        1,
        "one lookup for one pooled connection"
    );
    let by_address = client(&fake.url());
    by_address.get_token().unwrap();
    assert_eq!(
        by_address.counters().dns_lookups,
        0,
        "an IP literal needs no lookup"
    );
    assert_eq!(
        fake.stats().connections,
        2,
        "each client kept its one connection"
    );
}

#[test]
fn sixty_four_threads_share_one_client_without_replays() {
    let fake = fake();
    let client = Arc::new(client(&fake.url()));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.get_token())
        })
        .collect();
    let tokens: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("no panic").expect("Get succeeds"))
        .collect();
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token == tokens[0].access_token)
    );
    let stats = fake.stats();
    assert_eq!(stats.get_requests, 64);
    assert_eq!(stats.status_count(1001), 0, "no replayed timestamp");
    assert_eq!(stats.status_count(0), 64);
}

#[test]
fn one_shot_calls_from_thirty_two_threads_share_a_pool() {
    let fake = fake();
    let url = fake.url();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get_access_token(&url, APP_KEY, APP_SECRET))
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .expect("no panic")
            .expect("one-shot Get succeeds");
    }
    let stats = fake.stats();
    assert_eq!(stats.status_count(1001), 0);
    assert_eq!(stats.status_count(0), 32);

    let before = fake.stats().connections;
    let mut token = get_access_token(&url, APP_KEY, APP_SECRET).unwrap();
    for _ in 0..20 {
        token = refresh_access_token(&url, APP_KEY, APP_SECRET, &token.access_token).unwrap();
    }
    assert!(
        fake.stats().connections - before <= 1,
        "sequential one-shot calls reuse a pooled connection"
    );
}
