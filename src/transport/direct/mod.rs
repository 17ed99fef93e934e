//! Requests on direct connections (no proxy): our own HTTP/1.1 exchange
//! ([`super::http1`]) over the connector chain's transports (our TCP,
//! rustls), with a pool of idle connections that belongs to one process.
//!
//! ureq's request machine costs more than the rest of a small call (its
//! state machine, header maps, URI parsing, timers) and reads a streamed
//! body through a per-byte trace loop; a direct connection needs none of
//! that. Calls through a proxy still go through ureq.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::Resolver;
use ureq::unversioned::transport::Transport as Connection;
use ureq::unversioned::transport::time as ureq_time;
use ureq::unversioned::transport::{ConnectionDetails, Connector, NextTimeout, ShutdownHandle};

mod body;
mod pool;

pub(crate) use body::DirectBody;
use pool::{Pool, Taken};

use super::connector::ResolveOnConnect;
use super::dns::{CachingResolver, DnsCache};
use super::exchange::{Attempt, OutgoingBody, Timing};
use super::http1::{self, Head, Malformed};
use super::{GatewayUrl, MAX_RESPONSE_HEADER_BYTES};
use crate::fork::ForkSafeMutex;

/// Direct connections to one gateway.
pub(crate) struct Direct {
    connector: ResolveOnConnect,
    resolver: CachingResolver,
    /// The gateway's scheme and authority, for the connector chain (TLS
    /// names the host from it).
    uri: Uri,
    /// The `Host` header: the authority as the URL wrote it.
    host: String,
    /// The gateway URL's path, put before every request's path.
    path_prefix: String,
    pool: Arc<ForkSafeMutex<Pool>>,
    max_idle: usize,
    connect_timeout: Duration,
}

/// The time left, as ureq's transports take it.
pub(crate) fn timeout_until(
    deadline: Option<Instant>,
    limit: Option<(Duration, ureq::Timeout)>,
) -> NextTimeout {
    let mut after = ureq_time::Duration::NotHappening;
    let mut reason = ureq::Timeout::Global;
    if let Some(deadline) = deadline {
        after = deadline.saturating_duration_since(Instant::now()).into();
    }
    if let Some((limit, limited_by)) = limit {
        if ureq_time::Duration::from(limit) < after {
            (after, reason) = (limit.into(), limited_by);
        }
    }
    NextTimeout {
        after,
        reason,
        per_read: None,
        per_write: None,
    }
}

impl Timing {
    /// The deadline and the limit of one step of the exchange.
    pub(crate) fn step(&self, reason: ureq::Timeout) -> NextTimeout {
        match *self {
            Timing::Whole(deadline) => timeout_until(Some(deadline), None),
            Timing::Streamed { stall, cap } => timeout_until(cap, Some((stall, reason))),
        }
    }
}

impl Direct {
    pub(crate) fn new(
        gateway: &GatewayUrl,
        dns: Arc<DnsCache>,
        max_idle: usize,
        connect_timeout: Duration,
    ) -> Option<Direct> {
        let uri: Uri = gateway.as_str().parse().ok()?;
        let host = uri.authority()?.as_str().to_string();
        let path_prefix = uri.path().trim_end_matches('/').to_string();
        Some(Direct {
            connector: ResolveOnConnect::new(dns.clone(), None),
            resolver: CachingResolver::new(dns, false),
            uri,
            host,
            path_prefix,
            pool: Arc::new(ForkSafeMutex::new(Pool::new())),
            max_idle,
            connect_timeout,
        })
    }

    /// Closes every connection; requests in progress fail at once, later
    /// ones cannot connect. Nothing of a parent process is touched.
    pub(crate) fn shutdown(&self) {
        let mut pool = self.pool.lock();
        let pool = pool.for_this_process();
        pool.shut_down = true;
        pool.idle.clear();
        for handle in pool.handles.drain(..) {
            if let Some(handle) = handle.upgrade() {
                handle.shutdown();
            }
        }
    }

