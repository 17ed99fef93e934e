//! Get and Refresh: the safe Rust core behind the C API.
//!
//! A [`Client`] holds one gateway's connections and one application's
//! credentials, and may be shared by any number of threads. The one-shot
//! functions [`get_access_token`] and [`refresh_access_token`] reuse a
//! process-wide connection pool per gateway, so calling them in a loop costs
//! no new TCP or TLS handshake per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::response::{Token, parse_token_answer};
use crate::secret::AppSecret;
use crate::signing;
use crate::timestamp::next_request_timestamp_ms;
use crate::transport::{GatewayUrl, ProxySetting, Transport, TransportOptions, read_ca_file};

/// Path of the Get Access Token operation, appended to the gateway URL.
pub const GET_TOKEN_PATH: &str = "/apim-token-service/v2.0/token/get";
/// Path of the Refresh Access Token operation, appended to the gateway URL.
pub const REFRESH_TOKEN_PATH: &str = "/apim-token-service/v2.0/token/refresh";

/// An application's identity at the gateway.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    pub app_key: String,
    pub app_secret: AppSecret,
}

impl Credentials {
    pub fn new(app_key: &str, app_secret: &str) -> Result<Self, Error> {
        if app_key.is_empty() {
            return Err(Error::invalid_argument("app key is empty"));
        }
        let app_secret = AppSecret::new(app_secret);
        if app_secret.is_empty() {
            return Err(Error::invalid_argument("app secret is empty"));
        }
        Ok(Credentials {
            app_key: app_key.to_string(),
            app_secret,
        })
    }
}

/// The JSON body of Get (without `accessToken`) and Refresh.
#[derive(Serialize)]
struct TokenRequest<'a> {
    #[serde(rename = "appKey")]
    app_key: &'a str,
    encryption: String,
    timestamp: i64,
    #[serde(rename = "accessToken", skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
}

/// One Get (`refresh_of` = `None`) or Refresh request, with a fresh timestamp.
pub(crate) fn request_token(
    transport: &Transport,
    credentials: &Credentials,
    refresh_of: Option<&str>,
) -> Result<Token, Error> {
    if refresh_of.is_some_and(str::is_empty) {
        return Err(Error::invalid_argument("access token to refresh is empty"));
    }
    let timestamp = next_request_timestamp_ms();
    let request = TokenRequest {
        app_key: &credentials.app_key,
        encryption: signing::encryption(&credentials.app_key, timestamp, &credentials.app_secret),
        timestamp,
        access_token: refresh_of,
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| Error::new(crate::ErrorKind::Internal, format!("request body: {e}")))?;
    let path = match refresh_of {
        None => GET_TOKEN_PATH,
        Some(_) => REFRESH_TOKEN_PATH,
    };
    let answer = transport.post_json(path, &body)?;
    parse_token_answer(&answer)
}

/// Options for a [`Client`]; checked as they are set.
#[derive(Debug)]
pub struct ClientBuilder {
    gateway: GatewayUrl,
    credentials: Credentials,
    transport: TransportOptions,
}

impl ClientBuilder {
    /// Starts a client for `gateway_url` (`http(s)://host[:port][/prefix]`)
    /// and the application `app_key`/`app_secret` (both non-empty).
    pub fn new(gateway_url: &str, app_key: &str, app_secret: &str) -> Result<Self, Error> {
        Ok(ClientBuilder {
            gateway: GatewayUrl::parse(gateway_url)?,
            credentials: Credentials::new(app_key, app_secret)?,
            transport: TransportOptions::default(),
        })
    }

    /// Time allowed to connect (TCP, proxy, TLS) and for a whole call; both
    /// at least 1 ms. A connect timeout longer than the total is cut by it.
    pub fn timeouts(&mut self, connect: Duration, total: Duration) -> Result<&mut Self, Error> {
        if connect.is_zero() || total.is_zero() {
            return Err(Error::invalid_argument("timeouts must be at least 1 ms"));
        }
        self.transport.connect_timeout = connect.min(total);
        self.transport.total_timeout = total;
        Ok(self)
    }

    /// Trusts the PEM certificates in `pem_path` instead of the Mozilla roots.
    pub fn ca_file(&mut self, pem_path: &str) -> Result<&mut Self, Error> {
        self.transport.ca_certificates = Some(Arc::new(read_ca_file(pem_path)?));
        Ok(self)
    }

