//! HTTP to one gateway: URL handling, our HTTP/1.1 on direct connections
//! ([`direct`], [`http1`]), the ureq agent for connections through a proxy,
//! and the translation of every transport failure into an [`Error`] by cause.
//!
//! One [`Transport`] serves one gateway URL. It keeps its connections alive
//! (our pool, or ureq's through a proxy), resolves host names only when it
//! opens a new connection (see [`dns`]), and spawns no thread on a call that
//! reuses a pooled connection. Both paths open connections through the same
//! connector chain (our TCP, ureq's TLS and proxy connectors).

mod answer;
mod buffers;
mod cancel;
mod classify;
pub(crate) use classify::https_port_page;
mod coalesce;
mod connector;
mod direct;
mod dns;
mod exchange;
mod forward;
#[cfg(feature = "fuzzing")]
pub(crate) mod http1;
#[cfg(not(feature = "fuzzing"))]
mod http1;
mod peer_issuer;
mod proxy;
mod tcp;
mod trace;
mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ureq::Agent;
use ureq::config::AutoHeaderValue;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::Error;
use crate::fork::ForkSafeMutex;
pub(crate) use answer::{AnswerBody, Delivery};
pub(crate) use cancel::{
    Cancellation, POLL_INTERVAL, in_scope as cancellable, is_cancelled,
    sleep as sleep_unless_cancelled,
};
pub(crate) use exchange::{Attempt, Exchange, OutgoingBody, Timing, WholeAnswer};
pub(crate) use peer_issuer::certificate_presented_by;
pub(crate) use proxy::choose as choose_proxy;
pub use proxy::{PROXY_ENVIRONMENT_VARIABLES, ProxySetting};
pub use url::GatewayUrl;
pub(crate) use url::{explicit_port, without_user_info};

/// Responses larger than this are refused (`ErrorKind::BadResponse`).
pub const MAX_RESPONSE_BODY_BYTES: u64 = 1024 * 1024;
/// A response header section larger than this is refused.
const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;
/// Default time allowed to open a connection (TCP, proxy and TLS handshakes).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole call, connection included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`Transport`] connects. The defaults match the C contract.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Time allowed to open a connection (TCP, proxy, TLS).
    pub connect_timeout: Duration,
    /// Time allowed for a whole call, from start to the last body byte.
    pub total_timeout: Duration,
    /// Trust exactly these roots instead of the Mozilla roots.
    pub ca_certificates: Option<Arc<Vec<Certificate<'static>>>>,
    /// The file they came from, for messages.
    pub ca_file: Option<String>,
    /// Which proxy to use, if any.
    pub proxy: ProxySetting,
    /// Idle connections kept for reuse (as many as calls run at once).
    pub max_idle_connections: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            ca_certificates: None,
            ca_file: None,
            proxy: ProxySetting::FromEnvironment,
            max_idle_connections: 64,
        }
    }
}

/// Reads the PEM certificates of a CA file, for [`TransportOptions::ca_certificates`].
pub fn read_ca_file(path: &str) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::invalid_argument(format!("cannot read CA file {path}: {e}")))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {} // private keys and the like are not roots: skip them
            Err(e) => {
                return Err(Error::invalid_argument(format!(
                    "CA file {path} is not valid PEM: {e}"
                )));
            }
        }
    }
    if certificates.is_empty() {
        return Err(Error::invalid_argument(format!(
            "CA file {path} holds no PEM certificate"
        )));
    }
    Ok(certificates)
}

/// A complete HTTP answer: status code and body (at most
/// [`MAX_RESPONSE_BODY_BYTES`]). The body, which holds a token, is zeroed
/// when the answer is dropped.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Drop for HttpAnswer {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.body);
    }
}

/// How requests reach the gateway: directly, through a proxy that ureq
/// tunnels through (SOCKS, or CONNECT for HTTPS), or through an HTTP proxy
/// that forwards them (plain HTTP).
#[derive(Clone, Default)]
struct Route {
    tunnel: Option<ureq::Proxy>,
    forwarding: Option<Arc<forward::Forwarding>>,
}

impl Route {
    fn through(proxy: Option<ureq::Proxy>, gateway: &GatewayUrl) -> Route {
        match proxy {
            Some(proxy) => match forward::Forwarding::for_proxy(&proxy, gateway) {
                Some(forwarding) => Route {
                    tunnel: None,
                    forwarding: Some(Arc::new(forwarding)),
                },
                None => Route {
                    tunnel: Some(proxy),
                    forwarding: None,
                },
            },
            None => Route::default(),
        }
    }

    fn via_proxy(&self) -> bool {
        self.tunnel.is_some() || self.forwarding.is_some()
    }
}

/// An agent (a connection pool with its settings) for these options.
fn new_agent(options: &TransportOptions, route: &Route, dns: &Arc<dns::DnsCache>) -> Agent {
    let root_certs = match &options.ca_certificates {
        Some(certificates) => RootCerts::new_with_certs(certificates),
        None => RootCerts::WebPki,
    };
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        .max_redirects_will_error(false)
        .save_redirect_history(false)
        .https_only(false)
        .proxy(route.tunnel.clone())
        .tls_config(TlsConfig::builder().root_certs(root_certs).build())
        .timeout_global(Some(options.total_timeout))
        .timeout_connect(Some(options.connect_timeout))
        .max_response_header_size(MAX_RESPONSE_HEADER_BYTES)
        .max_idle_connections(options.max_idle_connections)
        .max_idle_connections_per_host(options.max_idle_connections)
        .accept_encoding(AutoHeaderValue::None)
        .accept("application/json")
        .user_agent(concat!("enos-token/", env!("CARGO_PKG_VERSION")))
        .build();
    Agent::with_parts(
        config,
        connector::ResolveOnConnect::new(dns.clone(), route.forwarding.clone()),
        dns::CachingResolver::new(dns.clone(), route.forwarding.is_some()),
    )
}

