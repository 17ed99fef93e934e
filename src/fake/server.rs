//! The fake's server side: accepting connections (plain or TLS), reading
//! requests, applying the injected faults, and answering.

use std::io::{self, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::endpoints;
use super::files::{self, FileApi};
use super::http::{self, Answer, ReadError, Request};
use super::limits::{self, Gate};
use super::service::Fetch;
use super::{
    Fault, MAX_OVERSIZED_BYTES, Shared, TlsIdentity, gateway_status_of, route, token_fetch,
};

pub(super) fn server_config(identity: &TlsIdentity) -> io::Result<Arc<rustls::ServerConfig>> {
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

pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        // At most MAX_CONNECTIONS at once (a thread each): the others wait
        // in the listen backlog.
        while shared.lock().connections.len() >= super::MAX_CONNECTIONS {
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        let stream = listener.accept().map(|(stream, _)| stream);
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
        let read = http::read_head(&mut reader).and_then(|mut request| {
            // An upload's body is streamed by its endpoint; any other is read now.
            if !matches!(
                files::file_api(&request),
                Some(FileApi::Integration | FileApi::Firmware)
            ) {
                http::read_body(&mut reader, &mut request)?;
            }
            Ok(request)
        });
        let request = match read {
            Ok(request) => request,
            Err(ReadError::Closed) | Err(ReadError::Broken) => return,
            Err(ReadError::Reject(status, why)) => {
                let answer = Answer::text(status, "text/plain", why);
                let _ = http::write_answer(reader.get_mut(), &answer, false);
                return;
            }
        };
        let keep_alive = request.keep_alive();
        let outcome = respond(&request, shared, &mut reader, keep_alive);
        if !matches!(outcome, Ok(true)) || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Writes `answer` with a `Date` header: the fake's clock, the real one
/// moved by the skew set through the control API.
fn write_dated<W: Write>(
    stream: &mut W,
    mut answer: Answer,
    keep_alive: bool,
    shared: &Shared,
) -> io::Result<()> {
    add_date(&mut answer, shared);
    http::write_answer(stream, &answer, keep_alive)
}

/// The head of `answer` with its `Date`, for a body of `content_length`
/// bytes sent separately.
fn dated_head(answer: &Answer, content_length: u64, keep_alive: bool, shared: &Shared) -> Vec<u8> {
    let mut answer = answer.clone();
    add_date(&mut answer, shared);
    http::head_bytes(&answer, content_length, keep_alive)
}

/// The `Date` header by the fake's clock (the real one, shifted by the
/// `clock` control).
fn add_date(answer: &mut Answer, shared: &Shared) {
    answer.extra_headers.push((
        "Date".into(),
        crate::time::http_date::format(shared.clock_ms().div_euclid(1000)),
    ));
}

/// Answers one request; `Ok(true)` when the connection may serve another
/// one, `Err` or `Ok(false)` closes it.
fn respond<S: io::Read + Write>(
    request: &Request,
    shared: &Shared,
    reader: &mut io::BufReader<S>,
    keep_alive: bool,
) -> io::Result<bool> {
    if shared.log_requests {
        eprintln!("enos-fake-gateway: {} {}", request.method, request.path);
    }
    let under_prefix = request
        .path
        .strip_prefix(shared.path_prefix.as_str())
        .filter(|rest| rest.starts_with("/fake/control/"));
    if request.path.starts_with("/fake/control/") || under_prefix.is_some() {
        let mut control = request.clone();
        if let Some(rest) = under_prefix {
            control.path = rest.to_string();
        }
        let answer = endpoints::control(&control, shared);
        return write_dated(reader.get_mut(), answer, keep_alive, shared).map(|()| keep_alive);
    }
    let api = files::file_api(request);
    // A fault answers an upload without reading its body: close afterwards.
    let keep_alive = keep_alive && !request.body_unread;
    let fault = {
        let mut state = shared.lock();
        state.stats.requests += 1;
        if state.recent.len() >= 32 {
            state.recent.pop_front();
        }
        state.recent.push_back(request.clone());
        let fetch = token_fetch(&request.path, &shared.path_prefix);
        match fetch {
            Some(Fetch::Get) => state.stats.get_requests += 1,
            Some(Fetch::Refresh) => state.stats.refresh_requests += 1,
            None => {}
        }
        let fault = state.take_fault(fetch.is_some());
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
        Some(Fault::ProcessThenDrop) => {
            match api {
                Some(FileApi::Integration | FileApi::Firmware) => {
                    drop(files::upload(
                        reader,
                        request,
                        shared,
                        api.unwrap_or(FileApi::Integration),
                    )?);
                }
                Some(FileApi::Download) => {}
                None => drop(route(request, shared)),
            }
            return Err(io::Error::other("fault: processed, then dropped"));
        }
        Some(Fault::Oversized(bytes)) => {
            let stream = reader.get_mut();
            send_oversized(stream, bytes.min(MAX_OVERSIZED_BYTES), keep_alive, shared)?;
            return Ok(keep_alive);
        }
        Some(Fault::Truncated) => {
            let body = br#"{"status":0,"msg":"SUCCESS","data":{"accessToken":"tr"#;
            let answer = Answer::text(200, "application/json", &body[..]);
            let stream = reader.get_mut();
            stream.write_all(&http::head_bytes(&answer, body.len() as u64 + 100, true))?;
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
                Fault::Delay(_)
                | Fault::DropConnection
                | Fault::ProcessThenDrop
                | Fault::Truncated
                | Fault::Oversized(_)
                | Fault::CutDownload(_) => unreachable!(),
            };
            if let Some(status) = gateway_status_of(&answer) {
                if token_fetch(&request.path, &shared.path_prefix).is_some() {
                    *shared.lock().stats.statuses.entry(status).or_default() += 1;
                }
            }
            return write_dated(reader.get_mut(), answer, keep_alive, shared).map(|()| keep_alive);
        }
    }
    let api_call = token_fetch(&request.path, &shared.path_prefix).is_none()
        && !(request.method == "GET" && request.path == "/");
    if !api_call {
        let answer = route(request, shared);
        return write_dated(reader.get_mut(), answer, keep_alive, shared).map(|()| keep_alive);
    }
    let started = shared.started;
    let (answer, processed) = match limits::gate(request, shared) {
        Gate::Pass => {
            let answer = match api {
                Some(FileApi::Download) => {
                    let served = files::download(reader.get_mut(), request, shared, keep_alive);
                    let status = served.as_ref().map_or(200, |(_, status)| *status);
                    let mut state = shared.lock();
                    limits::record(&mut state, request, started, status, status < 300);
                    return served.map(|(keep_alive, _)| keep_alive);
                }
                Some(api) => files::upload(reader, request, shared, api)?,
                None => route(request, shared),
            };
            let processed = (200..300).contains(&answer.status);
            (answer, processed)
        }
        Gate::Refuse(answer) => {
            if request.body_unread {
                http::discard(reader, request.body_length)?;
            }
            (answer, false)
        }
        Gate::ProcessThenAnswer(answer) => {
            match api {
                Some(FileApi::Download) => {}
                Some(api) => drop(files::upload(reader, request, shared, api)?),
                None => drop(route(request, shared)),
            }
            (answer, true)
        }
    };
    limits::record(
        &mut shared.lock(),
        request,
        started,
        answer.status,
        processed,
    );
    let keep_alive = request.keep_alive();
    write_dated(reader.get_mut(), answer, keep_alive, shared).map(|()| keep_alive)
}

/// HTTP 200 with a JSON body of `bytes` bytes (at least its frame),
/// `{"status":0,"padding":"xxx…"}`, generated as it is sent: a client that
/// stops reading at its limit costs the fake no memory.
fn send_oversized(
    stream: &mut impl Write,
    bytes: u64,
    keep_alive: bool,
    shared: &Shared,
) -> io::Result<()> {
    const OPENING: &[u8] = br#"{"status":0,"padding":""#;
    const CLOSING: &[u8] = br#""}"#;
    let frame = (OPENING.len() + CLOSING.len()) as u64;
    let bytes = bytes.max(frame);
    let answer = Answer::text(200, "application/json", Vec::new());
    stream.write_all(&dated_head(&answer, bytes, keep_alive, shared))?;
    stream.write_all(OPENING)?;
    let padding = [b'x'; 64 * 1024];
    let mut left = bytes - frame;
    while left > 0 {
        if shared.stopping.load(Ordering::SeqCst) {
            return Err(io::Error::other("the fake is stopping"));
        }
        let now = left.min(padding.len() as u64) as usize;
        stream.write_all(&padding[..now])?;
        left -= now as u64;
    }
    stream.write_all(CLOSING)?;
    stream.flush()
}
