//! A faithful fake of the EnOS token service, for tests and for trying the
//! library without an EnOS account (cargo feature `fake-gateway`).
//!
//! It speaks real HTTP/1.1 (or HTTPS with a given certificate) on loopback
//! and follows `token-service.md`: it checks `encryption` (1003), unknown app
//! keys (1002), empty or missing fields (1202), wrong JSON types (1004),
//! replayed `encryption` (1001), expired tokens on refresh (1203) and unknown
//! ones (1204). Get returns the app's token while it is valid; Refresh issues
//! a new token with a fresh lifetime. Token paths are matched by suffix, so
//! any path prefix works.
//!
//! For tests it counts what it saw ([`FakeStats`]), records the last requests,
//! and misbehaves on request ([`Fault`]). A signed test API,
//! `/fake/v1/echo`, checks the `apim-*` headers of an API call. Programs that
//! run the `enos-fake-gateway` binary steer it over HTTP:
//!
//! * `POST /fake/control/fault` with `{"fault": "delay", "ms": 2000, "times": 1}`
//!   (faults: `http500`, `not-json`, `oversized` with `bytes`, `delay` with
//!   `ms`, `drop`, `truncated`, `redirect`, `status` with `status`, `clear`);
//! * `GET /fake/control/stats`;
//! * `POST /fake/control/expire-tokens`.

mod endpoints;
mod http;
pub mod service;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use http::Request;
use http::{Answer, ReadError};
use service::{Fetch, TokenService};

/// The largest body the `oversized` fault sends: far above the client's
/// 1 MiB limit, small enough never to exhaust the fake's memory.
pub const MAX_OVERSIZED_BYTES: usize = 64 * 1024 * 1024;

/// A way to misbehave, applied to one upcoming request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with an HTML body.
    ServerErrorHtml,
    /// HTTP 200 with a body that is not JSON.
    NotJson,
    /// HTTP 200 with a body of this many bytes (at most
    /// [`MAX_OVERSIZED_BYTES`]; more is cut to that).
    Oversized(usize),
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// Closes the connection without answering.
    DropConnection,
    /// Announces a longer body than it sends, then closes.
    Truncated,
    /// Answers HTTP 200 with this gateway status in the envelope.
    GatewayStatus(i32),
    /// Answers HTTP 302 with a `Location`.
    Redirect,
    /// Answers exactly this.
    Raw {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
}

/// A certificate chain and private key, PEM, for serving HTTPS.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub certificate_chain_pem: Vec<u8>,
    pub private_key_pem: Vec<u8>,
}

/// How to start a fake gateway.
#[derive(Clone, Debug)]
pub struct FakeGatewayConfig {
    /// Where to listen; port 0 picks a free one. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Known applications: app key to app secret.
    pub apps: HashMap<String, String>,
    /// Lifetime of new tokens. Default 7200 s.
    pub token_lifetime: Duration,
    /// Serve HTTPS with this identity instead of HTTP.
    pub tls: Option<TlsIdentity>,
}

impl FakeGatewayConfig {
    /// Plain HTTP on a free loopback port, one app.
    pub fn new(app_key: &str, app_secret: &str) -> Self {
        FakeGatewayConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            apps: HashMap::from([(app_key.to_string(), app_secret.to_string())]),
            token_lifetime: Duration::from_secs(7200),
            tls: None,
        }
    }
}

/// What the fake has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests read, of any kind (control requests excepted).
    pub requests: u64,
    /// Get requests, whatever their outcome (faulted ones included).
    pub get_requests: u64,
    /// Refresh requests, whatever their outcome (faulted ones included).
    pub refresh_requests: u64,
    /// Gateway status answered to token requests, by code (0 = success).
    pub statuses: BTreeMap<i32, u64>,
    /// Faults applied.
    pub faults: u64,
    /// Echo calls whose signature was right, and wrong.
    pub echo_accepted: u64,
    pub echo_rejected: u64,
}

impl FakeStats {
    /// How many token requests were answered with gateway status `code`.
    pub fn status_count(&self, code: i32) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
}

struct State {
    service: TokenService,
    stats: FakeStats,
    faults: VecDeque<Fault>,
    recent: VecDeque<Request>,
    /// Open connections by id, so that `stop` can close them.
    connections: HashMap<u64, TcpStream>,
    next_connection_id: u64,
}

