//! The client: the safe Rust core behind the C API.
//!
//! A [`Client`] holds one gateway's connections and one application's
//! credentials, and may be shared by any number of threads. The calls
//! without a client are in `oneshot.rs`; both make their Get and Refresh
//! requests through `token_request.rs`, and API calls through `api/`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{
    BodyView, Call, CallContext, CallSpec, Completion, DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_RESPONSE_BYTES, Executor, JSON_CONTENT_TYPE, Output, Request, Response,
};
use crate::error::Error;
use crate::log::{LogLevel, Logger};
use crate::managed::{
    Clock, CounterValues, Fetch, ManagedOptions, ManagedToken, Refresher, TokenSource,
    refresh_telling_lost_answers,
};
use crate::response::Token;
use crate::shared_cache::{SharedCacheDirectory, Unavailable};
use crate::signing;
use crate::token_request::{
    Credentials, TokenRequestContext, next_api_call_timestamp_ms, request_token,
};
use crate::transport::{GatewayUrl, ProxySetting, Transport, TransportOptions, read_ca_file};

/// Options for a [`Client`]; checked as they are set.
#[derive(Debug)]
pub struct ClientBuilder {
    gateway: GatewayUrl,
    credentials: Credentials,
    transport: TransportOptions,
    managed: ManagedOptions,
    logger: Option<Logger>,
    shared_cache: Option<SharedCacheDirectory>,
    max_response_bytes: u64,
    max_concurrent_calls: usize,
}

