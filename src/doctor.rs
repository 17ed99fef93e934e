//! A setup checked step by step, for people (`enos-token doctor`): the
//! gateway URL, the proxy, DNS, TCP, TLS and the certificate, the clock
//! against the gateway's, a Get, and when asked a Refresh (which retires
//! the token every process and host of the app key holds). Each step reports what it
//! found and, when it failed, what to do; the steps after a failure that
//! makes them meaningless are not run. Never a secret or a token in a finding.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, service_status};
use crate::transport::{GatewayUrl, ProxySetting, Transport, TransportOptions, WholeAnswer};
use crate::{ClientBuilder, Error};

/// A clock further than this from the gateway's is named.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Time allowed to each network step.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to check.
#[derive(Clone)]
pub struct Setup {
    pub gateway_url: String,
    pub app_key: String,
    pub app_secret: String,
    /// A PEM file of CAs to trust instead of the Mozilla roots.
    pub ca_file: Option<String>,
    /// `None`: the proxy environment variables; `Some("")`: no proxy.
    pub proxy: Option<String>,
    /// Also a Refresh. It retires the token the app key's other processes
    /// and hosts hold (they Get the new one when the gateway refuses theirs).
    pub refresh: bool,
    /// A shared cache directory the Get and Refresh publish their tokens
    /// through (`ClientBuilder::shared_cache`), so that its other users get
    /// the new token instead of a retired one.
    pub shared_cache: Option<String>,
}

/// `url` without any user info (`user:password@`), for showing.
pub fn url_for_display(url: &str) -> String {
    crate::transport::without_user_info(url)
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the String valid UTF-8.
        crate::secret::wipe(unsafe { self.app_secret.as_bytes_mut() });
    }
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("gateway_url", &self.gateway_url)
            .field("app_key", &self.app_key)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// One step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub passed: bool,
    /// What was found.
    pub finding: String,
    /// What to do about a failure.
    pub advice: Option<String>,
    /// The kind of a failure, when the library has one for it (a clock too
    /// far off has none): how the command line picks its exit code.
    pub kind: Option<ErrorKind>,
}

/// Runs the steps, handing each to `report` as it ends; true when all passed.
pub fn diagnose(setup: &Setup, report: &mut dyn FnMut(&Step)) -> bool {
    let mut doctor = Doctor {
        setup,
        report,
        all_passed: true,
        failure_kind: None,
    };
    doctor.run();
    doctor.all_passed
}

/// The steps, in order; each returns what the next ones need, or `None`
/// after a failure that makes them meaningless.
struct Doctor<'a> {
    setup: &'a Setup,
    report: &'a mut dyn FnMut(&Step),
    all_passed: bool,
    /// The kind of the failure the next reported step has.
    failure_kind: Option<ErrorKind>,
}

/// A step's finding, or its finding and advice when it failed.
type Outcome = Result<String, (String, String)>;