struct Shared {
    state: Mutex<State>,
    stopping: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
    https: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake gateway. Stops when dropped.
pub struct FakeGateway {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeGateway {
    /// Starts listening and serving on background threads.
    pub fn start(config: FakeGatewayConfig) -> io::Result<FakeGateway> {
        let tls = config.tls.as_ref().map(server_config).transpose()?;
        let listener = TcpListener::bind(config.bind)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                service: TokenService::new(config.apps, config.token_lifetime),
                stats: FakeStats::default(),
                faults: VecDeque::new(),
                recent: VecDeque::new(),
                connections: HashMap::new(),
                next_connection_id: 0,
            }),
            stopping: AtomicBool::new(false),
            https: tls.is_some(),
            tls,
        });
        let acceptor_shared = shared.clone();
        let acceptor = thread::Builder::new()
            .name("fake-gateway-accept".into())
            .spawn(move || accept_loop(listener, acceptor_shared))?;
        Ok(FakeGateway {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Starts a plain-HTTP fake with one app on a free loopback port.
    pub fn start_simple(app_key: &str, app_secret: &str) -> io::Result<FakeGateway> {
        Self::start(FakeGatewayConfig::new(app_key, app_secret))
    }

    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.shared.https { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Misbehaves once, on the next request (faults queue up in order).
    pub fn inject(&self, fault: Fault) {
        self.inject_times(fault, 1);
    }

    /// Misbehaves on the next `times` requests.
    pub fn inject_times(&self, fault: Fault, times: usize) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state.faults.push_back(fault.clone());
        }
    }

    /// Forgets faults not yet applied.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Makes every token issued so far expire now.
    pub fn expire_all_tokens(&self) {
        self.shared.lock().service.expire_all();
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().service.set_lifetime(lifetime);
    }

    /// The counters so far.
    pub fn stats(&self) -> FakeStats {
        self.shared.lock().stats.clone()
    }

    /// The last requests (at most 32), oldest first.
    pub fn recent_requests(&self) -> Vec<Request> {
        self.shared.lock().recent.iter().cloned().collect()
    }

    /// Stops accepting, closes open connections and waits for the acceptor.
    pub fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        for (_, connection) in self.shared.lock().connections.drain() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop();
    }
}

fn server_config(identity: &TlsIdentity) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let chain = CertificateDer::pem_slice_iter(&identity.certificate_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&identity.private_key_pem).map_err(|e| invalid(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&e))?;
    Ok(Arc::new(config))
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(http::IDLE_TIMEOUT));
        let Ok(closer) = stream.try_clone() else {
            continue;
        };
        let id = {
            let mut state = shared.lock();
            state.stats.connections += 1;
            state.next_connection_id += 1;
            let id = state.next_connection_id;
            if let Ok(clone) = stream.try_clone() {
                state.connections.insert(id, clone);
            }
            id
        };
        let shared = shared.clone();
        let _ = thread::Builder::new()
            .name("fake-gateway-conn".into())
            .spawn(move || {
                match shared.tls.clone() {
                    None => serve_connection(stream, &shared),
                    Some(config) => {
                        if let Ok(connection) = rustls::ServerConnection::new(config) {
                            serve_connection(rustls::StreamOwned::new(connection, stream), &shared)
                        }
                    }
                }
                // The registry holds a clone of the socket: close it for real.
                shared.lock().connections.remove(&id);
                let _ = closer.shutdown(Shutdown::Both);
            });
    }
}

