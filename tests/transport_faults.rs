//! Transport failures a reviewer found misread, over real sockets: a
//! kept-alive connection the server closes as the next request arrives, a
//! transfer coding ureq cannot read, a SOCKS proxy that answers garbage, and
//! a TLS connection that breaks after its handshake.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enos_token::ErrorKind;
use support::*;

/// Token answers for a kept-alive connection.
fn keep_alive_token(token: &str) -> Vec<u8> {
    let body = token_json(token, 7200);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_kept_alive_connection_closed_by_the_server_is_replaced_once() {
    let connections = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (seen, recorded) = (connections.clone(), bodies.clone());
    let server = RawServer::start(move |mut stream| {
        let number = seen.fetch_add(1, Ordering::SeqCst);
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            recorded.lock().unwrap().push(request);
            let requests_so_far = recorded.lock().unwrap().len();
            if number == 0 && requests_so_far == 2 {
                return; // closes as the second request arrives, unanswered
            }
            if stream.write_all(&keep_alive_token("tok-1")).is_err() {
                return;
            }
        }
    });
    let client = client(&server.url());
    assert_eq!(client.get_token().unwrap().access_token.clone(), "tok-1");
    assert_eq!(client.get_token().unwrap().access_token.clone(), "tok-1");
    assert_eq!(connections.load(Ordering::SeqCst), 2, "a new connection");
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 3, "the second request was sent again");
    let timestamp = |request: &String| request.split("\"timestamp\":").nth(1).map(str::to_string);
    assert_ne!(
        timestamp(&bodies[1]),
        timestamp(&bodies[2]),
        "sent again with a new timestamp"
    );
}

#[test]
fn a_refresh_on_a_kept_alive_connection_closed_by_the_server_is_resent_only_when_a_get_says_so() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    let server = RawServer::start(move |mut stream| {
        loop {
            let request = read_request(&mut stream);
            if request.is_empty() {
                return;
            }
            let is_refresh = request.contains("/token/refresh");
            recorded.lock().unwrap().push(request);
            if is_refresh {
                return; // not processed; closed unanswered
            }
            if stream.write_all(&keep_alive_token("tok-1")).is_err() {
                return;
            }
        }
    });
    let client = client(&server.url());
    assert_eq!(client.get_token().unwrap().access_token.clone(), "tok-1");
    let error = client.refresh_token("tok-1").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(
        error.message().contains("a Get returns the current token"),
        "{error}"
    );
    // Get, Refresh (lost), Get (still tok-1: it did not happen), Refresh
    // once more (lost again): never a Refresh resent blindly.
    let kinds: Vec<&str> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            if r.contains("/token/refresh") {
                "refresh"
            } else {
                "get"
            }
        })
        .collect();
    assert_eq!(kinds, ["get", "refresh", "get", "refresh"]);
}

#[test]
fn a_new_connection_closed_before_the_answer_is_not_retried() {
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let server = RawServer::start(move |mut stream| {
        seen.fetch_add(1, Ordering::SeqCst);
        read_request(&mut stream);
    });
    let error = client(&server.url()).get_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(
        error.message().contains("closed before a response"),
        "{error}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn a_transfer_coding_other_than_chunked_is_a_bad_response() {
    let body = token_json("tok", 7200);
    let answer = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let server = RawServer::answering(answer.into_bytes());
    let mut builder = builder(&server.url());
    builder.retries(3, Duration::from_millis(1)).unwrap();
    let client = builder.build().unwrap();
    let error = client.access_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(
        error.message().contains("Transfer-Encoding: gzip, chunked"),
        "{error}"
    );
    assert_eq!(client.counters().retries, 0, "not transient");
}

#[test]
fn a_socks_proxy_that_answers_garbage_is_a_connect_error_naming_it() {
    for scheme in ["socks4", "socks5"] {
        let proxy = RawServer::start(|mut stream| {
            let mut greeting = [0u8; 64];
            let _ = stream.read(&mut greeting);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let mut builder = builder("http://127.0.0.1:8080/");
        builder
            .proxy(&format!("{scheme}://{}", proxy.address))
            .unwrap();
        let error = builder.build().unwrap().get_token().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{scheme}: {error}");
        let named = format!("(via proxy {}) failed at the proxy", proxy.address);
        assert!(error.message().contains(&named), "{scheme}: {error}");
    }
}

/// A TLS server that completes the handshake, reads the request, then sends
/// a record that cannot be decrypted.
fn tls_server_that_corrupts_its_answer() -> (u16, std::thread::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(tls_file("localhost.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_file("localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut connection, &mut tcp);
        let mut buffer = [0u8; 4096];
        let _ = tls.read(&mut buffer); // handshake, then the request
        // An application-data record whose authentication tag is wrong.
        let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x40];
        record.extend_from_slice(&[0x5a; 0x40]);
        let _ = tcp.write_all(&record);
        std::thread::sleep(Duration::from_millis(200));
    });
    (port, server)
}

#[test]
fn a_record_that_cannot_be_decrypted_is_not_called_a_handshake_failure() {
    let (port, server) = tls_server_that_corrupts_its_answer();
    let mut builder = builder(&format!("https://localhost:{port}"));
    builder.ca_file(&tls_file("ca.crt")).unwrap();
    let error = builder.build().unwrap().get_token().unwrap_err();
    server.join().unwrap();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(
        error.message().starts_with(&format!(
            "TLS error on the established connection to localhost:{port}"
        )),
        "{error}"
    );
    let _ = TcpStream::connect(("127.0.0.1", port));
}
