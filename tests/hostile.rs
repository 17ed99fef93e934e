//! Hostile servers and bad bytes, over real sockets: each case gives its
//! documented status within the deadline, and never a crash, a hang or
//! unbounded memory.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use enos_token::{Client, ErrorKind};
use support::*;

/// A client with a short deadline: 300 ms to connect, `total_ms` in all.
fn client_with_deadline(url: &str, total_ms: u64) -> Client {
    let mut builder = builder(url);
    builder
        .timeouts(Duration::from_millis(300), Duration::from_millis(total_ms))
        .unwrap();
    builder.build().unwrap()
}

/// Runs one Get and checks its error kind, message and that it ended in time.
fn expect_error(server: &RawServer, total_ms: u64, kind: ErrorKind, message_part: &str) {
    let client = client_with_deadline(&server.url(), total_ms);
    let started = Instant::now();
    let error = client
        .get_token()
        .expect_err("a hostile server must not yield a token");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), kind, "{error}");
    assert!(error.message().contains(message_part), "{error}");
    assert!(
        elapsed < Duration::from_millis(total_ms + 1000),
        "ended after {elapsed:?}, deadline {total_ms} ms"
    );
}

fn write_slowly(stream: &mut TcpStream, head: &[u8], drip: &[u8], every: Duration) {
    let _ = stream.write_all(head);
    for byte in drip.iter().cycle().take(10_000) {
        std::thread::sleep(every);
        if stream.write_all(&[*byte]).is_err() {
            return; // the client gave up, as it should
        }
    }
}

#[test]
fn a_body_that_drips_ends_at_the_deadline() {
    let server = RawServer::start(|mut stream| {
        read_request(&mut stream);
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
        write_slowly(&mut stream, head, b"{", Duration::from_millis(200));
    });
    expect_error(&server, 1200, ErrorKind::Timeout, "1200 ms deadline");
}

#[test]
fn headers_that_never_end() {
    let server = RawServer::start(|mut stream| {
        read_request(&mut stream);
        write_slowly(
            &mut stream,
            b"HTTP/1.1 200 OK\r\n",
            b"X-Slow: y\r\n",
            Duration::from_millis(50),
        );
    });
    expect_error(&server, 1200, ErrorKind::Timeout, "deadline");
}

#[test]
fn a_header_section_of_one_mebibyte() {
    // One huge header, and many small ones: both refused, neither buffered whole.
    let one_line = RawServer::start(|mut stream| {
        read_request(&mut stream);
        let head = format!(
            "HTTP/1.1 200 OK\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(1024 * 1024)
        );
        let _ = stream.write_all(head.as_bytes());
    });
    expect_error(
        &one_line,
        5000,
        ErrorKind::BadResponse,
        "response header section",
    );
    let many_lines = RawServer::start(|mut stream| {
        read_request(&mut stream);
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() < 1024 * 1024 {
            head.extend_from_slice(
                format!("X-Pad-{}: {}\r\n", head.len(), "a".repeat(200)).as_bytes(),
            );
        }
        let _ = stream.write_all(&head);
    });
    expect_error(
        &many_lines,
        5000,
        ErrorKind::BadResponse,
        "too many headers",
    );
}

#[test]
fn content_length_larger_than_what_is_sent() {
    let body = token_json("tok", 7200);
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len() + 50
    );
    let server = RawServer::answering(answer.into_bytes());
    expect_error(&server, 5000, ErrorKind::BadResponse, "truncated");
}

#[test]
fn invalid_chunked_encoding() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n{\"status\":0}\r\n0\r\n\r\n";
    let server = RawServer::answering(answer.to_vec());
    expect_error(&server, 5000, ErrorKind::BadResponse, "");
}

#[test]
fn compressed_bodies_are_refused() {
    for encoding in ["gzip", "deflate", "br"] {
        let body = b"\x78\x9c\x03\x00\x00\x00\x00\x01";
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        let server = RawServer::answering(answer);
        expect_error(
            &server,
            5000,
            ErrorKind::BadResponse,
            &format!("Content-Encoding: {encoding}"),
        );
    }
}

#[test]
fn a_compressed_api_answer_is_handed_over_as_it_came() {
    // No compression is asked for, but an API call's answer, whatever its
    // HTTP status, is the caller's: the bytes as sent, with their
    // Content-Encoding (a token answer, which is parsed, is still refused).
    let gzip =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00\x43\xbf\xa6\xa3\x02\x00\x00\x00";
    let server = RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            let answer = if request.contains("/token/get") {
                let body = token_json("gzip-token", 7200);
                format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
            } else {
                let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                gzip.len()
            )
            .into_bytes();
                head.extend_from_slice(gzip);
                head
            };
            if stream.write_all(&answer).is_err() {
                return;
            }
        }
    });
    let client = client_with_deadline(&server.url(), 5000);
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), gzip);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

#[test]
fn headers_come_in_the_order_received() {
    let server = RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            let answer = if request.contains("/token/get") {
                let body = token_json("order-token", 7200);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Trace: t\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
                .to_string()
            };
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    let client = client_with_deadline(&server.url(), 5000);
    let response = client.request("GET", "/api/x", None, b"").unwrap();
    let headers: Vec<(&str, &str)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .filter(|(n, _)| *n != "content-length")
        .collect();
    assert_eq!(
        headers,
        [
            ("set-cookie", "a=1"),
            ("x-trace", "t"),
            ("set-cookie", "b=2")
        ],
        "as the header documents"
    );
}

