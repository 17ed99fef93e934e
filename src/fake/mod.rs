//! A faithful fake of the EnOS token service, for tests and for trying the
//! library without an EnOS account (cargo feature `fake-gateway`).
//!
//! It speaks real HTTP/1.1 (or HTTPS with a given certificate) on loopback
//! and follows `token-service.md`: it checks `encryption` (1003), unknown app
//! keys (1002), empty or missing fields (1202), wrong JSON types (1004),
//! replayed `encryption` (1001), expired tokens on refresh (1203) and unknown
//! ones (1204). Get returns the app's token while it is valid; Refresh issues
//! a new token with a fresh lifetime. A gateway path prefix
//! (`FakeGatewayConfig::path_prefix`, `--path-prefix`) is served under: the
//! token service and the APIs at `<prefix>/...`.
//!
//! For tests it counts what it saw ([`FakeStats`]), records the last requests,
//! and misbehaves on request ([`Fault`]). A signed test API,
//! `/fake/v1/echo`, checks the `apim-*` headers of an API call, and a mock
//! of EnOS's asset API and its file APIs (`files.rs`: multipart uploads,
//! generated downloads with ranges) check them the same way. Programs that run the
//! `enos-fake-gateway` binary steer it over HTTP (`ENDPOINTS` lists it all):
//!
//! * `POST /fake/control/fault` with `{"fault": "delay", "ms": 2000, "times": 1}`
//!   (faults: `http500`, `not-json`, `oversized` with `bytes`, `delay` with
//!   `ms`, `drop`, `process-drop`, `truncated`, `redirect`, `status` with
//!   `status`, `cut-download` with `bytes`, `clear`);
//! * `GET /fake/control/stats`, `GET /fake/control/file-digest?fileUri=…`;
//! * `POST /fake/control/expire-tokens`, `POST /fake/control/files`.

mod endpoints;
mod files;
mod http;
mod limits;
mod server;
pub mod service;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{Value, json};

use http::Answer;
pub use http::Request;
pub use limits::ApiCall;
pub use service::TokenRequestSeen;
use service::{Fetch, TimestampWindow, TokenService};

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;

/// The largest body the `oversized` fault sends. The body is generated as
/// it is sent (no memory), so it may exceed every client limit: the token
/// answers' 1 MiB and the API answers' 64 MiB default.
pub const MAX_OVERSIZED_BYTES: u64 = 64 << 30;

/// Which requests a fault waits for (the control API's `"target"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultTarget {
    /// The next request of any kind (the default).
    #[default]
    Any,
    /// The next Get or Refresh Access Token request.
    TokenRequests,
    /// The next request that is not a token request (a signed API call).
    ApiCalls,
}

impl FaultTarget {
    fn takes(self, token_request: bool) -> bool {
        match self {
            FaultTarget::Any => true,
            FaultTarget::TokenRequests => token_request,
            FaultTarget::ApiCalls => !token_request,
        }
    }
}

/// A way to misbehave, applied to one upcoming request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with an HTML body.
    ServerErrorHtml,
    /// HTTP 200 with a body that is not JSON.
    NotJson,
    /// HTTP 200 with a JSON body of this many bytes (at most
    /// [`MAX_OVERSIZED_BYTES`]; more is cut to that), generated as it is
    /// sent.
    Oversized(u64),
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// Closes the connection without answering.
    DropConnection,
    /// Processes the request (a Refresh retires its token), then closes the
    /// connection without answering: an answer lost on the way back.
    ProcessThenDrop,
    /// Announces a longer body than it sends, then closes.
    Truncated,
    /// Answers HTTP 200 with this gateway status in the envelope.
    GatewayStatus(i32),
    /// Answers HTTP 302 with a `Location`.
    Redirect,
    /// Cuts the next download after this many bytes of its body (only
    /// downloads take it: token requests and other calls pass).
    CutDownload(u64),
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
    /// Write each request's method and path (never its headers or body) to
    /// standard error. Default off.
    pub log_requests: bool,
    /// The path before the token paths, as a gateway behind a path prefix
    /// has it (`/gw/enos`); token paths under any other prefix get 404, as
    /// they would at a real gateway. Default none.
    pub path_prefix: String,
    /// Refuse token requests (status 1004) and API calls (HTTP 401) whose
    /// timestamp is further than this from the fake's clock, as a gateway
    /// that checks timestamps might (EnOS documents no such window; see
    /// tests/README.md). Default none: every timestamp passes.
    pub timestamp_window: Option<Duration>,
}