    /// Uses this proxy instead of the environment's; `""` turns proxies off.
    pub fn proxy(&mut self, proxy_url: &str) -> Result<&mut Self, Error> {
        self.transport.proxy = ProxySetting::from_url(proxy_url)?;
        Ok(self)
    }

    /// The client. Reads the proxy environment variables now, unless a proxy
    /// was set.
    pub fn build(self) -> Result<Client, Error> {
        Ok(Client {
            transport: Transport::new(self.gateway, self.transport)?,
            credentials: self.credentials,
        })
    }
}

/// A reusable client for one gateway and one application. `Send + Sync`.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    credentials: Credentials,
}

impl Client {
    /// Get Access Token: the application's current token and its lifetime.
    pub fn get_token(&self) -> Result<Token, Error> {
        request_token(&self.transport, &self.credentials, None)
    }

    /// Refresh Access Token: a successor of `access_token` with a fresh lifetime.
    pub fn refresh_token(&self, access_token: &str) -> Result<Token, Error> {
        request_token(&self.transport, &self.credentials, Some(access_token))
    }

    /// How many DNS lookups this client has made (IP literals need none; a
    /// pooled connection needs none).
    pub fn dns_lookups(&self) -> u64 {
        self.transport.dns_lookups()
    }
}

/// One-shot Get Access Token, with default options and the proxy environment.
pub fn get_access_token(
    gateway_url: &str,
    app_key: &str,
    app_secret: &str,
) -> Result<Token, Error> {
    let credentials = Credentials::new(app_key, app_secret)?;
    request_token(&*shared_transport(gateway_url)?, &credentials, None)
}

/// One-shot Refresh Access Token, with default options and the proxy environment.
pub fn refresh_access_token(
    gateway_url: &str,
    app_key: &str,
    app_secret: &str,
    access_token: &str,
) -> Result<Token, Error> {
    let credentials = Credentials::new(app_key, app_secret)?;
    request_token(
        &*shared_transport(gateway_url)?,
        &credentials,
        Some(access_token),
    )
}

/// The process-wide transport for one-shot calls to `gateway_url`: one per
/// gateway URL and proxy environment, so one-shot calls share connections and
/// TLS configuration, and a changed proxy variable takes effect.
fn shared_transport(gateway_url: &str) -> Result<Arc<Transport>, Error> {
    type Key = (GatewayUrl, Vec<Option<String>>);
    static TRANSPORTS: Mutex<Option<HashMap<Key, Arc<Transport>>>> = Mutex::new(None);
    const PROXY_VARIABLES: [&str; 8] = [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ];
    const MAX_GATEWAYS: usize = 16;

    let gateway = GatewayUrl::parse(gateway_url)?;
    let environment = PROXY_VARIABLES
        .iter()
        .map(|name| std::env::var(name).ok())
        .collect();
    let key = (gateway, environment);
    let mut transports = TRANSPORTS.lock().unwrap_or_else(PoisonError::into_inner);
    let transports = transports.get_or_insert_with(HashMap::new);
    if let Some(transport) = transports.get(&key) {
        return Ok(transport.clone());
    }
    let transport = Arc::new(Transport::new(key.0.clone(), TransportOptions::default())?);
    if transports.len() >= MAX_GATEWAYS {
        transports.clear(); // a bound against unbounded growth, not a cache policy
    }
    transports.insert(key, transport.clone());
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_has_the_documented_fields_and_types() {
        let request = TokenRequest {
            app_key: "key",
            encryption: "e".into(),
            timestamp: 1572574909697,
            access_token: None,
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"appKey":"key","encryption":"e","timestamp":1572574909697}"#
        );
        let request = TokenRequest {
            access_token: Some("tok"),
            ..request
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"appKey":"key","encryption":"e","timestamp":1572574909697,"accessToken":"tok"}"#
        );
    }

    #[test]
    fn builder_refuses_empty_credentials_and_bad_options() {
        let e = ClientBuilder::new("http://127.0.0.1:1/", "", "s").unwrap_err();
        assert_eq!(e.message(), "app key is empty");
        let e = ClientBuilder::new("http://127.0.0.1:1/", "k", "").unwrap_err();
        assert_eq!(e.message(), "app secret is empty");
        let mut builder = ClientBuilder::new("http://127.0.0.1:1/", "k", "s").unwrap();
        assert!(
            builder
                .timeouts(Duration::ZERO, Duration::from_secs(1))
                .is_err()
        );
        let e = builder.ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(
            e.message()
                .contains("cannot read CA file /nonexistent/ca.pem")
        );
    }
}