#[test]
fn an_http_1_0_server_that_closes_after_each_answer() {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let server = RawServer::start(move |mut stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        read_request(&mut stream);
        let body = token_json("http10-token", 7200);
        let answer = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    });
    let client = client(&server.url());
    for _ in 0..3 {
        assert_eq!(
            client.get_token().unwrap().access_token.clone(),
            "http10-token"
        );
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        3,
        "a new connection per answer"
    );
}

#[test]
fn a_reset_in_the_middle_of_the_body() {
    let server = RawServer::start(|mut stream| {
        read_request(&mut stream);
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"status\":0,",
        );
        let _ = stream.flush();
        std::thread::sleep(Duration::from_millis(50));
        // SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a linger struct of the right size.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    });
    expect_error(&server, 5000, ErrorKind::BadResponse, "truncated");
}

/// Answers `body` with HTTP 200 and returns the outcome of a Get.
fn get_with_body(body: Vec<u8>) -> Result<enos_token::Token, enos_token::Error> {
    let server = RawServer::answering(http_answer("200 OK", "application/json", &body));
    client_with_deadline(&server.url(), 5000).get_token()
}

#[test]
fn json_that_is_not_a_usable_envelope() {
    let token_mib = format!(
        r#"{{"status":0,"data":{{"accessToken":"{}","expire":7200}}}}"#,
        "t".repeat(1024 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not UTF-8",
            b"{\"status\":0,\"msg\":\"\xff\xfe\"}".to_vec(),
            "not UTF-8",
        ),
        (
            "nested 100,000 deep",
            "[".repeat(100_000).into_bytes(),
            "not JSON",
        ),
        ("expire 1e30", token_body("\"t\"", "1e30"), "not an integer"),
        ("expire -5", token_body("\"t\"", "-5"), "negative"),
        (
            "expire 7200.5",
            token_body("\"t\"", "7200.5"),
            "not an integer",
        ),
        (
            "expire a string",
            token_body("\"t\"", "\"7200\""),
            "not a number",
        ),
        ("accessToken empty", token_body("\"\"", "7200"), "is empty"),
        (
            "accessToken not a string",
            token_body("42", "7200"),
            "not a string",
        ),
        (
            "accessToken 1 MiB long",
            token_mib.into_bytes(),
            "over 1 MiB",
        ),
        (
            "status missing",
            br#"{"msg":"x","data":{"accessToken":"t","expire":1}}"#.to_vec(),
            "no numeric \"status\"",
        ),
        (
            "status a string",
            br#"{"status":"0","data":{"accessToken":"t","expire":1}}"#.to_vec(),
            "\"status\" is not an integer",
        ),
    ];
    for (name, body, message_part) in cases {
        let error = get_with_body(body).expect_err(name);
        assert_eq!(error.kind(), ErrorKind::BadResponse, "{name}: {error}");
        assert!(error.message().contains(message_part), "{name}: {error}");
    }
}

fn token_body(token: &str, expire: &str) -> Vec<u8> {
    format!(r#"{{"status":0,"msg":"SUCCESS","data":{{"accessToken":{token},"expire":{expire}}}}}"#)
        .into_bytes()
}

#[test]
fn duplicate_keys_the_last_one_counts() {
    let body = br#"{"status":1203,"status":0,"data":{"accessToken":"first","expire":1,"accessToken":"last","expire":60}}"#;
    let token = get_with_body(body.to_vec()).expect("the last values form a valid envelope");
    assert_eq!((token.access_token.as_str(), token.expire_s), ("last", 60));
}

/// `openssl s_server` speaking only TLS 1.0, on a free port.
struct OpensslServer {
    child: Child,
    port: u16,
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls10_only_server() -> Option<OpensslServer> {
    support::programs::tool("openssl", "version", "the TLS 1.0 server test")?;
    let port = closed_port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-tls1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .args([
            "-cert",
            &tls_file("localhost.crt"),
            "-key",
            &tls_file("localhost.key"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = OpensslServer { child, port };
    let until = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

#[test]
fn a_tls_1_0_only_server() {
    let Some(server) = tls10_only_server() else {
        return;
    };
    let mut builder = builder(&format!("https://localhost:{}", server.port));
    builder.ca_file(&tls_file("ca.crt")).unwrap();
    let error = builder.build().unwrap().get_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(
        error
            .message()
            .contains("no TLS version or cipher suite in common"),
        "{error}"
    );
}

/// Closes `stream` with a reset (SO_LINGER 0), as a TLS server does at the
/// sight of a plaintext request.
fn reset(stream: std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and option.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

#[test]
fn plain_http_to_a_tls_port_suggests_https_whatever_the_server_does() {
    // A server that resets the connection on a plaintext request.
    let resetting = RawServer::start(|mut stream| {
        read_request(&mut stream);
        reset(stream);
    });
    let error = client_with_deadline(&resetting.url(), 5000)
        .get_token()
        .unwrap_err();
    assert!(error.message().contains("use https://"), "{error}");
    // nginx's answer to plain HTTP on its HTTPS port.
    let page = "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>";
    let nginx = RawServer::answering(
        format!(
            "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
        .into_bytes(),
    );
    let error = client_with_deadline(&nginx.url(), 5000)
        .get_token()
        .unwrap_err();
    assert_eq!(error.http_status(), 400);
    assert!(
        error
            .message()
            .contains("that port speaks HTTPS: use https://"),
        "{error}"
    );
    // A TLS alert in answer to the plaintext request.
    let alerting = RawServer::answering(vec![0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]);
    let error = client_with_deadline(&alerting.url(), 5000)
        .get_token()
        .unwrap_err();
    assert!(error.message().contains("use https://"), "{error}");
}