impl FakeGatewayConfig {
    /// Plain HTTP on a free loopback port, one app.
    pub fn new(app_key: &str, app_secret: &str) -> Self {
        FakeGatewayConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            apps: HashMap::from([(app_key.to_string(), app_secret.to_string())]),
            token_lifetime: Duration::from_secs(7200),
            tls: None,
            log_requests: false,
            path_prefix: String::new(),
            timestamp_window: None,
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
    /// Signed API calls (echo, file APIs) whose signature was right, and wrong.
    pub echo_accepted: u64,
    pub echo_rejected: u64,
    /// API calls the service acted on (see [`FakeGateway::api_calls`]).
    pub processed: u64,
    /// API calls refused with 429 by the rate limiter.
    pub rate_limited: u64,
    /// Multipart uploads read (whatever their verdict).
    pub uploads: u64,
    /// Downloads served, and how many of them asked for a range.
    pub downloads: u64,
    pub range_requests: u64,
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
    faults: VecDeque<(FaultTarget, Fault)>,
    recent: VecDeque<Request>,
    /// Open connections by id, so that `stop` can close them.
    connections: HashMap<u64, TcpStream>,
    next_connection_id: u64,
    /// How the signed API refuses a retired, expired or unknown token.
    token_refusal: TokenRefusal,
    /// What the `Date` header says, against the real clock (milliseconds).
    clock_skew_ms: i64,
    /// Token requests and API calls whose timestamp is further than this
    /// from the fake's clock are refused (none: every timestamp passes).
    timestamp_window: Option<Duration>,
    /// The content version of generated files (a new one changes every
    /// file and its ETag).
    file_version: u64,
    /// Downloads to cut after this many body bytes, in order.
    download_cuts: VecDeque<u64>,
    /// The rate limiter, the outage switch and the API call log.
    limits: limits::Limits,
}

impl Shared {
    /// The fake's clock, milliseconds since the epoch: the real one shifted
    /// by the `clock` control.
    fn clock_ms(&self) -> i64 {
        self.lock().clock_ms()
    }
}

impl State {
    fn clock_ms(&self) -> i64 {
        crate::time::timestamp::wall_clock_ms().saturating_add(self.clock_skew_ms)
    }

    /// The timestamp check to apply now, if the fake has a window.
    fn timestamp_window(&self) -> Option<TimestampWindow> {
        self.timestamp_window.map(|window| TimestampWindow {
            now_ms: self.clock_ms(),
            window,
        })
    }

    fn queue_fault(&mut self, target: FaultTarget, fault: Fault, times: usize) {
        for _ in 0..times {
            match fault {
                Fault::CutDownload(bytes) => self.download_cuts.push_back(bytes),
                _ => self.faults.push_back((target, fault.clone())),
            }
        }
    }

    /// The first queued fault meant for this kind of request, taken.
    fn take_fault(&mut self, token_request: bool) -> Option<Fault> {
        let at = self
            .faults
            .iter()
            .position(|(target, _)| target.takes(token_request))?;
        self.faults.remove(at).map(|(_, fault)| fault)
    }
}

/// How the fake's signed API refuses a token, as gateways do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenRefusal {
    /// HTTP 401 (the default).
    #[default]
    Http401,
    /// HTTP 200 with a JSON body whose `status` is 1203.
    Status1203,
}

