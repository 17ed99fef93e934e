//! Name resolution only when a connection is opened.
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
use ureq::unversioned::transport::NextTimeout;

use super::GatewayUrl;
use crate::fork::ForkSafeMutex;

/// A cached answer older than this is looked up again before a new connection.
pub(super) const REFRESH_AFTER: Duration = Duration::from_secs(30);

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
    pub(super) fn cached(
        &self,
        key: &str,
        max_age: Option<Duration>,
    ) -> Option<ResolvedSocketAddrs> {
        let entries = self.entries.lock();
        let (addrs, at) = entries.get(key)?;
        match max_age {
            Some(max_age) if at.elapsed() > max_age => None,
            _ => Some(addrs.clone()),
        }
    }

    pub(super) fn look_up(
        &self,
        key: String,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, UreqError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let host = || host_and_port(uri).map_or_else(String::new, |(host, _)| host.to_string());
        let addrs = self
            .fallback
            .resolve(uri, config, timeout)
            .map_err(|error| match error {
                UreqError::HostNotFound => {
                    HostLookupFailed::error(host(), "no address for that name".into())
                }
                UreqError::Io(e) => HostLookupFailed::error(host(), e.to_string()),
                other => other,
            })?;
        let mut entries = self.entries.lock();
        if entries.len() > 64 {
            entries.clear(); // a bound, not a policy: one gateway and a proxy are typical
        }
        entries.insert(key, (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}

/// A host name that did not resolve, and the system's word on it.
#[derive(Debug)]
pub(crate) struct HostLookupFailed {
    pub(crate) host: String,
    pub(crate) cause: String,
}

impl HostLookupFailed {
    fn error(host: String, cause: String) -> UreqError {
        UreqError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            HostLookupFailed { host, cause },
        ))
    }
}

impl std::fmt::Display for HostLookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot resolve host {}: {}", self.host, self.cause)
    }
}

impl std::error::Error for HostLookupFailed {}

/// `host:port` of a URI, with the scheme's default port; `None` without a host.
pub(super) fn host_and_port(uri: &Uri) -> Option<(&str, u16)> {
    let authority = uri.authority()?;
    let port = authority.port_u16().or_else(|| match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        Some(s) if s.starts_with("socks") => Some(1080),
        _ => None,
    })?;
    Some((authority.host().trim_matches(['[', ']']), port))
}

/// Whether `key` is `key_of(host, port)`, without making it (this runs
/// before every pool look-up).
fn is_key_of(key: &str, host: &str, port: u16) -> bool {
    let after_host = if host.contains(':') {
        key.strip_prefix('[')
            .and_then(|rest| rest.strip_prefix(host))
            .and_then(|rest| rest.strip_prefix(']'))
    } else {
        key.strip_prefix(host)
    };
    after_host
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|digits| {
            (digits == "0" || !digits.starts_with('0'))
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse() == Ok(port)
        })
}

pub(super) fn key_of(host: &str, port: u16) -> String {
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
        let gateway = is_key_of(&self.cache.gateway_key, host, port);
        if self.forwarding && gateway {
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
        let (key, max_age) = if gateway {
            (
                std::borrow::Cow::Borrowed(self.cache.gateway_key.as_str()),
                None,
            )
        } else {
            (
                std::borrow::Cow::Owned(key_of(host, port)),
                Some(REFRESH_AFTER),
            )
        };
        match self.cache.cached(&key, max_age) {
            Some(addrs) => Ok(addrs),
            None => self.cache.look_up(key.into_owned(), uri, config, timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_recognised_exactly_as_key_of_makes_it() {
        let cases = [
            ("gateway.example", 443),
            ("127.0.0.1", 8080),
            ("::1", 80),
            ("h", 0),
        ];
        for (host, port) in cases {
            let key = key_of(host, port);
            assert!(is_key_of(&key, host, port), "{key}");
            for (other_host, other_port) in cases {
                if (other_host, other_port) != (host, port) {
                    assert!(!is_key_of(&key, other_host, other_port), "{key}");
                }
            }
        }
        assert!(!is_key_of("gateway.example:0443", "gateway.example", 443));
        assert!(!is_key_of("gateway.example:443x", "gateway.example", 443));
        assert!(!is_key_of(
            "gateway.example.evil:443",
            "gateway.example",
            443
        ));
        assert!(!is_key_of("::1:80", "::1", 80));
    }
}