impl Doctor<'_> {
    fn run(&mut self) -> Option<()> {
        let gateway = self.gateway_url()?;
        let (setting, proxy) = self.proxy(&gateway)?;
        let (host, port) = match &proxy {
            Some(proxy) => (proxy.host().to_string(), proxy.port()),
            None => (gateway.host().to_string(), gateway.port()),
        };
        let address = self.dns(&host, port)?;
        self.tcp_connect(address, &host, port, proxy.is_some())?;
        let answer = self.http_and_tls(&gateway, &setting, proxy.is_some())?;
        self.clock(&answer);
        self.token_calls()
    }

    /// Reports a step; true when it passed.
    fn emit(&mut self, name: &'static str, outcome: Outcome) -> bool {
        let step = match outcome {
            Ok(finding) => Step {
                name,
                passed: true,
                finding,
                advice: None,
                kind: None,
            },
            Err((finding, advice)) => Step {
                name,
                passed: false,
                finding,
                advice: Some(advice),
                kind: self.failure_kind,
            },
        };
        self.failure_kind = None;
        self.all_passed &= step.passed;
        (self.report)(&step);
        step.passed
    }

    /// Reports a failed step and stops the run.
    fn fail<T>(&mut self, name: &'static str, finding: String, advice: &str) -> Option<T> {
        self.emit(name, Err((finding, advice.to_string())));
        None
    }

    fn gateway_url(&mut self) -> Option<GatewayUrl> {
        let gateway = match GatewayUrl::parse(&self.setup.gateway_url) {
            Ok(gateway) => gateway,
            Err(e) => {
                self.failure_kind = Some(e.kind());
                return self.fail(
                    "gateway URL",
                    e.message().to_string(),
                    "set ENOS_GATEWAY_URL (or --gateway) to the API gateway's base address, https://<apim-gateway host>",
                );
            }
        };
        let scheme = if gateway.is_https() {
            "HTTPS"
        } else {
            "plain HTTP"
        };
        let finding = format!("{} ({}, {scheme})", gateway.as_str(), gateway.authority());
        self.emit("gateway URL", Ok(finding));
        Some(gateway)
    }

    fn proxy(&mut self, gateway: &GatewayUrl) -> Option<(ProxySetting, Option<ureq::Proxy>)> {
        let setting = match self.setup.proxy.as_deref() {
            None => ProxySetting::FromEnvironment,
            Some(url) => match ProxySetting::from_url(url) {
                Ok(setting) => setting,
                Err(e) => {
                    self.failure_kind = Some(e.kind());
                    return self.fail(
                        "proxy",
                        e.message().into(),
                        "fix the proxy URL, or give --proxy \"\"",
                    );
                }
            },
        };
        let proxy = match crate::transport::choose_proxy(&setting, gateway) {
            Ok(proxy) => proxy,
            Err(e) => {
                self.failure_kind = Some(e.kind());
                return self.fail(
                    "proxy",
                    e.message().into(),
                    "fix the proxy variable, or give --proxy \"\" to connect directly",
                );
            }
        };
        let finding = match &proxy {
            Some(proxy) => format!("through the proxy {}:{}", proxy.host(), proxy.port()),
            None => "none: connecting directly".into(),
        };
        self.emit("proxy", Ok(finding));
        Some((setting, proxy))
    }

    fn dns(&mut self, host: &str, port: u16) -> Option<SocketAddr> {
        let started = Instant::now();
        let addresses: Vec<_> = match (host, port).to_socket_addrs() {
            Ok(addresses) => addresses.collect(),
            Err(e) => {
                self.failure_kind = Some(ErrorKind::Connect);
                return self.fail(
                    "DNS",
                    format!("cannot resolve host {host}: {e}"),
                    "check the host name in the URL and this host's DNS (resolv.conf)",
                );
            }
        };
        let Some(first) = addresses.first().copied() else {
            self.failure_kind = Some(ErrorKind::Connect);
            return self.fail(
                "DNS",
                format!("host {host} has no address"),
                "check the host name",
            );
        };
        self.emit(
            "DNS",
            Ok(format!(
                "{host} is {} ({} address{}) in {} ms",
                first.ip(),
                addresses.len(),
                if addresses.len() == 1 { "" } else { "es" },
                started.elapsed().as_millis()
            )),
        );
        Some(first)
    }

    fn tcp_connect(
        &mut self,
        address: SocketAddr,
        host: &str,
        port: u16,
        via_proxy: bool,
    ) -> Option<()> {
        let started = Instant::now();
        let what = if via_proxy { "the proxy " } else { "" };
        match TcpStream::connect_timeout(&address, STEP_TIMEOUT) {
            Ok(_) => {
                let finding = format!(
                    "connected to {what}{host}:{port} in {} ms",
                    started.elapsed().as_millis()
                );
                self.emit("TCP connect", Ok(finding));
                Some(())
            }
            Err(e) => {
                self.failure_kind = Some(ErrorKind::Connect);
                let advice = if via_proxy {
                    format!(
                        "the proxy does not accept connections: check it (its environment \
                         variable or --proxy), or bypass it for the gateway with \
                         no_proxy={} or --proxy \"\"",
                        self.setup_gateway_host()
                    )
                } else {
                    "check the port in the URL, that the gateway is up, and that no firewall blocks it"
                        .to_string()
                };
                self.fail(
                    "TCP connect",
                    format!("connect to {what}{host}:{port} failed: {e}"),
                    &advice,
                )
            }
        }
    }

    /// The gateway's host, for advice.
    fn setup_gateway_host(&self) -> String {
        GatewayUrl::parse(&self.setup.gateway_url)
            .map_or_else(|_| "<gateway host>".to_string(), |g| g.host().to_string())
    }

    /// A first HTTP request (TLS and its certificate included).
    fn http_and_tls(
        &mut self,
        gateway: &GatewayUrl,
        setting: &ProxySetting,
        via_proxy: bool,
    ) -> Option<WholeAnswer> {
        let ca_certificates = match &self.setup.ca_file {
            Some(file) => match crate::transport::read_ca_file(file) {
                Ok(certificates) => Some(std::sync::Arc::new(certificates)),
                Err(e) => {
                    self.failure_kind = Some(ErrorKind::InvalidArgument);
                    let finding = e.message().to_string();
                    return self.fail("TLS", finding, "give a PEM file of CA certificates");
                }
            },
            None => None,
        };
        let options = TransportOptions {
            connect_timeout: STEP_TIMEOUT,
            total_timeout: STEP_TIMEOUT,
            ca_certificates,
            ca_file: self.setup.ca_file.clone(),
            proxy: setting.clone(),
            max_idle_connections: 1,
        };
        let answer = match first_answer(gateway, options) {
            Ok(answer) => answer,
            Err(e) => {
                self.failure_kind = Some(e.kind());
                let scheme =
                    e.message().contains("use http://") || e.message().contains("use https://");
                let advice = match e.kind() {
                    _ if scheme => {
                        "the server speaks the other scheme: change the URL's http:// or https:// as the message says"
                    }
                    ErrorKind::Tls => {
                        "trust the gateway's CA with ENOS_CA_FILE (--ca-file), or use the scheme the server speaks"
                    }
                    ErrorKind::Timeout => {
                        "the gateway accepts connections but does not answer: check the URL and the proxy"
                    }
                    _ => "check the URL's scheme, host and port",
                };
                let name = if gateway.is_https() { "TLS" } else { "HTTP" };
                return self.fail(name, e.message().into(), advice);
            }
        };
        if gateway.is_https() {
            let finding = self.certificate_finding(gateway, via_proxy);
            self.emit("TLS", Ok(finding));
        }
        Some(answer)
    }

    /// Who issued the gateway's certificate, until when, and what is trusted.
    fn certificate_finding(&self, gateway: &GatewayUrl, via_proxy: bool) -> String {
        let trusted = match &self.setup.ca_file {
            Some(file) => format!("trusting the CA in {file}"),
            None => "trusting the Mozilla roots".into(),
        };
        let certificate = (!via_proxy)
            .then(|| {
                crate::transport::certificate_presented_by(
                    gateway.host(),
                    gateway.port(),
                    STEP_TIMEOUT,
                )
            })
            .flatten()
            .unwrap_or_default();
        format!(
            "handshake OK, {trusted}; certificate issued by {}, valid until {}",
            certificate.issuer.as_deref().unwrap_or("(not read)"),
            certificate.not_after.as_deref().unwrap_or("(not read)")
        )
    }

    /// The local clock against the gateway's `Date`.
    fn clock(&mut self, answer: &WholeAnswer) {
        let date = answer
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("date"))
            .and_then(|(_, value)| crate::time::http_date::parse(value));
        let local = crate::time::timestamp::wall_clock_ms().div_euclid(1000);
        match date {
            None => self.emit(
                "clock",
                Ok("the gateway sent no Date header: not compared".into()),
            ),
            Some(gateway_seconds) => {
                let skew = local - gateway_seconds;
                let finding = match skew {
                    0 => "the same as the gateway's (to the second)".to_string(),
                    s if s > 0 => format!("{s} s ahead of the gateway's"),
                    s => format!("{} s behind the gateway's", -s),
                };
                if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() {
                    self.emit(
                        "clock",
                        Err((
                            format!("the local clock is {finding}"),
                            "request timestamps are signed: sync this host's clock (NTP, chrony or systemd-timesyncd)".into(),
                        )),
                    )
                } else {
                    self.emit("clock", Ok(format!("the local clock is {finding}")))
                }
            }
        };
    }

    /// A Get and, if asked for, a Refresh with the setup's credentials.
    fn token_calls(&mut self) -> Option<()> {
        let setup = self.setup;
        let client = ClientBuilder::new(&setup.gateway_url, &setup.app_key, &setup.app_secret)
            .and_then(|mut builder| {
                builder.timeouts(STEP_TIMEOUT, STEP_TIMEOUT)?;
                if let Some(file) = &setup.ca_file {
                    builder.ca_file(file)?;
                }
                if let Some(proxy) = &setup.proxy {
                    builder.proxy(proxy)?;
                }
                if let Some(directory) = &setup.shared_cache {
                    builder.shared_cache(directory)?;
                }
                builder.build()
            });
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                self.failure_kind = Some(e.kind());
                self.emit(
                    "Get",
                    Err((e.message().into(), "fix the configuration named".into())),
                );
                return None;
            }
        };
        let token = match client.get_token() {
            Ok(token) => {
                self.emit(
                    "Get",
                    Ok(format!(
                        "token {}, expires in {} s",
                        crate::log::token_hint(&token.access_token),
                        token.expire_s
                    )),
                );
                token
            }
            Err(e) => {
                self.failure_kind = Some(e.kind());
                self.emit("Get", Err((e.message().into(), advice_for(&e))));
                return None;
            }
        };
        if !setup.refresh {
            return Some(());
        }
        match client.refresh_token(&token.access_token) {
            Ok(refreshed) => self.emit(
                "Refresh",
                Ok(format!(
                    "new token {}, expires in {} s",
                    crate::log::token_hint(&refreshed.access_token),
                    refreshed.expire_s
                )),
            ),
            Err(e) => {
                self.failure_kind = Some(e.kind());
                self.emit("Refresh", Err((e.message().into(), advice_for(&e))))
            }
        };
        Some(())
    }
}