struct Shared {
    state: Mutex<State>,
    /// When the fake started: the API call log counts from here.
    started: std::time::Instant,
    stopping: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
    https: bool,
    log_requests: bool,
    /// See [`FakeGatewayConfig::path_prefix`] (without a trailing slash).
    path_prefix: String,
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
        let tls = config.tls.as_ref().map(server::server_config).transpose()?;
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
                token_refusal: TokenRefusal::default(),
                clock_skew_ms: 0,
                timestamp_window: config.timestamp_window,
                file_version: 0,
                download_cuts: VecDeque::new(),
                limits: limits::Limits::default(),
            }),
            started: std::time::Instant::now(),
            stopping: AtomicBool::new(false),
            https: tls.is_some(),
            tls,
            log_requests: config.log_requests,
            path_prefix: config.path_prefix.trim_end_matches('/').to_string(),
        });
        let acceptor_shared = shared.clone();
        let acceptor = thread::Builder::new()
            .name("fake-gateway-accept".into())
            .spawn(move || server::accept_loop(listener, acceptor_shared))?;
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

    /// The gateway URL to give a client: [`FakeGateway::url`] followed by
    /// the path prefix, if the fake has one (its control API answers under
    /// the prefix too).
    pub fn gateway_url(&self) -> String {
        format!("{}{}", self.url(), self.shared.path_prefix)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Shifts the fake's clock (its `Date` header and, with a timestamp
    /// window, what timestamps are checked against) by `skew_ms`.
    pub fn set_clock_skew(&self, skew_ms: i64) {
        self.shared.lock().clock_skew_ms = skew_ms;
    }

    /// See [`FakeGatewayConfig::timestamp_window`]; `None` turns it off.
    pub fn set_timestamp_window(&self, window: Option<Duration>) {
        self.shared.lock().timestamp_window = window;
    }

    /// Misbehaves once, on the next request (faults queue up in order).
    pub fn inject(&self, fault: Fault) {
        self.inject_times(fault, 1);
    }

    /// Misbehaves on the next `times` requests (a download cut: on the
    /// next `times` downloads).
    pub fn inject_times(&self, fault: Fault, times: usize) {
        self.inject_for(FaultTarget::Any, fault, times);
    }

    /// Misbehaves on the next `times` requests of the `target` kind only:
    /// a fault meant for an API call is not taken by the token Get before
    /// it. Requests of the other kind pass (a download cut: downloads only).
    pub fn inject_for(&self, target: FaultTarget, fault: Fault, times: usize) {
        self.shared.lock().queue_fault(target, fault, times);
    }

    /// Limits API calls to `per_second` per app key with a `burst`
    /// (answering 429 with `Retry-After`); `None` lifts the limit.
    pub fn set_rate_limit(&self, limit: Option<(f64, f64)>) {
        let body = match limit {
            Some((per_second, burst)) => json!({"perSecond": per_second, "burst": burst}),
            None => json!({"perSecond": 0}),
        };
        let _ = limits::set_rate_limit(&mut self.shared.lock(), &body);
    }

    /// API calls answer `status` for `duration` (or the next `times`
    /// calls), with `Retry-After: retry_after` when given; with `processed`
    /// the service acts on each call and only its answer is lost.
    pub fn set_outage(
        &self,
        status: u16,
        duration: Option<Duration>,
        times: Option<u64>,
        processed: bool,
        retry_after: Option<&str>,
    ) {
        let body = json!({"status": status, "ms": duration.map(|d| d.as_millis() as u64),
                          "times": times, "processed": processed, "retryAfter": retry_after});
        let _ = limits::set_outage(&mut self.shared.lock(), &body);
    }

    /// Every Get and Refresh answered so far (the last 100,000), oldest
    /// first: kind, app key, timestamp, when, status.
    pub fn token_requests(&self) -> Vec<TokenRequestSeen> {
        self.shared.lock().service.requests_seen()
    }

    /// Every API call so far (at most 100,000), oldest first, with its
    /// status and whether it was processed.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.shared.lock().limits.calls.iter().cloned().collect()
    }

    /// Changes every generated file (content and ETag) from now on.
    pub fn set_file_version(&self, version: u64) {
        self.shared.lock().file_version = version;
    }

    /// The size and SHA-256 of the generated file `file_uri` names
    /// (`enos-connect://…/<size>`), as downloads serve it now.
    pub fn file_digest(&self, file_uri: &str) -> Option<(u64, String)> {
        let version = self.shared.lock().file_version;
        let file = files::GeneratedFile::of(file_uri, version)?;
        Some((file.size, file.sha256()))
    }

    /// Forgets faults not yet applied.
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.faults.clear();
        state.download_cuts.clear();
    }

    /// How the signed API refuses a retired or expired token from now on.
    pub fn set_token_refusal(&self, refusal: TokenRefusal) {
        self.shared.lock().token_refusal = refusal;
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

fn gateway_status_of(answer: &Answer) -> Option<i32> {
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    i32::try_from(value.get("status")?.as_i64()?).ok()
}

/// Which token operation `path` is, under the fake's path prefix.
fn token_fetch(path: &str, prefix: &str) -> Option<Fetch> {
    match path.strip_prefix(prefix)? {
        crate::token_request::GET_TOKEN_PATH => Some(Fetch::Get),
        crate::token_request::REFRESH_TOKEN_PATH => Some(Fetch::Refresh),
        _ => None,
    }
}

/// What `GET /` answers.
pub const ENDPOINTS: &str = "enos-fake-gateway: a fake of the EnOS token service
POST [prefix]/apim-token-service/v2.0/token/get      Get Access Token
POST [prefix]/apim-token-service/v2.0/token/refresh  Refresh Access Token
POST|GET [prefix]/fake/v1/echo                       a signed test API: checks apim-accesstoken, apim-signature, apim-timestamp;
                                                     ?delayMs=N answers N ms later
GET  [prefix]/asset-service/v2.1/assets?orgId=ORG    a signed mock of EnOS's asset API: three assets of ORG
POST [prefix]/connect-service/v2.1/integration?action=postMeasurepoint|postAttribute|postEvent
                                                     EnOS's upload: multipart with an enos-message JSON part and enos-file parts,
                                                     each with its own Content-Length; answers each part's size and SHA-256
POST [prefix]/connect-service/v2.1/ota-firmwares?action=create
                                                     the same with a metadata part and a file part
GET  [prefix]/connect-service/v2.1/files?action=download&fileUri=enos-connect://.../SIZE
                                                     a generated file of SIZE bytes: ETag, Last-Modified, Range, If-Range
GET  /fake/control/stats                             counters as JSON
GET  /fake/control/file-digest?fileUri=URI           the size and SHA-256 of a generated file
POST /fake/control/files                             {\"version\": N}: every generated file changes (content and ETag)
POST /fake/control/rate-limit                        {\"perSecond\": 150, \"burst\": 20}: signed API calls past it get 429 with Retry-After (0: off)
POST /fake/control/outage                            {\"status\": 503, \"ms\": 5000 | \"times\": 2, \"processed\": false, \"retryAfter\": \"1\"}: signed API calls answer that status
GET  /fake/control/calls                             every signed API call: method, path, atMs, status, processed
GET  /fake/control/token-requests                    every Get and Refresh: kind, appKey, timestamp, atWallMs, status
POST /fake/control/fault                             {\"fault\": NAME, \"times\": N, \"target\": \"token\" | \"api\", ...}: the next N requests of that
                                                     kind (default: any) misbehave: http500, not-json, oversized (bytes, at most 64 GiB, generated as sent), delay (ms), drop, process-drop, truncated, redirect, status (status), cut-download (bytes: downloads only), clear
POST /fake/control/expire-tokens                     every token expires now
POST /fake/control/clock                             {\"skewMs\": N}: the fake's clock (its Date header, and what timestamps are
                                                     checked against) runs N ms ahead of the real clock (negative: behind)
POST /fake/control/timestamp-window                  {\"seconds\": N}: refuse token requests (1004) and API calls (401) whose
                                                     timestamp is more than N s from the fake's clock (0: off, the default)
POST /fake/control/token-refusal                     {\"form\": \"http-401\" | \"status-1203\"}: how the signed API refuses a retired, expired or unknown token (HTTP 401, the default, or HTTP 200 with status 1203, as gateways do)
Signed APIs check apim-signature over the query, and the body only when it is JSON.
The control paths answer with or without the path prefix.
";

fn route(request: &Request, shared: &Shared) -> Answer {
    if let Some(fetch) = token_fetch(&request.path, &shared.path_prefix) {
        if request.method != "POST" {
            return Answer::text(405, "text/plain", "use POST");
        }
        let mut state = shared.lock();
        let window = state.timestamp_window();
        let (status, envelope) = state.service.handle_within(fetch, &request.body, window);
        *state.stats.statuses.entry(status).or_default() += 1;
        return Answer::json(200, &envelope);
    }
    if request.path.ends_with("/fake/v1/echo") {
        return endpoints::echo(request, shared);
    }
    if request.path.ends_with("/asset-service/v2.1/assets") && request.method == "GET" {
        return endpoints::assets(request, shared);
    }
    if request.method == "GET" && (request.path == "/" || request.path.is_empty()) {
        return Answer::text(200, "text/plain", ENDPOINTS);
    }
    Answer::text(
        404,
        "text/plain",
        "no such path on the fake gateway (GET / lists them)",
    )
}
