//! `Client::request` (`enos_client_request`): signed API calls against the
//! fake gateway's signed API and raw servers: exactly the query and body
//! signed and sent, a refused token renewed once (both refusal forms), the
//! path prefix kept, arguments refused before a byte is sent, the answer
//! size limit, and which methods are sent again on a stale connection.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use enos_token::fake::{FakeGateway, TokenRefusal};
use enos_token::{ErrorKind, LogLevel, Logger};
use serde_json::Value;
use support::*;

fn echo_data(body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(value["msg"], "signature ok", "{value}");
    value["data"].clone()
}

#[test]
fn a_get_and_a_post_are_signed_over_exactly_what_is_sent() {
    let fake = fake();
    let client = client(&fake.url());
    let response = client
        .request("GET", "/fake/v1/echo?orgId=o1&b=x%20y&a=1", None, b"")
        .unwrap();
    assert_eq!(response.status(), 200);
    let data = echo_data(response.body());
    assert_eq!(data["method"], "GET");
    assert_eq!(data["query"], "orgId=o1&b=x%20y&a=1");
    assert_eq!(
        response.header("CONTENT-type"),
        Some("application/json;charset=UTF-8"),
        "headers are found in any case"
    );
    assert_eq!(response.header("x-no-such-header"), None);

    let body = br#"{"assetIds":["a1","a2"],"note":"unchanged"}"#;
    let response = client
        .request(
            "POST",
            "/fake/v1/echo?orgId=o1",
            Some("application/json;charset=UTF-8"),
            body,
        )
        .unwrap();
    let data = echo_data(response.body());
    assert_eq!(data["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(data["contentType"], "application/json;charset=UTF-8");
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let response = client.request(method, "/fake/v1/echo", None, b"x").unwrap();
        assert_eq!(echo_data(response.body())["method"], method);
    }
    let counters = client.counters();
    assert_eq!((counters.api_calls, counters.token_renewals), (6, 0));
    assert_eq!(counters.get_requests, 1, "one token for every call");
}

#[test]
fn any_http_answer_is_the_apis_answer() {
    let fake = fake();
    let client = client(&fake.url());
    let response = client.request("GET", "/no/such/api", None, b"").unwrap();
    assert_eq!(response.status(), 404);
    fake.inject(enos_token::fake::Fault::ServerErrorHtml);
    client.access_token().unwrap();
    fake.inject(enos_token::fake::Fault::ServerErrorHtml);
    let response = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(response.status(), 500);
    assert!(String::from_utf8_lossy(response.body()).contains("500 Internal Server Error"));
}

/// A client whose token the gateway has retired: a sibling refreshed it.
fn client_with_a_retired_token(fake: &FakeGateway) -> (enos_token::Client, String) {
    let client = client(&fake.url());
    let old = client.access_token().unwrap();
    let sibling = support::client(&fake.url());
    let new = sibling.refresh_token(&old).unwrap().access_token.clone();
    (client, new)
}

#[test]
fn a_refused_token_is_renewed_and_the_call_sent_once_more_in_both_forms() {
    for refusal in [TokenRefusal::Http401, TokenRefusal::Status1203] {
        let fake = fake();
        fake.set_token_refusal(refusal);
        let (client, current) = client_with_a_retired_token(&fake);
        let response = client
            .request("GET", "/fake/v1/echo?orgId=o1", None, b"")
            .unwrap();
        assert_eq!(response.status(), 200, "{refusal:?}");
        echo_data(response.body());
        assert_eq!(
            client.access_token().unwrap(),
            current,
            "the gateway's current token"
        );
        let stats = fake.stats();
        assert_eq!(
            (stats.echo_rejected, stats.echo_accepted),
            (1, 1),
            "{refusal:?}"
        );
        let counters = client.counters();
        assert_eq!((counters.api_calls, counters.token_renewals), (1, 1));
    }
}

#[test]
fn the_log_has_one_debug_line_per_call_and_a_warning_per_renewal_without_values() {
    let fake = fake();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    let mut builder = builder(&fake.url());
    builder.logger(Some(Logger::new(move |level, line| {
        seen.lock().unwrap().push((level, line.to_string()))
    })));
    let client = builder.build().unwrap();
    let old = client.access_token().unwrap();
    support::client(&fake.url()).refresh_token(&old).unwrap();
    client
        .request("GET", "/fake/v1/echo?orgId=secret-org&x=1", None, b"")
        .unwrap();
    let lines = lines.lock().unwrap();
    let debug: Vec<_> = lines
        .iter()
        .filter(|(l, _)| *l == LogLevel::Debug)
        .collect();
    assert_eq!(debug.len(), 1, "{lines:?}");
    assert!(
        debug[0]
            .1
            .starts_with("GET /fake/v1/echo?orgId&x -> HTTP 200 in "),
        "{lines:?}"
    );
    let warnings: Vec<_> = lines.iter().filter(|(l, _)| *l == LogLevel::Warn).collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert!(
        warnings[0].1.contains("the token was refused (HTTP 401)"),
        "{lines:?}"
    );
    for (_, line) in lines.iter() {
        assert!(
            !line.contains("secret-org") && !line.contains(&old[4..]),
            "{line}"
        );
    }
}

#[test]
fn never_more_than_one_renewal_per_call() {
    // Tokens for every Get; every API call refused.
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let server = RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            let first_line = request.lines().next().unwrap_or("").to_string();
            let answer = if first_line.contains("/token/get") {
                let body = token_json("tok-always-refused-0001", 7200);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\nno way".to_string()
            };
            seen.lock().unwrap().push(first_line);
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    let client = client(&server.url());
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    assert_eq!(response.status(), 401, "the second answer, whatever it is");
    assert_eq!(response.body(), b"no way");
    let requests = requests.lock().unwrap();
    let api_calls = requests.iter().filter(|l| l.contains("/api/x")).count();
    let gets = requests.iter().filter(|l| l.contains("/token/get")).count();
    assert_eq!((api_calls, gets), (2, 2), "{requests:?}");
    assert_eq!(client.counters().token_renewals, 1);
}

#[test]
fn a_path_prefix_of_the_gateway_url_is_kept() {
    let fake = fake_with(|config| config.path_prefix = "/gw/enos".into());
    let client = client(&format!("{}/gw/enos/", fake.url()));
    let response = client
        .request("GET", "/fake/v1/echo?a=1", None, b"")
        .unwrap();
    assert_eq!(echo_data(response.body())["path"], "/gw/enos/fake/v1/echo");
}

#[test]
fn what_could_misroute_the_token_is_refused_before_a_byte_is_sent() {
    let fake = fake();
    let client = client(&fake.url());
    for (method, path, content_type) in [
        ("GET", "http://evil.example/steal", None),
        ("GET", "//evil.example/steal", None),
        ("GET", "steal", None),
        ("GET", "/a\r\nX-Injected: 1", None),
        ("GET\r\nX: 1", "/a", None),
        ("POST", "/a", Some("text/plain\r\nX-Injected: 1")),
        // Out of the gateway's path prefix: `/pfx/../../ok` reaches `/ok`.
        ("GET", "/fake/../../ok", None),
        ("GET", "/fake/%2e%2e/%2E%2e/ok", None),
    ] {
        let error = client.request(method, path, content_type, b"").unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidArgument,
            "{method} {path:?}"
        );
    }
    assert_eq!(fake.stats().requests, 0, "nothing was sent, not even a Get");
}

