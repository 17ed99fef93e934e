//! Transport failures, classified by cause.
//!
//! ureq reports many different causes through few variants: a refused
//! connection, a reset, and a certificate that rustls rejected all arrive as
//! `Error::Io`, the rustls error wrapped inside the `io::Error`. So the
//! classification looks inside I/O errors, and into their sources, before it
//! looks at the `io::ErrorKind`.

use std::io;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};

use super::trace::RequestTrace;
use super::{MAX_RESPONSE_BODY_BYTES, MAX_RESPONSE_HEADER_BYTES};
use crate::error::{Error, ErrorKind};

/// Where in the exchange the failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, sending, or waiting for the response head.
    Exchange,
    /// Reading the response body (a response had started).
    ResponseBody,
}

/// What the messages name, and what is known of the failed request.
pub struct Context<'a> {
    /// The gateway's `host:port`, and the proxy when one is used.
    pub authority: &'a str,
    pub via_proxy: bool,
    /// The gateway URL's scheme is `https`.
    pub https: bool,
    /// The CA file the client trusts instead of the Mozilla roots.
    pub ca_file: Option<&'a str>,
    /// Who issued the certificate the server presents (a new handshake),
    /// for the message of an untrusted one.
    pub presented_issuer: &'a dyn Fn() -> Option<String>,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// The largest response body accepted.
    pub body_limit: u64,
    pub phase: Phase,
    /// What happened inside the connector chain.
    pub trace: RequestTrace,
}

pub fn transport_error(error: ureq::Error, context: &Context<'_>) -> Error {
    let authority = context.authority;
    if let Some(mix_up) = scheme_mix_up(&error, context) {
        return mix_up;
    }
    match error {
        ureq::Error::Timeout(which) => timeout_error(which, context),
        ureq::Error::HostNotFound => Error::new(
            ErrorKind::Connect,
            format!("cannot resolve host {authority}: no address for that name"),
        ),
        ureq::Error::Io(io_error) => io_failure(io_error, context),
        ureq::Error::Rustls(tls) => tls_error(&tls, context),
        ureq::Error::Tls(what) => Error::new(
            ErrorKind::Tls,
            format!("TLS with {authority} failed: {what}"),
        ),
        ureq::Error::Protocol(protocol) if proxy_failed(context) => {
            failed_at_the_proxy(&protocol, context)
        }
        ureq::Error::Protocol(protocol) => Error::bad_response(format!(
            "malformed HTTP response from {authority}: {protocol}"
        )),
        ureq::Error::LargeResponseHeader(_, _) => Error::bad_response(format!(
            "response header section from {authority} over {} KiB",
            MAX_RESPONSE_HEADER_BYTES / 1024
        )),
        ureq::Error::BodyExceedsLimit(_) => {
            let limit = match context.body_limit {
                bytes if bytes % (1024 * 1024) == 0 => format!("{} MiB", bytes / (1024 * 1024)),
                bytes => format!("{bytes} bytes"),
            };
            let setting = if context.body_limit == MAX_RESPONSE_BODY_BYTES {
                ""
            } else {
                " (the limit set with enos_client_builder_set_max_response_bytes)"
            };
            Error::bad_response(format!("response body over {limit}{setting}"))
        }
        ureq::Error::ConnectionFailed => Error::new(
            ErrorKind::Connect,
            format!("could not connect to {authority}"),
        ),
        ureq::Error::InvalidProxyUrl => Error::invalid_argument("proxy URL is not valid"),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            Error::invalid_argument(format!(
                "request to {authority} could not be built: {error}"
            ))
        }
        ureq::Error::StatusCode(code) => Error::new(
            ErrorKind::HttpStatus,
            format!("HTTP status {code} from {authority}"),
        )
        .with_http_status(code),
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => Error::new(
            ErrorKind::HttpStatus,
            format!("{authority} answered with a redirect, which is not followed"),
        ),
        other => Error::new(
            ErrorKind::Connect,
            format!("transport failure talking to {authority}: {other}"),
        ),
    }
}

/// An `https://` URL for a server that speaks plain HTTP, or the reverse:
/// told by the first bytes the server sent, or by a server that closed the
/// connection in the middle of the TLS handshake.
fn scheme_mix_up(error: &ureq::Error, context: &Context<'_>) -> Option<Error> {
    let authority = context.authority;
    let trace = &context.trace;
    if context.via_proxy || matches!(error, ureq::Error::Timeout(_)) {
        return None;
    }
    if context.https && trace.server_spoke_http() {
        return Some(Error::new(
            ErrorKind::Tls,
            format!(
                "the server at {authority} answered in plain HTTP, not TLS: use http:// \
                 (TLS handshake failed: {error})"
            ),
        ));
    }
    if !context.https && trace.server_spoke_tls() {
        return Some(Error::bad_response(format!(
            "the server at {authority} answered in TLS, not plain HTTP: use https:// ({error})"
        )));
    }
    let closed = match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
        _ => false,
    };
    if context.https && trace.connect_failed && closed && trace.first_bytes == [0, 0] {
        return Some(Error::new(
            ErrorKind::Tls,
            format!(
                "the server at {authority} closed the connection during the TLS handshake \
                 without a word: if it speaks plain HTTP, use http:// ({error})"
            ),
        ));
    }
    // Plain HTTP to a port that speaks TLS: a server that resets or closes
    // at the sight of a plaintext request, on a connection opened for it.
    if !context.https
        && trace.opened_connection
        && !trace.answer_started
        && closed
        && trace.first_bytes == [0, 0]
    {
        return Some(Error::new(
            ErrorKind::Connect,
            format!(
                "connection to {authority} closed before a response ({error}): if that port \
                 speaks TLS (443, 8443, ...), use https://"
            ),
        ));
    }
    None
}