fn serve_connection<S: io::Read + Write>(stream: S, shared: &Shared) {
    let mut reader = http::buffered(stream);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let request = match http::read_request(&mut reader) {
            Ok(request) => request,
            Err(ReadError::Closed) | Err(ReadError::Broken) => return,
            Err(ReadError::Reject(status, why)) => {
                let answer = Answer::text(status, "text/plain", why);
                let _ = http::write_answer(reader.get_mut(), &answer, false);
                return;
            }
        };
        let keep_alive = request.keep_alive();
        let stream = reader.get_mut();
        let outcome = respond(&request, shared, stream, keep_alive);
        if outcome.is_err() || !keep_alive || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Answers one request; `Err` closes the connection.
fn respond<W: Write>(
    request: &Request,
    shared: &Shared,
    stream: &mut W,
    keep_alive: bool,
) -> io::Result<()> {
    if request.path.starts_with("/fake/control/") {
        let answer = endpoints::control(request, shared);
        return http::write_answer(stream, &answer, keep_alive);
    }
    let fault = {
        let mut state = shared.lock();
        state.stats.requests += 1;
        if state.recent.len() >= 32 {
            state.recent.pop_front();
        }
        state.recent.push_back(request.clone());
        let fetch = token_fetch(&request.path);
        match fetch {
            Some(Fetch::Get) => state.stats.get_requests += 1,
            Some(Fetch::Refresh) => state.stats.refresh_requests += 1,
            None => {}
        }
        let fault = state.faults.pop_front();
        if fault.is_some() {
            state.stats.faults += 1;
        }
        fault
    };
    match fault {
        None => {}
        Some(Fault::Delay(delay)) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
            }
        }
        Some(Fault::DropConnection) => {
            return Err(io::Error::other("fault: drop"));
        }
        Some(Fault::Truncated) => {
            let body = br#"{"status":0,"msg":"SUCCESS","data":{"accessToken":"tr"#;
            let answer = Answer::text(200, "application/json", &body[..]);
            stream.write_all(&http::head_bytes(&answer, body.len() + 100, true))?;
            stream.write_all(body)?;
            stream.flush()?;
            return Err(io::Error::other("fault: truncated"));
        }
        Some(other) => {
            let answer = match other {
                Fault::ServerErrorHtml => Answer::text(
                    500,
                    "text/html",
                    "<html><body><h1>500 Internal Server Error</h1></body></html>",
                ),
                Fault::NotJson => Answer::text(200, "application/json", "this is not JSON"),
                Fault::Oversized(bytes) => {
                    let mut body = br#"{"status":0,"padding":""#.to_vec();
                    let bytes = bytes.min(MAX_OVERSIZED_BYTES);
                    body.resize(bytes.saturating_sub(2).max(body.len()), b'x');
                    body.extend_from_slice(b"\"}");
                    Answer::text(200, "application/json", body)
                }
                Fault::GatewayStatus(status) => Answer::json(
                    200,
                    &json!({"status": status, "msg": "injected by the fake gateway",
                            "business": "apim-token-service"}),
                ),
                Fault::Redirect => {
                    let mut answer = Answer::text(302, "text/plain", "moved");
                    answer
                        .extra_headers
                        .push(("Location".into(), "/elsewhere".into()));
                    answer
                }
                Fault::Raw {
                    status,
                    content_type,
                    body,
                } => Answer::text(status, content_type, body),
                Fault::Delay(_) | Fault::DropConnection | Fault::Truncated => unreachable!(),
            };
            if let Some(status) = gateway_status_of(&answer) {
                if token_fetch(&request.path).is_some() {
                    *shared.lock().stats.statuses.entry(status).or_default() += 1;
                }
            }
            return http::write_answer(stream, &answer, keep_alive);
        }
    }
    let answer = route(request, shared);
    http::write_answer(stream, &answer, keep_alive)
}

fn gateway_status_of(answer: &Answer) -> Option<i32> {
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    i32::try_from(value.get("status")?.as_i64()?).ok()
}

fn token_fetch(path: &str) -> Option<Fetch> {
    if path.ends_with(crate::client::GET_TOKEN_PATH) {
        Some(Fetch::Get)
    } else if path.ends_with(crate::client::REFRESH_TOKEN_PATH) {
        Some(Fetch::Refresh)
    } else {
        None
    }
}

fn route(request: &Request, shared: &Shared) -> Answer {
    if let Some(fetch) = token_fetch(&request.path) {
        if request.method != "POST" {
            return Answer::text(405, "text/plain", "use POST");
        }
        let mut state = shared.lock();
        let (status, envelope) = state.service.handle(fetch, &request.body);
        *state.stats.statuses.entry(status).or_default() += 1;
        return Answer::json(200, &envelope);
    }
    if request.path.ends_with("/fake/v1/echo") {
        return endpoints::echo(request, shared);
    }
    Answer::text(404, "text/plain", "no such path on the fake gateway")
}