impl ClientBuilder {
    /// Starts a client for `gateway_url` (`http(s)://host[:port][/prefix]`)
    /// and the application `app_key`/`app_secret` (both non-empty).
    pub fn new(gateway_url: &str, app_key: &str, app_secret: &str) -> Result<Self, Error> {
        Ok(ClientBuilder {
            gateway: GatewayUrl::parse(gateway_url)?,
            credentials: Credentials::new(app_key, app_secret)?,
            transport: TransportOptions::default(),
            managed: ManagedOptions::default(),
            logger: None,
            shared_cache: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
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
        self.transport.ca_file = Some(pem_path.to_string());
        Ok(self)
    }

    /// Uses this proxy instead of the environment's; `""` turns proxies off.
    pub fn proxy(&mut self, proxy_url: &str) -> Result<&mut Self, Error> {
        self.transport.proxy = ProxySetting::from_url(proxy_url)?;
        Ok(self)
    }

    /// Refresh the managed token when less than `margin` is left of its
    /// lifetime (default 600 s), less a random 0-10% of it for a token this
    /// process refreshed, 10-20% for one it got (at most 60 s and 120 s; see
    /// `enos_client_builder_set_refresh_margin_s`).
    pub fn refresh_margin(&mut self, margin: Duration) -> &mut Self {
        self.managed.refresh_margin = margin;
        self
    }

    /// Retries after a transient failure (default 2), the first after about
    /// `base_backoff` (default 200 ms), doubling, with jitter, all within
    /// the overall timeout: of the managed token's fetch, and of API calls
    /// (a 429, a 502/503/504 of an idempotent call, a failed connection;
    /// `enos_client_builder_set_retries` has the rules).
    pub fn retries(
        &mut self,
        max_retries: u32,
        base_backoff: Duration,
    ) -> Result<&mut Self, Error> {
        if max_retries > 100 {
            return Err(Error::invalid_argument("at most 100 retries"));
        }
        if base_backoff > Duration::from_secs(3600) {
            return Err(Error::invalid_argument("base backoff over one hour"));
        }
        self.managed.max_retries = max_retries;
        self.managed.base_backoff = base_backoff;
        Ok(self)
    }

    /// Keeps the managed token fresh from a background thread (one per
    /// client, stopped when the client is dropped), so that callers wait for
    /// the network only while no valid token exists (default off).
    pub fn background_refresh(&mut self, enabled: bool) -> &mut Self {
        self.managed.background_refresh = enabled;
        self
    }

    /// Shares the managed token with every client, in any process of this
    /// host, given the same directory (created 0700 if missing; refused if
    /// it is a symbolic link, not ours, or writable by others). `""` turns
    /// sharing off (the default). The C header's
    /// `enos_client_builder_set_shared_cache()` says what it guarantees.
    pub fn shared_cache(&mut self, directory: &str) -> Result<&mut Self, Error> {
        self.shared_cache = match directory {
            "" => None,
            directory => Some(SharedCacheDirectory::open(directory)?),
        };
        Ok(self)
    }

    /// The largest API answer `Client::request` reads (default 64 MiB, at
    /// least 1 byte); a larger one is `ErrorKind::BadResponse`.
    pub fn max_response_bytes(&mut self, max_bytes: u64) -> Result<&mut Self, Error> {
        if max_bytes == 0 {
            return Err(Error::invalid_argument("max_bytes must be at least 1"));
        }
        self.max_response_bytes = max_bytes;
        Ok(self)
    }

    /// Calls in flight at once (`send_async`; default 64, 1-4096); more are
    /// queued. The connection pool keeps as many connections to the gateway.
    pub fn max_concurrent_calls(&mut self, calls: usize) -> Result<&mut Self, Error> {
        if !(1..=4096).contains(&calls) {
            return Err(Error::invalid_argument(
                "max concurrent calls must be 1-4096",
            ));
        }
        self.max_concurrent_calls = calls;
        self.transport.max_idle_connections = calls;
        Ok(self)
    }

    /// Sends the client's log messages to `logger` (none by default).
    pub fn logger(&mut self, logger: Option<Logger>) -> &mut Self {
        self.logger = logger;
        self
    }

    /// The client. Reads the proxy environment variables now, unless a proxy
    /// was set.
    pub fn build(mut self) -> Result<Client, Error> {
        // This client's own gate on the logger: freeing it closes that gate,
        // not the logger another client may share.
        self.logger = self.logger.as_ref().map(Logger::gated);
        let shared = match &self.shared_cache {
            Some(directory) => match directory
                .slot(self.gateway.as_str(), &self.credentials.app_key)?
            {
                Ok(slot) => Some(slot),
                Err(Unavailable(why)) => {
                    // A full or read-only file system: work alone, and say so.
                    if let Some(logger) = &self.logger {
                        logger.log(
                            LogLevel::Warn,
                            &format!("{why}; this client fetches its own tokens, without sharing"),
                        );
                    }
                    None
                }
            },
            None => None,
        };
        let managed = ManagedToken::new(
            self.managed,
            self.transport.total_timeout,
            self.logger.clone(),
            Clock::System,
            shared,
        );
        let total_timeout = self.transport.total_timeout;
        let shared = Arc::new(ClientShared {
            transport: Transport::new(self.gateway, self.transport)?,
            retry_budget: crate::api::RetryBudget::default(),
            executor: Executor::new(self.max_concurrent_calls),
            credentials: self.credentials,
            managed,
            logger: self.logger,
            max_response_bytes: self.max_response_bytes,
            total_timeout,
        });
        let refresher = if shared.managed.options().background_refresh {
            let signal = shared.managed.start_background();
            let source = shared.clone();
            Some(Refresher::start(signal, move |signal| {
                source.managed.refresh_in_background(&*source, signal)
            })?)
        } else {
            None
        };
        Ok(Client { shared, refresher })
    }
}

/// A reusable client for one gateway and one application. `Send + Sync`.
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
    /// The background thread, when background refresh is on.
    refresher: Option<Refresher>,
}

/// What the client's callers and its background thread share.
#[derive(Debug)]
struct ClientShared {
    transport: Transport,
    /// Retries of API calls (a token bucket; see `api/retry.rs`).
    retry_budget: crate::api::RetryBudget,
    /// The worker threads of calls in flight (`send_async`).
    executor: Executor,
    credentials: Credentials,
    managed: ManagedToken,
    logger: Option<Logger>,
    /// For API calls (`Client::request`).
    max_response_bytes: u64,
    total_timeout: Duration,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Calls in flight end now (cancelled); their workers hold the rest.
        self.shared.executor.close();
        if let Some(refresher) = self.refresher.take() {
            // Shutting the connections down makes a fetch in flight fail at
            // once instead of at its timeout.
            let transport = &self.shared.transport;
            refresher.stop(crate::fork::generation(), || transport.shutdown());
        }
        // Workers finishing cancelled calls outlive the client; its log
        // callback's user_data does not (the C host frees it next).
        if let Some(logger) = &self.shared.logger {
            logger.close();
        }
    }
}

impl Client {
    /// Get Access Token: the application's current token and its lifetime.
    /// Always a request; the answer also becomes the managed token. A 1001
    /// (another process sent the same timestamp; refused unprocessed) is
    /// sent again with a new timestamp, at most 3 times.
    pub fn get_token(&self) -> Result<Token, Error> {
        self.request_and_install(Fetch::Get)
    }

    /// Refresh Access Token: a successor of `access_token` with a fresh
    /// lifetime. Always a request; the answer also becomes the managed token.
    pub fn refresh_token(&self, access_token: &str) -> Result<Token, Error> {
        self.request_and_install(Fetch::Refresh(access_token.into()))
    }