    /// An idle connection that is still open, or a new one.
    fn take(&self, config: &Config, timing: &Timing) -> Result<Taken, ureq::Error> {
        let (idle, fork_generation, in_use) = {
            let mut pool = self.pool.lock();
            let pool = pool.for_this_process();
            pool.in_use.fetch_add(1, Ordering::Acquire);
            let mut found = None;
            while let Some(mut connection) = pool.idle.pop() {
                if connection.is_open() {
                    found = Some(connection);
                    break;
                }
            }
            (found, pool.fork_generation, pool.in_use.clone())
        };
        let mut taken = Taken {
            pool: self.pool.clone(),
            connection: idle,
            fork_generation,
            in_use,
            max_idle: self.max_idle,
        };
        if taken.connection.is_none() {
            taken.connection = Some(self.connect(config, timing)?);
        }
        // Tells the connection's buffers that our exchange drives them
        // (see `buffers.rs`); nothing is left in them to consume.
        taken.connection().buffers().input_consume(0);
        Ok(taken)
    }

    fn connect(
        &self,
        config: &Config,
        timing: &Timing,
    ) -> Result<Box<dyn Connection>, ureq::Error> {
        let deadline = match *timing {
            Timing::Whole(deadline) => Some(deadline),
            Timing::Streamed { cap, .. } => cap,
        };
        let timeout = timeout_until(
            deadline,
            Some((self.connect_timeout, ureq::Timeout::Connect)),
        );
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let addrs = self.resolver.resolve(&self.uri, config, timeout)?;
        let pool = Arc::downgrade(&self.pool);
        let register_shutdown = Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
            let Some(pool) = pool.upgrade() else {
                return Err(ureq::Error::ConnectionFailed);
            };
            let mut pool = pool.lock();
            let pool = pool.for_this_process();
            if pool.shut_down {
                return Err(ureq::Error::ConnectionFailed);
            }
            pool.handles.retain(|kept| kept.strong_count() > 0);
            pool.handles.push(handle);
            Ok(())
        });
        let details = ConnectionDetails {
            uri: &self.uri,
            addrs,
            config,
            request_level: false,
            resolver: &self.resolver,
            now: ureq_time::Instant::now(),
            timeout,
            current_time: Arc::new(ureq_time::Instant::now),
            // Only a CONNECT proxy runs the chain again: never here.
            run_connector: Arc::new(|_: &ConnectionDetails| Err(ureq::Error::ConnectionFailed)),
            register_shutdown,
        };
        self.connector
            .connect(&details, None)?
            .ok_or(ureq::Error::ConnectionFailed)
    }

    /// Sends `attempt` and reads the answer's head (skipping informational
    /// answers). The body is left on the connection.
    pub(crate) fn send(
        &self,
        config: &Config,
        method: &str,
        path_and_query: &str,
        attempt: &mut Attempt<'_>,
        timing: &Timing,
    ) -> Result<(Head, Taken), ureq::Error> {
        let mut taken = self.take(config, timing)?;
        let connection = taken.connection();
        self.write_request(connection, method, path_and_query, attempt, timing)?;
        loop {
            let head = read_head(connection, timing)?;
            match head.status {
                101 => {
                    return Err(malformed(Malformed::Head(
                        "a protocol switch (101) nobody asked for",
                    )));
                }
                100..=199 => continue,
                _ => return Ok((head, taken)),
            }
        }
    }

    fn write_request(
        &self,
        connection: &mut dyn Connection,
        method: &str,
        path_and_query: &str,
        attempt: &mut Attempt<'_>,
        timing: &Timing,
    ) -> Result<(), ureq::Error> {
        let target = format!("{}{}", self.path_prefix, path_and_query);
        let caller_has = |name: &str| {
            attempt
                .extra_headers
                .iter()
                .any(|(header, _)| header.eq_ignore_ascii_case(name))
        };
        let defaults = [
            (!caller_has("user-agent")).then_some(("user-agent", USER_AGENT)),
            (!caller_has("accept")).then_some(("accept", "application/json")),
        ];
        let headers = defaults
            .into_iter()
            .flatten()
            .chain(
                attempt
                    .headers
                    .iter()
                    .map(|(name, value)| (*name, value.as_str())),
            )
            .chain(
                attempt
                    .extra_headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
        // Checked where they are made; checked again here, where a CR or
        // LF would split the request.
        let splits = |text: &str| text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
        if splits(&target)
            || attempt.headers.iter().any(|(_, value)| splits(value))
            || attempt
                .extra_headers
                .iter()
                .any(|(name, value)| splits(name) || splits(value))
        {
            return Err(ureq::Error::BadUri(
                "a request path or header holds CR, LF or NUL".into(),
            ));
        }
        let body_length = match &attempt.body {
            OutgoingBody::Bytes(bytes) => bytes.len() as u64,
            OutgoingBody::Stream { length, .. } => *length,
        };
        let announce = body_length > 0 || matches!(method, "POST" | "PUT" | "PATCH");
        let mut head = Vec::with_capacity(512);
        http1::write_head(
            &mut head,
            method,
            &target,
            &self.host,
            headers,
            announce.then_some(body_length),
        );
        let written = send_bytes(connection, &head, timing);
        crate::secret::wipe(&mut head); // it holds the token
        written?;
        match &mut attempt.body {
            OutgoingBody::Bytes(bytes) => send_bytes(connection, bytes, timing),
            OutgoingBody::Stream { length, reader } => {
                send_stream(connection, *length, reader, timing)
            }
        }
    }
}

