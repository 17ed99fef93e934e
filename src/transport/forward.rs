//! Plain-HTTP requests through an HTTP proxy, forwarded the way libcurl does:
//! the connection goes to the proxy and each request names its target in
//! absolute form (`POST http://gateway:8080/path HTTP/1.1`), with
//! `Proxy-Authorization` when the proxy URL has credentials. ureq would open
//! a CONNECT tunnel instead, which many proxies allow only to port 443
//! (tinyproxy's `ConnectPort`, Squid's `SSL_ports`). HTTPS keeps CONNECT.

use ureq::Proxy;
use ureq::ProxyProtocol;

use super::GatewayUrl;

/// Where requests go instead of the gateway, and how they are rewritten.
#[derive(Clone)]
pub(crate) struct Forwarding {
    /// `http://host:port` of the gateway, prefixed to each request target.
    origin: String,
    pub(crate) proxy_host: String,
    pub(crate) proxy_port: u16,
    /// The whole `Proxy-Authorization: Basic …\r\n` line, if any.
    authorization: Option<String>,
}

impl std::fmt::Debug for Forwarding {
    // Not the authorization line: it holds the proxy password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field(
                "proxy",
                &format_args!("{}:{}", self.proxy_host, self.proxy_port),
            )
            .finish_non_exhaustive()
    }
}

impl Forwarding {
    /// Forwarding through `proxy` to `gateway`, when that is how libcurl
    /// would do it: an `http://` proxy and an `http://` gateway.
    pub(crate) fn for_proxy(proxy: &Proxy, gateway: &GatewayUrl) -> Option<Forwarding> {
        if gateway.is_https() || proxy.protocol() != ProxyProtocol::Http {
            return None;
        }
        let authorization = proxy.username().map(|user| {
            let credentials = format!("{user}:{}", proxy.password().unwrap_or(""));
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64(credentials.as_bytes())
            )
        });
        Some(Forwarding {
            origin: format!("http://{}", gateway.authority()),
            proxy_host: proxy.host().trim_matches(['[', ']']).to_string(),
            proxy_port: proxy.port(),
            authorization,
        })
    }

    /// `request` (a whole request as ureq wrote it, head first) with its
    /// target in absolute form and the proxy's credentials added. Anything
    /// that does not start with an origin-form request line is left alone.
    pub(crate) fn rewrite(&self, request: &[u8]) -> Option<Vec<u8>> {
        let line_end = request.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&request[..line_end]).ok()?;
        let (method, rest) = line.split_once(' ')?;
        if !rest.starts_with('/') {
            return None;
        }
        let mut out = Vec::with_capacity(request.len() + self.origin.len() + 64);
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.origin.as_bytes());
        out.extend_from_slice(rest.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(authorization) = &self.authorization {
            out.extend_from_slice(authorization.as_bytes());
        }
        out.extend_from_slice(&request[line_end + 2..]);
        Some(out)
    }
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarding(proxy: &str, gateway: &str) -> Option<Forwarding> {
        let proxy = Proxy::new(proxy).unwrap();
        Forwarding::for_proxy(&proxy, &GatewayUrl::parse(gateway).unwrap())
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn only_plain_http_through_an_http_proxy_is_forwarded() {
        assert!(forwarding("http://p:3128", "http://gw:8080/").is_some());
        assert!(forwarding("http://p:3128", "https://gw/").is_none());
        assert!(forwarding("socks5://p:1080", "http://gw/").is_none());
        assert!(forwarding("https://p:3128", "http://gw/").is_none());
    }

    #[test]
    fn the_request_line_names_the_target_and_credentials_follow() {
        let forwarding = forwarding("http://us%40er:p%3Ass@p:3128", "http://gw:8080/pre").unwrap();
        let request =
            b"POST /pre/apim-token-service/v2.0/token/get HTTP/1.1\r\nHost: gw:8080\r\n\r\n{}";
        let rewritten = String::from_utf8(forwarding.rewrite(request).unwrap()).unwrap();
        assert_eq!(
            rewritten,
            "POST http://gw:8080/pre/apim-token-service/v2.0/token/get HTTP/1.1\r\n\
             Proxy-Authorization: Basic dXNAZXI6cDpzcw==\r\nHost: gw:8080\r\n\r\n{}"
        );
        assert!(!format!("{forwarding:?}").contains("dXNAZXI6cDpzcw=="));
        assert!(forwarding.rewrite(b"garbage").is_none());
        assert!(
            forwarding
                .rewrite(b"POST http://x/ HTTP/1.1\r\n\r\n")
                .is_none()
        );
    }
}