    fn request_and_install(&self, fetch: Fetch) -> Result<Token, Error> {
        let sent = self.shared.managed.now();
        let result = match &fetch {
            Fetch::Get => {
                let deadline = Instant::now() + self.shared.managed.total_timeout();
                let counters = &self.shared.managed.counters;
                crate::token_request::get_sending_replays_again(
                    deadline,
                    || self.shared.fetch(&fetch, Some(deadline)),
                    || crate::managed::Counters::add(&counters.retries),
                )
            }
            Fetch::Refresh(refreshed) => {
                let deadline = Instant::now() + self.shared.managed.total_timeout();
                let result = refresh_telling_lost_answers(&*self.shared, refreshed, deadline);
                if result.as_ref().is_err_and(Error::answer_lost) {
                    // It may have retired the token: the managed one if it
                    // is that one.
                    self.shared.managed.invalidate(Some(refreshed));
                }
                result
            }
        };
        match &result {
            Ok(token) => {
                if let Some(logger) = &self.shared.logger {
                    logger.log(
                        LogLevel::Info,
                        &format!(
                            "{} succeeded: token {}, expires in {} s",
                            fetch.name(),
                            crate::log::token_hint(&token.access_token),
                            token.expire_s
                        ),
                    );
                }
                let obtained = fetch.obtains();
                self.shared.managed.install(token.clone(), sent, obtained);
            }
            Err(error) => self.log_error(error),
        }
        result
    }

    /// A token valid now, from the cache when it has more than the margin
    /// left, else fetched (one fetch per client at a time, shared by all
    /// callers that need it); the header's `enos_client_access_token()` has
    /// the whole state table.
    pub fn access_token(&self) -> Result<String, Error> {
        self.access_token_with(str::to_string)
    }

    /// As [`Client::access_token`], handing the token to `copy_out` instead
    /// of allocating a `String`. `copy_out` runs without any lock held.
    pub fn access_token_with<R>(&self, copy_out: impl FnOnce(&str) -> R) -> Result<R, Error> {
        let result = self.shared.managed.access_token(&*self.shared, copy_out);
        if let Err(error) = &result {
            self.log_error(error);
        }
        result
    }

    /// [`Client::access_token`], with the seconds it has left.
    pub fn access_token_and_seconds_left(&self) -> Result<(String, u64), Error> {
        let token = self.access_token()?;
        let seconds_left = self.shared.managed.seconds_left().unwrap_or(0);
        Ok((token, seconds_left))
    }

    /// An API call rejected `rejected_token`: forget it if it is still the
    /// cached one (a newer token is kept); `None` forgets whatever is cached.
    /// Returns whether a token was forgotten.
    pub fn invalidate(&self, rejected_token: Option<&str>) -> bool {
        self.shared.managed.invalidate(rejected_token)
    }

    /// The three `apim-*` headers for an API call with the managed token and
    /// a fresh timestamp: `"apim-accesstoken: …\r\napim-signature: …\r\napim-timestamp: …\r\n"`.
    pub fn auth_headers(&self, query: &str, body: &[u8]) -> Result<String, Error> {
        self.access_token_with(|token| {
            let timestamp = next_api_call_timestamp_ms(self.shared.managed.shared_slot());
            let signature = signing::api_signature(
                token,
                query,
                body,
                timestamp,
                &self.shared.credentials.app_secret,
            );
            // Built in place: a growing String would leave copies of the token.
            let timestamp = timestamp.to_string();
            let mut headers =
                String::with_capacity(64 + token.len() + signature.len() + timestamp.len());
            for part in [
                "apim-accesstoken: ",
                token,
                "\r\napim-signature: ",
                &signature,
                "\r\napim-timestamp: ",
                &timestamp,
                "\r\n",
            ] {
                headers.push_str(part);
            }
            headers
        })
    }