#[test]
fn an_answer_over_the_limit_is_refused_naming_it() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder.max_response_bytes(64).unwrap();
    let client = builder.build().unwrap();
    let error = client
        .request("GET", "/fake/v1/echo", None, b"")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(
        error.message().contains(
            "over 64 bytes (the limit set with enos_client_builder_set_max_response_bytes)"
        ),
        "names the setter: {error}"
    );
    assert!(builder_with_zero_limit_is_refused(&fake));
}

fn builder_with_zero_limit_is_refused(fake: &FakeGateway) -> bool {
    builder(&fake.url()).max_response_bytes(0).is_err()
}

/// A server that answers the token Get, answers the first API call on a
/// connection and closes the connection as the second arrives.
fn closing_server(api_requests: Arc<Mutex<usize>>) -> RawServer {
    RawServer::start(move |mut stream| {
        let mut api_calls_here = 0;
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            let answer = if request.contains("/token/get") {
                let body = token_json("tok-for-the-api-0001", 7200);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                *api_requests.lock().unwrap() += 1;
                api_calls_here += 1;
                if api_calls_here == 2 {
                    return; // processed, perhaps; closed unanswered
                }
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string()
            };
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn only_idempotent_calls_are_sent_again_on_a_stale_connection() {
    let api_requests = Arc::new(Mutex::new(0));
    let server = closing_server(api_requests.clone());
    let client = client(&server.url());
    client.request("GET", "/api", None, b"").unwrap();
    let response = client.request("GET", "/api", None, b"").unwrap();
    assert_eq!(
        response.body(),
        b"ok",
        "a GET is sent again on a new connection"
    );
    assert_eq!(*api_requests.lock().unwrap(), 3);

    let api_requests = Arc::new(Mutex::new(0));
    let server = closing_server(api_requests.clone());
    let client = support::client(&server.url());
    client.request("POST", "/api", None, b"{}").unwrap();
    let error = client.request("POST", "/api", None, b"{}").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.message().contains("may have processed"), "{error}");
    assert_eq!(
        *api_requests.lock().unwrap(),
        2,
        "a POST is never sent twice"
    );
}