/// Connections to one gateway, with their options. `Send + Sync`.
///
/// The connections belong to one process: a forked child that uses an
/// inherited transport gets a new agent (new connections, new TLS sessions)
/// and never sends a byte on its parent's connections.
pub struct Transport {
    agent: ForkSafeMutex<AgentSlot>,
    gateway: GatewayUrl,
    /// How messages name the peer: `host:port`, plus the proxy when there is one.
    peer: String,
    options: TransportOptions,
    route: Route,
    dns: Arc<dns::DnsCache>,
    /// Our own HTTP/1.1 on direct connections; `None` through a proxy
    /// (ureq's).
    direct: Option<direct::Direct>,
}

impl std::fmt::Debug for Transport {
    // Not the agent, its configuration or the proxy URL: they may hold a
    // proxy password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("gateway", &self.gateway.as_str())
            .field("peer", &self.peer)
            .field("connect_timeout", &self.options.connect_timeout)
            .field("total_timeout", &self.options.total_timeout)
            .field("proxy", &self.options.proxy)
            .finish_non_exhaustive()
    }
}

/// This process's agent (its connection pool) and how many requests use it.
#[derive(Debug)]
struct AgentSlot {
    agent: Agent,
    fork_generation: u64,
    requests_in_progress: Arc<AtomicUsize>,
}

/// Counts a request as in progress on its agent until dropped.
struct RequestInProgress(Arc<AtomicUsize>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Whether the last send on this thread failed while opening its
/// connection (TCP, proxy or TLS handshake): then nothing was sent.
pub(crate) fn last_connect_failed() -> bool {
    trace::current().connect_failed
}

impl Transport {
    /// Prepares connections to `gateway`; opens none yet.
    pub fn new(gateway: GatewayUrl, options: TransportOptions) -> Result<Self, Error> {
        let proxy = proxy::choose(&options.proxy, &gateway)?;
        // Never the proxy URL itself: it may hold a password.
        let peer = match &proxy {
            Some(proxy) => format!(
                "{} (via proxy {}:{})",
                gateway.authority(),
                proxy.host(),
                proxy.port()
            ),
            None => gateway.authority(),
        };
        let dns = Arc::new(dns::DnsCache::new(&gateway));
        let route = Route::through(proxy, &gateway);
        let agent = new_agent(&options, &route, &dns);
        let direct = (!route.via_proxy())
            .then(|| {
                direct::Direct::new(
                    &gateway,
                    dns.clone(),
                    options.max_idle_connections,
                    options.connect_timeout,
                )
            })
            .flatten();
        Ok(Transport {
            agent: ForkSafeMutex::new(AgentSlot {
                agent,
                fork_generation: crate::fork::generation(),
                requests_in_progress: Arc::default(),
            }),
            gateway,
            peer,
            options,
            route,
            dns,
            direct,
        })
    }

    /// This process's agent, counted as in use until the guard is dropped.
    /// In a forked child, the inherited agent is replaced: its idle
    /// connections are closed without a byte sent (the parent's copies stay
    /// open), or, if a request of the parent was using it at the fork, left
    /// alone entirely.
    fn agent(&self) -> (Agent, RequestInProgress) {
        let mut slot = self.agent.lock();
        let fork_generation = crate::fork::generation();
        if slot.fork_generation != fork_generation {
            let fresh = AgentSlot {
                agent: new_agent(&self.options, &self.route, &self.dns),
                fork_generation,
                requests_in_progress: Arc::default(),
            };
            let inherited = std::mem::replace(&mut *slot, fresh);
            if inherited.requests_in_progress.load(Ordering::Acquire) == 0 {
                drop(inherited);
            } else {
                // Another thread of the parent was inside it: its state may
                // be half-updated. Never touch it.
                std::mem::forget(inherited);
            }
        }
        slot.requests_in_progress.fetch_add(1, Ordering::Acquire);
        let in_progress = RequestInProgress(slot.requests_in_progress.clone());
        (slot.agent.clone(), in_progress)
    }

    /// Closes every connection, making requests in progress fail at once;
    /// later requests fail too. For a client being freed. Does nothing to
    /// connections inherited from a parent process.
    pub fn shutdown(&self) {
        let slot = self.agent.lock();
        if slot.fork_generation == crate::fork::generation() {
            slot.agent.clone().shutdown();
        }
        drop(slot);
        if let Some(direct) = &self.direct {
            direct.shutdown();
        }
    }

    /// The URL a request to `path` goes to (no user info or query: the
    /// gateway URL has none).
    pub fn url_of(&self, path: &str) -> String {
        self.gateway.join(path)
    }

    /// How many real DNS lookups this transport has made (IP literals need none).
    pub fn dns_lookups(&self) -> u64 {
        self.dns.lookups()
    }
}