const USER_AGENT: &str = concat!("enos-token/", env!("CARGO_PKG_VERSION"));

pub(super) fn malformed(what: Malformed) -> ureq::Error {
    let message = match what {
        Malformed::Head(what) | Malformed::Body(what) => what,
        Malformed::HeadTooLarge => {
            return ureq::Error::LargeResponseHeader(
                MAX_RESPONSE_HEADER_BYTES,
                MAX_RESPONSE_HEADER_BYTES,
            );
        }
    };
    ureq::Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        message,
    ))
}

/// Copies `bytes` into the connection's output and sends them.
fn send_bytes(
    connection: &mut dyn Connection,
    mut bytes: &[u8],
    timing: &Timing,
) -> Result<(), ureq::Error> {
    while !bytes.is_empty() {
        let output = connection.buffers().output();
        let amount = bytes.len().min(output.len());
        output[..amount].copy_from_slice(&bytes[..amount]);
        connection.transmit_output(amount, timing.step(ureq::Timeout::SendBody))?;
        bytes = &bytes[amount..];
    }
    Ok(())
}

/// Sends exactly `length` bytes read from `reader`.
fn send_stream(
    connection: &mut dyn Connection,
    length: u64,
    reader: &mut Box<dyn Read + '_>,
    timing: &Timing,
) -> Result<(), ureq::Error> {
    let mut left = length;
    while left > 0 {
        let output = connection.buffers().output();
        let room = output
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = match reader.read(&mut output[..room]) {
            Ok(0) => {
                return Err(ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the request body ended before its length",
                )));
            }
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ureq::Error::Io(e)),
        };
        connection.transmit_output(read, timing.step(ureq::Timeout::SendBody))?;
        left -= read as u64;
    }
    Ok(())
}

/// Reads until a whole head is in, and consumes it.
fn read_head(connection: &mut dyn Connection, timing: &Timing) -> Result<Head, ureq::Error> {
    loop {
        let input = connection.buffers().input();
        if let Some((head, used)) =
            http1::parse_head(input, MAX_RESPONSE_HEADER_BYTES).map_err(malformed)?
        {
            connection.buffers().input_consume(used);
            return Ok(head);
        }
        let timeout = timing.step(ureq::Timeout::RecvResponse);
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        if !connection.await_input(timeout)? {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
    }
}