    /// Calls an API of the gateway: `method` on `path` (path and query,
    /// relative to the gateway URL), with `body` and its `content_type`
    /// (`None` with a body: JSON, `application/json;charset=UTF-8`), signed
    /// with the managed token over exactly the query (and a JSON body)
    /// sent. Any HTTP answer is `Ok`; a refused token (HTTP 401 or status
    /// 1203) is renewed and the call sent once more. The header's
    /// `enos_client_request()` has the whole contract; [`Client::send`]
    /// takes a [`Request`] for files, headers and streamed answers.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, Error> {
        let result = (|| {
            crate::api::check_method(method)?;
            crate::api::check_path(path)?;
            let content_type = match (content_type, body.is_empty()) {
                (Some(content_type), _) => {
                    crate::api::checked_content_type(Some(content_type), "")?;
                    Some(content_type)
                }
                (None, true) => None,
                (None, false) => Some(JSON_CONTENT_TYPE),
            };
            if method == "HEAD" && !body.is_empty() {
                return Err(Error::invalid_argument("a HEAD request has no body"));
            }
            let body = match content_type {
                Some(content_type) => BodyView::Bytes {
                    content_type,
                    bytes: body,
                },
                None => BodyView::Empty,
            };
            let spec = CallSpec {
                method,
                path,
                headers: &[],
                body,
                output: &Output::Memory,
                progress: None,
                timeout: None,
            };
            crate::api::send(&self.shared.call_context(), &spec)
        })();
        if let Err(error) = &result {
            self.log_error(error);
        }
        result
    }

    /// Sends `request`: signed with the managed token over exactly the
    /// query (and a JSON body) sent, its files streamed, its answer kept
    /// or streamed to its output, a refused token renewed and the call
    /// sent once more, a broken download resumed. Any HTTP answer is `Ok`.
    /// The header's `enos_client_send()` has the whole contract.
    pub fn send(&self, request: &Request) -> Result<Response, Error> {
        self.shared.send(request)
    }

    /// Starts `request` and returns at once: the call runs on one of the
    /// client's worker threads (at most `max_concurrent_calls` at once, the
    /// rest queued) with everything [`Client::send`] does. The request is
    /// copied: it may be changed or dropped right away. See [`Call`] for
    /// waiting, cancelling and the descriptor that says it is done.
    pub fn send_async(&self, request: &Request) -> Call {
        self.start(request, None)
    }

    /// [`Client::send_async`], with `on_done` called with the outcome (on
    /// the worker thread, once) when the call is done; a cancelled call's
    /// outcome is `ErrorKind::Cancelled`. Dropping the returned [`Call`]
    /// before that withdraws `on_done`.
    pub fn send_async_then(
        &self,
        request: &Request,
        on_done: impl FnOnce(Result<Response, Error>) + Send + 'static,
    ) -> Call {
        let completion: Completion = Box::new(move |call| on_done(call.wait(Some(Duration::ZERO))));
        self.start(request, Some(completion))
    }

    pub(crate) fn start(&self, request: &Request, completion: Option<Completion>) -> Call {
        let request = request.clone();
        let shared = self.shared.clone();
        let description = format!(
            "{} {}",
            request.method,
            crate::api::path_for_logs(&request.path)
        );
        let idempotent = matches!(
            request.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS"
        );
        let job = Box::new(move || shared.send(&request));
        self.shared
            .executor
            .submit(description, idempotent, job, completion)
    }

    /// What the client has done so far.
    pub fn counters(&self) -> CounterValues {
        CounterValues {
            dns_lookups: self.shared.transport.dns_lookups(),
            ..self.shared.managed.counters.values()
        }
    }

    fn log_error(&self, error: &Error) {
        if let Some(logger) = &self.shared.logger {
            logger.log(LogLevel::Error, error.message());
        }
    }
}

impl ClientShared {
    fn call_context(&self) -> CallContext<'_> {
        let options = self.managed.options();
        CallContext {
            transport: &self.transport,
            managed: &self.managed,
            source: self,
            app_secret: &self.credentials.app_secret,
            logger: self.logger.as_ref(),
            max_response_bytes: self.max_response_bytes,
            total_timeout: self.total_timeout,
            max_retries: options.max_retries,
            base_backoff: options.base_backoff,
            retry_budget: &self.retry_budget,
        }
    }

    /// Sends `request` on this thread (a worker's, for a call in flight).
    fn send(&self, request: &Request) -> Result<Response, Error> {
        let spec = CallSpec {
            method: &request.method,
            path: &request.path,
            headers: &request.headers,
            body: request.body.view(),
            output: &request.output,
            progress: request.progress.as_ref(),
            timeout: request.timeout,
        };
        let result = crate::api::send(&self.call_context(), &spec);
        // A cancelled call ends with whatever its shut-down connection said,
        // which would mislead; its caller gets a Cancelled error instead.
        if let (Err(error), Some(logger)) = (&result, &self.logger)
            && !crate::transport::is_cancelled()
        {
            logger.log(LogLevel::Error, error.message());
        }
        result
    }
}

impl TokenSource for ClientShared {
    fn fetch(&self, fetch: &Fetch, deadline: Option<Instant>) -> Result<Token, Error> {
        use crate::managed::Counters;
        let counters = &self.managed.counters;
        let refresh_of = match fetch {
            Fetch::Get => {
                Counters::add(&counters.get_requests);
                None
            }
            Fetch::Refresh(token) => {
                Counters::add(&counters.refresh_requests);
                Some(&**token)
            }
        };
        let context = TokenRequestContext {
            deadline,
            shared: self.managed.shared_slot(),
            known: Some(self.managed.known_tokens()),
        };
        request_token(&self.transport, &self.credentials, refresh_of, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_secret() {
        let mut builder = ClientBuilder::new("http://127.0.0.1:1/", "k", "app-s3cret").unwrap();
        builder.proxy("http://user:hunter2@127.0.0.1:3128").unwrap();
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("app-s3cret"),
            "{shown}"
        );
        let client = builder.build().unwrap();
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("app-s3cret"),
            "{shown}"
        );
        assert!(shown.contains("via proxy 127.0.0.1:3128"), "{shown}");
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
