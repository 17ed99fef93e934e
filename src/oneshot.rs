//! One-shot Get and Refresh, without a client: each call reuses a
//! process-wide connection pool per gateway URL, so calling them in a loop
//! costs no new TCP or TLS handshake per call.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::fork::ForkSafeMutex;
use crate::response::Token;
use crate::token_request::{Credentials, TokenRequestContext, request_token};
use crate::transport::{GatewayUrl, PROXY_ENVIRONMENT_VARIABLES, Transport, TransportOptions};

/// One-shot Get Access Token, with default options and the proxy
/// environment; a 1001 is sent again as [`crate::Client::get_token`] does.
pub fn get_access_token(
    gateway_url: &str,
    app_key: &str,
    app_secret: &str,
) -> Result<Token, Error> {
    let credentials = Credentials::new(app_key, app_secret)?;
    let transport = shared_transport(gateway_url)?;
    let deadline = std::time::Instant::now() + crate::transport::DEFAULT_TOTAL_TIMEOUT;
    crate::token_request::get_sending_replays_again(
        deadline,
        || {
            let context = TokenRequestContext {
                deadline: Some(deadline),
                ..TokenRequestContext::default()
            };
            request_token(&transport, &credentials, None, context)
        },
        || {},
    )
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
        TokenRequestContext::default(),
    )
}

/// The process-wide transport for one-shot calls to `gateway_url`: one per
/// gateway URL and proxy environment, so one-shot calls share connections and
/// TLS configuration, and a changed proxy variable takes effect.
fn shared_transport(gateway_url: &str) -> Result<Arc<Transport>, Error> {
    type Key = (GatewayUrl, Vec<Option<String>>);
    static TRANSPORTS: ForkSafeMutex<Option<HashMap<Key, Arc<Transport>>>> =
        ForkSafeMutex::new(None);
    const MAX_GATEWAYS: usize = 16;

    let gateway = GatewayUrl::parse(gateway_url)?;
    let environment = PROXY_ENVIRONMENT_VARIABLES
        .iter()
        .map(|name| std::env::var(name).ok())
        .collect();
    let key = (gateway, environment);
    let mut transports = TRANSPORTS.lock();
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
