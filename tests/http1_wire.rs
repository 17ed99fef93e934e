//! Our HTTP/1.1 on direct connections, against raw servers on loopback:
//! every way an answer may be delimited, which connections are kept for
//! the next call, and what a server that lies about lengths gets.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use enos_token::{Client, ErrorKind};
use support::*;

/// A server that answers the token Get, and each API call with
/// `answer(n)` (n counts API calls from 0); it counts the connections
/// that carried an API call.
struct Scripted {
    server: RawServer,
    api_connections: Arc<AtomicUsize>,
}

impl Scripted {
    fn start(answer: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> Scripted {
        let api_connections = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = api_connections.clone();
        let server = RawServer::start(move |mut stream| {
            let mut carried_a_call = false;
            loop {
                let request = read_request(&mut stream);
                if request.is_empty() {
                    return;
                }
                let bytes = if request.contains("/token/get") {
                    token_answer()
                } else {
                    if !carried_a_call {
                        carried_a_call = true;
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    answer(calls.fetch_add(1, Ordering::SeqCst))
                };
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
        });
        Scripted {
            server,
            api_connections,
        }
    }

    fn client(&self) -> Client {
        let mut builder = builder(&self.server.url());
        builder
            .timeouts(Duration::from_millis(500), Duration::from_secs(5))
            .unwrap();
        builder.build().unwrap()
    }

    fn connections(&self) -> usize {
        self.api_connections.load(Ordering::SeqCst)
    }
}

/// The answer to a token Get.
fn token_answer() -> Vec<u8> {
    let body = token_json("wire-token", 7200);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A server that answers token Gets, then the first API call with `last`,
/// and closes that connection.
fn token_then_close(last: &'static [u8]) -> RawServer {
    RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            if !request.contains("/token/get") {
                let _ = stream.write_all(last);
                return;
            }
            let _ = stream.write_all(&token_answer());
        }
    })
}

fn get(client: &Client) -> (u16, Vec<u8>) {
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    (response.status(), response.body().to_vec())
}

#[test]
fn chunked_answers_arrive_whole_and_keep_the_connection() {
    let server = Scripted::start(|n| {
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             3;name=value\r\ncal\r\n1\r\nl\r\n{:x}\r\n-{n}\r\n0\r\nX-Trailer: t\r\n\r\n",
            format!("-{n}").len()
        )
        .into_bytes()
    });
    let client = server.client();
    for n in 0..3 {
        assert_eq!(get(&client), (200, format!("call-{n}").into_bytes()));
    }
    assert_eq!(
        server.connections(),
        1,
        "one connection carried the three calls"
    );
}

#[test]
fn informational_answers_are_skipped() {
    let server = Scripted::start(|_| {
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            .to_vec()
    });
    let client = server.client();
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    assert_eq!((response.status(), response.body()), (200, &b"ok"[..]));
    assert!(response.headers().iter().all(|(name, _)| name != "link"));
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(server.connections(), 1);
}

#[test]
fn bytes_beyond_the_announced_length_never_become_the_next_answer() {
    // The first answer smuggles a second one after its announced body.
    let server = Scripted::start(|n| {
        match n {
        0 => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
            .to_vec(),
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood".to_vec(),
    }
    });
    let client = server.client();
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(get(&client), (200, b"good".to_vec()));
    assert_eq!(
        server.connections(),
        2,
        "the connection with extra bytes was closed"
    );
}

#[test]
fn a_chunked_answer_that_also_announces_a_length_is_read_by_its_chunks_and_not_reused() {
    let server = Scripted::start(|_| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            .to_vec()
    });
    let client = server.client();
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(server.connections(), 2);
}

#[test]
fn connection_close_is_honoured() {
    let server = Scripted::start(|_| {
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec()
    });
    let client = server.client();
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(get(&client), (200, b"ok".to_vec()));
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_body_without_length_ends_when_the_server_closes() {
    let server = token_then_close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
    let client = builder(&server.url()).build().unwrap();
    assert_eq!(get(&client), (200, b"until the end".to_vec()));
}

#[test]
fn a_chunked_body_cut_short_is_a_truncated_answer() {
    let server =
        token_then_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly half");
    let client = builder(&server.url()).build().unwrap();
    let error = client.request("GET", "/api/x", None, b"").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(error.message().contains("truncated"), "{error}");
}

#[test]
fn the_request_carries_host_length_and_one_copy_of_each_header() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let server = RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            kept.lock().unwrap().push(request);
            let _ = stream.write_all(&token_answer());
        }
    });
    let client = builder(&server.url()).build().unwrap();
    let mut request = enos_token::Request::new("POST", "/api/x?b=2&a=1").unwrap();
    request.header("Accept", Some("text/plain")).unwrap();
    request.body(None, &b"{\"k\":1}"[..]).unwrap();
    client.send(&request).unwrap();
    let seen = seen.lock().unwrap();
    let call = seen
        .iter()
        .find(|r| r.starts_with("POST /api/x?b=2&a=1 HTTP/1.1\r\n"))
        .unwrap();
    let lower = call.to_ascii_lowercase();
    let port = server.address.port();
    assert!(
        lower.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
        "{call}"
    );
    assert!(lower.contains("\r\ncontent-length: 7\r\n"), "{call}");
    assert_eq!(
        lower.matches("\r\naccept:").count(),
        1,
        "the caller's Accept replaces ours: {call}"
    );
    assert!(lower.contains("\r\naccept: text/plain\r\n"), "{call}");
    assert!(lower.contains("\r\nuser-agent: enos-token/"), "{call}");
    assert!(call.ends_with("\r\n\r\n{\"k\":1}"), "{call}");
}
