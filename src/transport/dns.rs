//! Name resolution only when a connection is opened (and the connector that
//! wraps each new connection in a [`CoalescingTransport`]).
//!
//! ureq asks its resolver for the target's addresses on *every* request,
//! before it looks in its connection pool, and its default resolver spawns a
//! thread per lookup whenever a timeout is set. For a client that calls the
//! same gateway over a kept-alive connection that is a DNS lookup and a thread
//! per call, for nothing.
//!
//! Here the resolver answers the per-request question from a cache (an IP
//! literal needs no lookup at all), and the connector, which ureq runs only
//! when the pool has no connection, refreshes a cached answer that has grown
//! older than [`REFRESH_AFTER`] before it connects. So a pooled call never
//! looks a name up, and a new connection never uses an address older than
//! that. Actual lookups go to ureq's default resolver, which honours the
//! deadline.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ureq::Error as UreqError;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    SocksConnector, Transport,
};

use super::GatewayUrl;
use super::coalesce::CoalescingTransport;
use super::forward::Forwarding;
use super::tcp::TcpConnector;
use crate::fork::ForkSafeMutex;

/// A cached answer older than this is looked up again before a new connection.
const REFRESH_AFTER: Duration = Duration::from_secs(30);

/// Addresses per `host:port`, shared by the resolver and the connector.
#[derive(Debug)]
pub struct DnsCache {
    /// `host:port` of the gateway: the only name ureq resolves before the pool.
    gateway_key: String,
    entries: ForkSafeMutex<HashMap<String, (ResolvedSocketAddrs, Instant)>>,
    lookups: AtomicU64,
    fallback: DefaultResolver,
}

impl DnsCache {
    pub fn new(gateway: &GatewayUrl) -> Self {
        DnsCache {
            gateway_key: gateway.authority(),
            entries: ForkSafeMutex::new(HashMap::new()),
            lookups: AtomicU64::new(0),
            fallback: DefaultResolver::default(),
        }
    }

    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// The cached answer for `key`, when it is at most `max_age` old.
    fn cached(&self, key: &str, max_age: Option<Duration>) -> Option<ResolvedSocketAddrs> {
        let entries = self.entries.lock();
        let (addrs, at) = entries.get(key)?;
        match max_age {
            Some(max_age) if at.elapsed() > max_age => None,
            _ => Some(addrs.clone()),
        }
    }

