//! Gateway URLs, checked: a scheme of http or https, a host, a port from 1
//! to 65535 (the `http` crate's parser would fall back to the default port
//! for `:99999`), no user info, query or fragment; and messages that never
//! echo user info.

use ureq::http::Uri;

use crate::error::Error;

/// A validated gateway address: `http(s)://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayUrl {
    /// The URL without trailing slashes; paths are appended to it.
    base: String,
    host: String,
    port: u16,
    https: bool,
}

impl GatewayUrl {
    /// Checks `url` and keeps it for appending paths: the scheme must be
    /// `http` or `https`, a host is required, and user info, a query or a
    /// fragment are refused. A path prefix and trailing slashes are fine.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let refuse = |why: &str| Err(Error::invalid_argument(format!("gateway URL {why}")));
        if url.is_empty() {
            return refuse("is empty");
        }
        if url.len() > 2048 {
            return refuse("is longer than 2048 bytes");
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("contains white space or control characters");
        }
        // Never echo user info: it may hold a password.
        let shown = without_user_info(url);
        let uri: Uri = match url.parse() {
            Ok(uri) => uri,
            Err(_) => return refuse(&format!("\"{shown}\" is not a valid URL")),
        };
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return refuse(&format!("has scheme \"{other}\"; use http or https")),
            None => {
                return refuse(&format!(
                    "\"{shown}\" has no scheme; use http:// or https://"
                ));
            }
        };
        let Some(authority) = uri.authority() else {
            return refuse(&format!("\"{shown}\" has no host"));
        };
        if authority.as_str().contains('@') {
            return refuse("must not contain user info (user@host)");
        }
        if authority.host().is_empty() {
            return refuse(&format!("\"{shown}\" has no host"));
        }
        if uri.query().is_some() || url.contains('#') {
            return refuse("must not contain a query or fragment");
        }
        if uri
            .path()
            .to_ascii_lowercase()
            .contains("/apim-token-service/")
        {
            return Err(Error::invalid_argument(format!(
                "gateway URL \"{shown}\" holds the token path: the gateway URL is the API \
                 gateway's base address (for example https://<apim-gateway host>), not the \
                 token endpoint"
            )));
        }
        let port = explicit_port(authority.as_str())
            .map_err(|why| Error::invalid_argument(format!("gateway URL {why}")))?
            .unwrap_or(if https { 443 } else { 80 });
        Ok(GatewayUrl {
            base: url.trim_end_matches('/').to_string(),
            host: authority.host().trim_matches(['[', ']']).to_string(),
            port,
            https,
        })
    }

    /// The port, explicit or the scheme's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `base` + `path`, where `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `host:port`, as used in messages.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host name or IP address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True for `https://`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The URL as given, without trailing slashes.
    pub fn as_str(&self) -> &str {
        &self.base
    }
}

/// `url` with any `user:password@` before the host replaced by `…@`, also
/// in a malformed URL (`http//user:pw@host`, `user:pw@host`).
pub(crate) fn without_user_info(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    match url[..end].rfind('@') {
        Some(at) => {
            let start = url[..at].find("//").map_or(0, |slashes| slashes + 2);
            format!("{}…{}", &url[..start], &url[at..])
        }
        None => url.to_string(),
    }
}

/// The port written in an authority (`[user@]host[:port]`), checked: `None`
/// when there is none (or it is empty), an error naming it when it is not a
/// number from 1 to 65535. The `http` crate's parser would silently fall back
/// to the scheme's default port for `:99999` or `:8080x`.
pub(crate) fn explicit_port(authority: &str) -> Result<Option<u16>, String> {
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    let port = match host_and_port.rsplit_once(']') {
        Some((_, after_bracket)) => after_bracket.strip_prefix(':'),
        None => host_and_port.rsplit_once(':').map(|(_, port)| port),
    };
    match port {
        None | Some("") => Ok(None),
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(number))
            }
            _ => Err(format!(
                "has an invalid port \"{}\" (use 1-65535)",
                crate::error::sanitize_for_message(port, 20)
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        let url = GatewayUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(url.join("/a"), "http://127.0.0.1:8080/a");
        assert_eq!(url.authority(), "127.0.0.1:8080");
        let url = GatewayUrl::parse("https://gw.example.com/prefix//").unwrap();
        assert_eq!(url.join("/a"), "https://gw.example.com/prefix/a");
        assert_eq!(url.authority(), "gw.example.com:443");
        assert!(url.is_https());
        let url = GatewayUrl::parse("HTTP://[::1]:9/").unwrap();
        assert_eq!(url.authority(), "[::1]:9");
        assert_eq!(url.host(), "::1");
        for (bad, port) in [
            ("http://127.0.0.1:99999/", "99999"),
            ("http://host:8080x/", "8080x"),
            ("https://host:65536", "65536"),
            ("http://host:0/", "0"),
            ("http://[::1]:70000/", "70000"),
            ("http://host:+80/", "+80"),
        ] {
            let e = GatewayUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
            assert!(
                e.message().contains(&format!("invalid port \"{port}\"")),
                "{bad}: {}",
                e.message()
            );
        }
        assert_eq!(GatewayUrl::parse("http://h:65535").unwrap().port, 65535);
        for with_password in [
            "user:hunter2@gw.example.com",
            "ftp://user:hunter2@gw/x",
            "http://user:hunter2@",
        ] {
            let e = GatewayUrl::parse(with_password).unwrap_err();
            assert!(!e.message().contains("hunter2"), "{}", e.message());
        }
        let e = GatewayUrl::parse("user:hunter2@gw.example.com").unwrap_err();
        assert_eq!(
            e.message(),
            "gateway URL \"…@gw.example.com\" has no scheme; use http:// or https://"
        );
        assert_eq!(GatewayUrl::parse("http://h:/").unwrap().port, 80);
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x/",
            "http://",
            "http://user:pw@host/",
            "http://host/?q=1",
            "http://host/#f",
            "http://ho st/",
            "http://host/\n",
        ] {
            let e = GatewayUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
            assert!(e.message().starts_with("gateway URL"), "{}", e.message());
        }
    }
}
