//! Proxy selection, the way libcurl does it.
//!
//! By default the environment decides: for an `https://` gateway
//! `https_proxy`/`HTTPS_PROXY`, for an `http://` one `http_proxy`/`HTTP_PROXY`,
//! then `all_proxy`/`ALL_PROXY` for both; `no_proxy`/`NO_PROXY` lists hosts
//! that bypass it. A loopback gateway (`localhost`, `127.0.0.0/8`, `::1`: a
//! fake gateway in tests, a local tunnel) never goes through a proxy from the
//! environment, as Go's `net/http` decides. An explicit setting overrides the
//! environment (a loopback gateway included), and the empty string turns
//! proxies off. Since a client talks to one gateway, the choice is made once,
//! when the client is built.

use ureq::Proxy;

use super::GatewayUrl;
use crate::error::Error;

/// Every environment variable that can choose a proxy.
pub const PROXY_ENVIRONMENT_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Which proxy a client uses.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ProxySetting {
    /// Read the proxy environment variables when the client is built (default).
    FromEnvironment,
    /// Connect directly, whatever the environment says.
    Disabled,
    /// Use this proxy (`http://`, `https://`, `socks4://`, `socks4a://`,
    /// `socks5://` or `socks5h://`; a URL without a scheme is `http://`).
    Url(String),
}

impl std::fmt::Debug for ProxySetting {
    // Never the URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxySetting::FromEnvironment => f.write_str("FromEnvironment"),
            ProxySetting::Disabled => f.write_str("Disabled"),
            ProxySetting::Url(_) => f.write_str("Url(<redacted>)"),
        }
    }
}

impl ProxySetting {
    /// Validates a caller's proxy URL; `""` means [`ProxySetting::Disabled`].
    pub fn from_url(url: &str) -> Result<Self, Error> {
        if url.is_empty() {
            return Ok(ProxySetting::Disabled);
        }
        parse_proxy(url, "proxy URL")?;
        Ok(ProxySetting::Url(url.to_string()))
    }
}

/// The proxy for `gateway` under `setting`, or `None` to connect directly.
pub fn choose(setting: &ProxySetting, gateway: &GatewayUrl) -> Result<Option<Proxy>, Error> {
    match setting {
        ProxySetting::Disabled => Ok(None),
        ProxySetting::Url(url) => parse_proxy(url, "proxy URL").map(Some),
        ProxySetting::FromEnvironment => from_environment(gateway, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }),
    }
}

fn from_environment(
    gateway: &GatewayUrl,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, Error> {
    let names: &[&str] = if gateway.is_https() {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, url)) = names
        .iter()
        .find_map(|name| read(name).map(|value| (*name, value)))
    else {
        return Ok(None);
    };
    let no_proxy = read("no_proxy").or_else(|| read("NO_PROXY"));
    if is_loopback(gateway.host())
        || no_proxy.is_some_and(|list| no_proxy_matches(&list, gateway.host()))
    {
        return Ok(None);
    }
    parse_proxy(&url, &format!("the {name} environment variable")).map(Some)
}

/// `localhost` (and names below it), an address of 127.0.0.0/8, or ::1.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// libcurl's rule: `*` matches every host; otherwise each comma- or
/// space-separated entry (a leading dot ignored) matches the host itself and
/// every name below it, case-insensitively.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches('.').trim_matches(['[', ']']);
            let entry = entry.to_ascii_lowercase();
            host == entry
                || (host.len() > entry.len()
                    && host.ends_with(&entry)
                    && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
        })
}