    fn look_up(
        &self,
        key: String,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, UreqError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let addrs = self.fallback.resolve(uri, config, timeout)?;
        let mut entries = self.entries.lock();
        if entries.len() > 64 {
            entries.clear(); // a bound, not a policy: one gateway and a proxy are typical
        }
        entries.insert(key, (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}

/// `host:port` of a URI, with the scheme's default port; `None` without a host.
fn host_and_port(uri: &Uri) -> Option<(String, u16)> {
    let authority = uri.authority()?;
    let port = authority.port_u16().or_else(|| match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        Some(s) if s.starts_with("socks") => Some(1080),
        _ => None,
    })?;
    Some((authority.host().trim_matches(['[', ']']).to_string(), port))
}

fn key_of(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The resolver handed to ureq: IP literals directly, names from the cache.
/// Through a forwarding proxy the gateway is the proxy's to resolve: ureq
/// gets no address for it (the connector connects to the proxy).
#[derive(Debug)]
pub struct CachingResolver {
    cache: Arc<DnsCache>,
    forwarding: bool,
}

impl CachingResolver {
    pub fn new(cache: Arc<DnsCache>, forwarding: bool) -> Self {
        CachingResolver { cache, forwarding }
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, UreqError> {
        let Some((host, port)) = host_and_port(uri) else {
            return self.cache.fallback.resolve(uri, config, timeout);
        };
        let key = key_of(&host, port);
        if self.forwarding && key == self.cache.gateway_key {
            return Ok(self.empty());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        // The gateway is resolved before every pool look-up: any cached answer
        // will do (the connector refreshes it before a new connection). Other
        // names (a proxy) are resolved only when connecting: keep them fresh.
        let max_age = (key != self.cache.gateway_key).then_some(REFRESH_AFTER);
        match self.cache.cached(&key, max_age) {
            Some(addrs) => Ok(addrs),
            None => self.cache.look_up(key, uri, config, timeout),
        }
    }
}

/// The connector chain (ureq's, with our TCP at the system-call floor: SOCKS,
/// CONNECT, TCP, TLS), preceded by a refresh of stale addresses (or, through
/// a forwarding proxy, by the proxy's addresses).
#[derive(Debug)]
pub struct ResolveOnConnect {
    cache: Arc<DnsCache>,
    inner: Box<dyn Connector<(), Out = Box<dyn Transport>>>,
    forwarding: Option<Arc<Forwarding>>,
}

impl ResolveOnConnect {
    pub fn new(cache: Arc<DnsCache>, forwarding: Option<Arc<Forwarding>>) -> Self {
        let chain =
            ().chain(SocksConnector::default())
                .chain(ConnectProxyConnector::default())
                .chain(TcpConnector)
                .chain(RustlsConnector::default());
        ResolveOnConnect {
            cache,
            inner: Box::new(BoxedTransport(chain)),
            forwarding,
        }
    }
}

/// A connector whose transport is boxed, so that the chain has one type.
#[derive(Debug)]
struct BoxedTransport<C>(C);

impl<C: Connector<()>> Connector<()> for BoxedTransport<C> {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, UreqError> {
        let transport = self.0.connect(details, chained)?;
        Ok(transport.map(|t| Box::new(t) as Box<dyn Transport>))
    }
}

impl Connector<()> for ResolveOnConnect {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, UreqError> {
        let connected = self.connect_fresh(details, chained);
        super::trace::opened_connection(connected.is_err());
        connected
    }
}

impl ResolveOnConnect {
    /// Refreshes a stale address, then connects.
    fn connect_fresh(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Box<dyn Transport>>, UreqError> {
        if let Some(forwarding) = &self.forwarding {
            let proxy = key_of(&forwarding.proxy_host, forwarding.proxy_port);
            let proxy_uri: Uri = format!("http://{proxy}/")
                .parse()
                .map_err(|_| UreqError::InvalidProxyUrl)?;
            let resolver = CachingResolver::new(self.cache.clone(), false);
            let addrs = resolver.resolve(&proxy_uri, details.config, details.timeout)?;
            return self.connect_coalescing(&details.with_addrs(addrs), chained);
        }
        let stale_name = host_and_port(details.uri)
            .filter(|(host, _)| !details.addrs.is_empty() && host.parse::<IpAddr>().is_err());
        let Some((host, port)) = stale_name else {
            return self.connect_coalescing(details, chained);
        };
        let key = key_of(&host, port);
        if self.cache.cached(&key, Some(REFRESH_AFTER)).is_some() {
            return self.connect_coalescing(details, chained);
        }
        let addrs = self
            .cache
            .look_up(key, details.uri, details.config, details.timeout)?;
        self.connect_coalescing(&details.with_addrs(addrs), chained)
    }

    /// The default chain's transport, sending each request in one write.
    fn connect_coalescing(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Box<dyn Transport>>, UreqError> {
        let transport = self.inner.connect(details, chained)?;
        Ok(transport.map(|inner| {
            Box::new(CoalescingTransport::new(inner, self.forwarding.clone())) as Box<dyn Transport>
        }))
    }
}

/// The same connection details with other addresses.
trait WithAddrs<'a> {
    fn with_addrs(&self, addrs: ResolvedSocketAddrs) -> ConnectionDetails<'a>;
}

impl<'a> WithAddrs<'a> for ConnectionDetails<'a> {
    fn with_addrs(&self, addrs: ResolvedSocketAddrs) -> ConnectionDetails<'a> {
        ConnectionDetails {
            uri: self.uri,
            addrs,
            config: self.config,
            request_level: self.request_level,
            resolver: self.resolver,
            now: self.now,
            timeout: self.timeout,
            current_time: self.current_time.clone(),
            run_connector: self.run_connector.clone(),
            register_shutdown: self.register_shutdown.clone(),
        }
    }
}
