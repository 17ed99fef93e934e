//! The connector ureq runs for each new connection: it refreshes a stale
//! address of the gateway (or, through a forwarding proxy, finds the
//! proxy's), then runs the chain (SOCKS, CONNECT, our TCP, TLS) and wraps
//! the connection in a [`CoalescingTransport`] (one write per request).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use ureq::Error as UreqError;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectProxyConnector, ConnectionDetails, Connector, RustlsConnector, ShutdownHandle,
    SocksConnector, Transport,
};

use super::coalesce::CoalescingTransport;
use super::dns::{CachingResolver, DnsCache, REFRESH_AFTER, host_and_port, key_of};
use super::forward::Forwarding;
use super::tcp::TcpConnector;

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
        let key = key_of(host, port);
        if self.cache.cached(&key, Some(REFRESH_AFTER)).is_some() {
            return self.connect_coalescing(details, chained);
        }
        let addrs = self
            .cache
            .look_up(key, details.uri, details.config, details.timeout)?;
        self.connect_coalescing(&details.with_addrs(addrs), chained)
    }

    /// The default chain's transport, sending each request in one write.
    /// Every shutdown handle the chain registers (TCP, SOCKS, proxy) is also
    /// kept by the connection, and registered with the current call's
    /// cancellation (see `cancel.rs`), so that a cancel can shut it down.
    fn connect_coalescing(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Box<dyn Transport>>, UreqError> {
        let handles: Arc<Mutex<Vec<Weak<dyn ShutdownHandle>>>> = Arc::default();
        let kept = handles.clone();
        let agent_registers = details.register_shutdown.clone();
        let details = ConnectionDetails {
            register_shutdown: Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
                super::cancel::register(&handle);
                kept.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(handle.clone());
                agent_registers(handle)
            }),
            ..details.with_addrs(details.addrs.clone())
        };
        let transport = self.inner.connect(&details, chained)?;
        let handles = std::mem::take(&mut *handles.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(transport.map(|inner| {
            Box::new(CoalescingTransport::new(
                inner,
                self.forwarding.clone(),
                handles,
            )) as Box<dyn Transport>
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
