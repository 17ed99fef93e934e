//! Helpers shared by the integration tests: the fake gateway with a known
//! app, free and closed ports, raw TCP servers that misbehave, test TLS files.

#![allow(dead_code)] // each test file uses a different part

pub mod c_abi;
pub mod programs;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use enos_token::fake::{FakeGateway, FakeGatewayConfig, TlsIdentity};
use enos_token::{Client, ClientBuilder};

pub const APP_KEY: &str = "test-app-key";
pub const APP_SECRET: &str = "test-app-secret-8d1f";

pub fn fake() -> FakeGateway {
    FakeGateway::start_simple(APP_KEY, APP_SECRET).expect("fake gateway starts")
}

pub fn fake_with(configure: impl FnOnce(&mut FakeGatewayConfig)) -> FakeGateway {
    let mut config = FakeGatewayConfig::new(APP_KEY, APP_SECRET);
    configure(&mut config);
    FakeGateway::start(config).expect("fake gateway starts")
}

/// A client for `url` with the test app, direct (no proxy from the environment).
pub fn client(url: &str) -> Client {
    builder(url).build().expect("client builds")
}

pub fn builder(url: &str) -> ClientBuilder {
    let mut builder = ClientBuilder::new(url, APP_KEY, APP_SECRET).expect("builder");
    builder.proxy("").unwrap();
    builder
}

/// A free loopback port for a server program that cannot be told to pick
/// its own: outside the kernel's ephemeral range (32768-60999), so that no
/// test binding port 0 meanwhile can take it before the program does.
pub fn port_for_a_program() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20000 + (std::process::id() % 400) as u16 * 30;
    loop {
        let port = start + NEXT.fetch_add(1, Ordering::Relaxed) % 12000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A loopback port that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls")
}

pub fn tls_file(name: &str) -> String {
    tls_dir().join(name).to_string_lossy().into_owned()
}

/// TLS identity from `tests/data/tls/<name>.crt` (chain) and `<name>.key`.
pub fn tls_identity(name: &str) -> TlsIdentity {
    TlsIdentity {
        certificate_chain_pem: std::fs::read(tls_dir().join(format!("{name}.crt"))).unwrap(),
        private_key_pem: std::fs::read(tls_dir().join(format!("{name}.key"))).unwrap(),
    }
}

/// A TCP server that hands every connection to `handler` on its own thread.
pub struct RawServer {
    pub address: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawServer {
    pub fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stop = stopping.clone();
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || handler(stream));
            }
        });
        RawServer {
            address,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// A server that reads the request head and body, then writes `answer` and closes.
    pub fn answering(answer: Vec<u8>) -> RawServer {
        RawServer::start(move |mut stream| {
            read_request(&mut stream);
            let _ = stream.write_all(&answer);
            let _ = stream.flush();
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads one request (head and `Content-Length` body) and returns it as text.
pub fn read_request(stream: &mut TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// An HTTP/1.1 answer with `Content-Length`, closing the connection.
pub fn http_answer(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    answer
}

/// A success envelope with `token` and `expire`.
pub fn token_json(token: &str, expire: i64) -> String {
    format!(
        r#"{{"status":0,"msg":"SUCCESS","business":"apim-token-service","data":{{"accessToken":"{token}","expire":{expire}}}}}"#
    )
}