/// A plain-HTTP request answered by a web server's page saying the port
/// wants HTTPS (nginx: "The plain HTTP request was sent to HTTPS port").
pub(crate) fn https_port_page(status: u16, body: &[u8]) -> bool {
    status == 400
        && String::from_utf8_lossy(&body[..body.len().min(4096)])
            .to_ascii_lowercase()
            .contains("sent to https port")
}

fn timeout_error(which: ureq::Timeout, context: &Context<'_>) -> Error {
    let authority = context.authority;
    let connect_ms = context.connect_timeout.as_millis();
    let total_ms = context.total_timeout.as_millis();
    let message = match which {
        ureq::Timeout::Connect => {
            format!("connect to {authority} timed out after {connect_ms} ms")
        }
        ureq::Timeout::Resolve => {
            format!("host name lookup for {authority} timed out")
        }
        _ => format!("no complete answer from {authority} within the {total_ms} ms deadline"),
    };
    Error::new(ErrorKind::Timeout, message)
}

/// The connection through a proxy could not be opened, and not for a TLS
/// reason: what went wrong was the proxy's.
fn proxy_failed(context: &Context<'_>) -> bool {
    context.via_proxy && context.trace.connect_failed
}

fn failed_at_the_proxy(error: &dyn std::fmt::Display, context: &Context<'_>) -> Error {
    Error::new(
        ErrorKind::Connect,
        format!(
            "connect to {} failed at the proxy: {error}",
            context.authority
        ),
    )
}

fn io_failure(error: io::Error, context: &Context<'_>) -> Error {
    let authority = context.authority;
    if let Some(tls) = find_rustls_error(&error) {
        return tls_error(tls, context);
    }
    if let Some(lookup) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<super::dns::HostLookupFailed>())
    {
        return Error::new(ErrorKind::Connect, lookup.to_string());
    }
    use io::ErrorKind as Io;
    match (error.kind(), context.phase) {
        (Io::ConnectionRefused, _) => Error::new(
            ErrorKind::Connect,
            format!("connect to {authority} refused"),
        ),
        (Io::TimedOut | Io::WouldBlock, _) => timeout_error(ureq::Timeout::Global, context),
        (Io::HostUnreachable | Io::NetworkUnreachable | Io::AddrNotAvailable, _) => Error::new(
            ErrorKind::Connect,
            format!("{authority} is unreachable ({error})"),
        ),
        (
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof,
            Phase::Exchange,
        ) => Error::new(
            ErrorKind::Connect,
            format!("connection to {authority} closed before a response ({error})"),
        ),
        (
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof,
            Phase::ResponseBody,
        ) => Error::bad_response(format!(
            "response body from {authority} truncated: connection closed before its end ({error})"
        )),
        (Io::InvalidData | Io::InvalidInput | Io::Other, _) if proxy_failed(context) => {
            failed_at_the_proxy(&error, context)
        }
        (Io::InvalidData | Io::InvalidInput, _) => {
            Error::bad_response(format!("malformed HTTP response from {authority}: {error}"))
        }
        _ => Error::new(
            ErrorKind::Connect,
            format!("I/O error talking to {authority}: {error}"),
        ),
    }
}

/// The rustls error inside an I/O error, looking through wrapped sources.
fn find_rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = error
        .get_ref()
        .map(|e| e as &(dyn std::error::Error + 'static));
    while let Some(inner) = current {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(ureq::Error::Rustls(tls)) = inner.downcast_ref::<ureq::Error>() {
            return Some(tls);
        }
        current = inner.source();
    }
    None
}

fn tls_error(error: &rustls::Error, context: &Context<'_>) -> Error {
    let authority = context.authority;
    let message = match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => {
                let issued_by = match (context.presented_issuer)() {
                    Some(issuer) => format!("issued by \"{issuer}\""),
                    None => "its issuer unknown here".to_string(),
                };
                match context.ca_file {
                    Some(ca_file) => format!(
                        "TLS: the certificate chain of {authority} does not lead to the CA \
                         in {ca_file}: the server presented a certificate {issued_by}"
                    ),
                    None => format!(
                        "TLS: certificate of {authority} is not trusted (unknown issuer: \
                         {issued_by}; set a CA file if the gateway uses a private CA)"
                    ),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS: certificate of {authority} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS: certificate of {authority} is not valid yet")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("TLS: certificate of {authority} is not valid for that host name")
            }
            _ => format!("TLS: certificate of {authority} rejected: {error}"),
        },
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
        | rustls::Error::PeerIncompatible(_) => format!(
            "TLS handshake with {authority} failed: the server offers no TLS version or \
             cipher suite in common (TLS 1.2 or 1.3 required): {error}"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "TLS handshake with {authority} failed: the server did not answer with TLS \
             (plain HTTP on an HTTPS port?): {error}"
        ),
        other if context.trace.connect_failed => {
            format!("TLS handshake with {authority} failed: {other}")
        }
        other => format!("TLS error on the established connection to {authority}: {other}"),
    };
    Error::new(ErrorKind::Tls, message)
}