/// Parses a proxy URL; the message names `what` but never echoes the URL,
/// which may hold a proxy password.
fn parse_proxy(url: &str, what: &str) -> Result<Proxy, Error> {
    let scheme_ok = match url.split_once("://") {
        Some((scheme, _)) => matches!(
            scheme.to_ascii_lowercase().as_str(),
            "http" | "https" | "socks4" | "socks4a" | "socks5" | "socks5h" | "socks"
        ),
        None => true,
    };
    if !scheme_ok {
        return Err(Error::invalid_argument(format!(
            "{what} has an unsupported scheme: use http://, https://, socks4://, socks4a://, socks5:// or socks5h://"
        )));
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    super::explicit_port(authority)
        .map_err(|why| Error::invalid_argument(format!("{what} {why}")))?;
    Proxy::new(url).map_err(|_| Error::invalid_argument(format!("{what} is not a valid proxy URL")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn proxy_host(gateway: &str, pairs: &[(&str, &str)]) -> Option<String> {
        let gateway = GatewayUrl::parse(gateway).unwrap();
        from_environment(&gateway, &env(pairs))
            .unwrap()
            .map(|p| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn environment_follows_scheme_then_all_proxy() {
        let vars = [
            ("HTTPS_PROXY", "http://secure:1"),
            ("http_proxy", "http://plain:2"),
            ("ALL_PROXY", "socks5://all:3"),
        ];
        assert_eq!(proxy_host("https://gw/", &vars), Some("secure:1".into()));
        assert_eq!(proxy_host("http://gw/", &vars), Some("plain:2".into()));
        assert_eq!(
            proxy_host("https://gw/", &[("ALL_PROXY", "socks5://all:3")]),
            Some("all:3".into())
        );
        assert_eq!(
            proxy_host("https://gw/", &[("http_proxy", "http://p:1")]),
            None
        );
    }

    #[test]
    fn no_proxy_like_libcurl() {
        fn with(no: &str) -> [(&str, &str); 2] {
            [("HTTP_PROXY", "http://p:1"), ("NO_PROXY", no)]
        }
        assert_eq!(
            proxy_host("http://gw.example.com/", &with("example.com")),
            None
        );
        assert_eq!(
            proxy_host("http://gw.example.com/", &with(".example.com")),
            None
        );
        assert_eq!(
            proxy_host("http://GW.example.com/", &with("gw.example.com")),
            None
        );
        assert_eq!(
            proxy_host("http://127.0.0.1:9/", &with("localhost, 127.0.0.1")),
            None
        );
        assert_eq!(proxy_host("http://anything/", &with("*")), None);
        assert_eq!(
            proxy_host("http://notexample.com/", &with("example.com")),
            Some("p:1".into())
        );
        assert_eq!(proxy_host("http://gw/", &with("other")), Some("p:1".into()));
    }

    #[test]
    fn a_loopback_gateway_never_takes_the_environments_proxy() {
        let vars = [("HTTP_PROXY", "http://p:1"), ("HTTPS_PROXY", "http://p:1")];
        for url in [
            "http://127.0.0.1:8080/",
            "http://127.9.9.9/",
            "https://localhost:8443/",
            "http://api.localhost/",
            "http://[::1]:8080/",
        ] {
            assert_eq!(proxy_host(url, &vars), None, "{url}");
        }
        assert_eq!(proxy_host("http://10.0.0.1/", &vars), Some("p:1".into()));
        assert_eq!(
            proxy_host("http://localhost.example/", &vars),
            Some("p:1".into())
        );
        // An explicit proxy still applies, a loopback gateway included.
        let gateway = GatewayUrl::parse("http://127.0.0.1:8080/").unwrap();
        let setting = ProxySetting::from_url("http://p:1").unwrap();
        assert!(choose(&setting, &gateway).unwrap().is_some());
    }

    #[test]
    fn explicit_setting_validated_and_empty_disables() {
        assert_eq!(ProxySetting::from_url("").unwrap(), ProxySetting::Disabled);
        assert!(ProxySetting::from_url("socks5://127.0.0.1:1080").is_ok());
        assert!(ProxySetting::from_url("http://u:p@127.0.0.1:3128").is_ok());
        let e = ProxySetting::from_url("ftp://u:hunter2@h:1").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(!e.message().contains("hunter2"));
        let gateway = GatewayUrl::parse("http://gw/").unwrap();
        assert!(choose(&ProxySetting::Disabled, &gateway).unwrap().is_none());
        for bad in ["http://u:hunter2@p:99999", "socks5://p:1080x", "p:65536"] {
            let e = ProxySetting::from_url(bad).unwrap_err();
            assert!(e.message().contains("invalid port"), "{bad}: {e}");
            assert!(!e.message().contains("hunter2"));
        }
        let e = from_environment(&gateway, &env(&[("http_proxy", "http://p:123456")])).unwrap_err();
        assert_eq!(
            e.message(),
            "the http_proxy environment variable has an invalid port \"123456\" (use 1-65535)"
        );
    }
}