/// `GET /` on the gateway, through the setup's proxy and CA.
fn first_answer(gateway: &GatewayUrl, options: TransportOptions) -> Result<WholeAnswer, Error> {
    let transport = Transport::new(gateway.clone(), options)?;
    let exchange = crate::transport::Exchange {
        method: "GET",
        path_and_query: "/",
        timing: crate::transport::Timing::Whole(Instant::now() + STEP_TIMEOUT),
        resend_on_stale_connection: true,
        pass_encoded_answers: true,
    };
    transport.exchange_whole(
        &exchange,
        &mut || {
            Ok(crate::transport::Attempt {
                headers: Vec::new(),
                extra_headers: &[],
                body: crate::transport::OutgoingBody::Bytes(std::borrow::Cow::Borrowed(&[])),
            })
        },
        64 * 1024,
    )
}

/// What to do about a failed Get or Refresh.
fn advice_for(error: &Error) -> String {
    match error.service_status() {
        service_status::UNKNOWN_APP_KEY => {
            "the gateway does not know this app key: check ENOS_APP_KEY (--app-key)".into()
        }
        service_status::INVALID_ENCRYPTION => {
            "wrong app secret (or a clock far off): check ENOS_APP_SECRET or the secret file".into()
        }
        service_status::REPEATED_REQUEST => {
            "a repeated timestamp: another process with this app key sent in the same millisecond; run again".into()
        }
        _ => match error.kind() {
            ErrorKind::HttpStatus => {
                "the URL does not lead to the token service: check the gateway URL and its path prefix".into()
            }
            _ => "see the message".into(),
        },
    }
}
