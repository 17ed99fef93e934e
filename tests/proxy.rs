//! Proxies, against real ones: tinyproxy (an HTTP proxy: plain-HTTP
//! requests are forwarded to it in absolute form, HTTPS goes through a
//! CONNECT tunnel) and
//! microsocks (a SOCKS5 proxy), both from Debian's packages (`.ci/run`
//! installs them). The explicit setting, the
//! libcurl-style environment variables (read by a child process, since a test
//! must not change its own environment), NO_PROXY, HTTPS through the tunnel,
//! and a proxy that is not there.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enos_token::ErrorKind;
use support::programs::*;
use support::*;

/// tinyproxy on a free loopback port, logging every request.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Tinyproxy {
    fn start() -> Option<Tinyproxy> {
        Tinyproxy::start_with("")
    }

    /// With extra configuration lines.
    fn start_with(extra_config: &str) -> Option<Tinyproxy> {
        tool("tinyproxy", "-v", "the proxy tests")?;
        let port = port_for_a_program();
        let dir =
            std::env::temp_dir().join(format!("enos-tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("tinyproxy.log");
        let config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\nAllow 127.0.0.1\nDisableViaHeader Yes\n{extra_config}",
            log.display()
        );
        std::fs::write(dir.join("tinyproxy.conf"), config).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(dir.join("tinyproxy.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Tinyproxy {
            child,
            port,
            log,
            dir,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many tunnels to `127.0.0.1:port` the proxy has opened.
    fn tunnels_to(&self, port: u16) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.matches(&format!("CONNECT 127.0.0.1:{port} ")).count()
    }

    /// How many requests to `http://127.0.0.1:port` the proxy has forwarded.
    fn forwarded_to(&self, port: u16) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.matches(&format!("POST http://127.0.0.1:{port}/"))
            .count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn an_explicit_proxy_carries_http_and_https() {
    let Some(proxy) = Tinyproxy::start() else {
        return;
    };
    let plain = fake();
    let mut plain_builder = builder(&plain.url());
    plain_builder.proxy(&proxy.url()).unwrap();
    let client = plain_builder.build().unwrap();
    for _ in 0..3 {
        client.get_token().expect("Get through the proxy");
    }
    let port = plain.address().port();
    assert_eq!(proxy.forwarded_to(port), 3, "plain HTTP is forwarded");
    assert_eq!(proxy.tunnels_to(port), 0, "not tunnelled");

    let tls = fake_with(|config| config.tls = Some(tls_identity("localhost")));
    let mut builder = builder(&format!("https://localhost:{}", tls.address().port()));
    builder.proxy(&proxy.url()).unwrap();
    builder.ca_file(&tls_file("ca.crt")).unwrap();
    builder
        .build()
        .unwrap()
        .get_token()
        .expect("HTTPS through the tunnel");
    assert_eq!(
        proxy.tunnels_to(tls.address().port()),
        0,
        "CONNECT names the host"
    );
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        log.contains(&format!("CONNECT localhost:{} ", tls.address().port())),
        "{log}"
    );
}

#[test]
fn a_proxy_that_tunnels_only_to_443_forwards_plain_http_with_credentials() {
    // Debian's default tinyproxy (and Squid's SSL_ports) allow CONNECT only
    // to port 443: libcurl forwards plain HTTP instead, and so do we.
    let Some(proxy) = Tinyproxy::start_with("ConnectPort 443\nBasicAuth user pa55word\n") else {
        return;
    };
    let plain = fake();
    let port = plain.address().port();
    let with_credentials = format!("http://user:pa%355word@127.0.0.1:{}", proxy.port);
    let mut builder = builder(&plain.url());
    builder.proxy(&with_credentials).unwrap();
    let client = builder.build().unwrap();
    let token = client.get_token().expect("Get forwarded by the proxy");
    client
        .refresh_token(&token.access_token)
        .expect("Refresh too");
    // Two requests, or four when tinyproxy closed the kept-alive connection
    // as the Refresh arrived (its lost answer is then told by a Get, and
    // the Refresh sent again if it had not happened).
    assert!(
        (2..=4).contains(&proxy.forwarded_to(port)),
        "{}",
        proxy.forwarded_to(port)
    );
    assert_eq!(proxy.tunnels_to(port), 0);

    let mut builder = support::builder(&plain.url());
    builder.proxy(&proxy.url()).unwrap();
    let error = builder.build().unwrap().get_token().unwrap_err();
    assert_eq!(
        (error.kind(), error.http_status()),
        (ErrorKind::HttpStatus, 407),
        "{error}"
    );
}

#[test]
fn a_missing_proxy_is_a_connect_error_that_names_it() {
    let plain = fake();
    let port = closed_port();
    let mut builder = builder(&plain.url());
    builder
        .proxy(&format!("http://user:pa55word@127.0.0.1:{port}"))
        .unwrap();
    let error = builder.build().unwrap().get_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(
        error
            .message()
            .contains(&format!("(via proxy 127.0.0.1:{port})")),
        "{error}"
    );
    assert!(!error.message().contains("pa55word"), "{error}");
}

#[test]
fn a_loopback_gateway_takes_no_proxy_from_the_environment_but_the_option_applies() {
    let Some(proxy) = Tinyproxy::start() else {
        return;
    };
    let program = compile_c("refresh");
    // A second app for this process's own client: the C program's Refresh
    // may run a millisecond ahead of the wall clock (its Get took the
    // current one), and this process starts no slower than a function call.
    let fake = FakeProcess::start(&["--app", "in-process-app:in-process-secret"]);
    let fake_port: u16 = fake.url.rsplit(':').next().unwrap().parse().unwrap();
    let run_with = |env: &[(&str, &str)]| {
        let mut command = Command::new(&program);
        for name in enos_token::PROXY_ENVIRONMENT_VARIABLES {
            command.env_remove(name);
        }
        let output = command
            .env("ENOS_GATEWAY_URL", &fake.url)
            .env("ENOS_APP_KEY", APP_KEY)
            .env("ENOS_APP_SECRET", APP_SECRET)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    let proxy_url = proxy.url();
    // A loopback gateway (this fake) never takes a proxy from the
    // environment, as Go's net/http decides: a proxy set for the internet
    // must not capture a local test gateway. (Which variable applies to
    // which gateway, like libcurl, is tested in src/transport/proxy.rs.)
    for variable in ["http_proxy", "HTTP_PROXY", "ALL_PROXY"] {
        run_with(&[(variable, &proxy_url)]);
        assert_eq!(proxy.forwarded_to(fake_port), 0, "{variable}");
    }
    // The option still applies to it.
    let mut builder =
        enos_token::ClientBuilder::new(&fake.url, "in-process-app", "in-process-secret").unwrap();
    builder.proxy(&proxy_url).unwrap();
    let client = builder.build().unwrap();
    client.get_token().unwrap();
    assert_eq!(proxy.forwarded_to(fake_port), 1, "an explicit proxy");
}

/// microsocks on a free loopback port, with a user and password.
struct Microsocks {
    child: Child,
    port: u16,
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_socks5_proxy_with_a_password() {
    if !on_path("microsocks", "the SOCKS5 proxy test") {
        return;
    }
    let port = port_for_a_program();
    let child = Command::new("microsocks")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "enos",
            "-P",
            "s0cks-pass",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("microsocks starts");
    let socks = Microsocks { child, port };
    let until = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", socks.port)).is_err() {
        assert!(Instant::now() < until, "microsocks did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let plain = fake();
    let mut with_password = builder(&plain.url());
    with_password
        .proxy(&format!(
            "socks5://enos:s0cks-pass@127.0.0.1:{}",
            socks.port
        ))
        .unwrap();
    with_password
        .build()
        .unwrap()
        .get_token()
        .expect("Get through SOCKS5");
    let mut wrong_password = builder(&plain.url());
    wrong_password
        .proxy(&format!("socks5://enos:wrong@127.0.0.1:{}", socks.port))
        .unwrap();
    // A direct connection would succeed: failing shows the call went through SOCKS.
    let error = wrong_password.build().unwrap().get_token().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(!error.message().contains("wrong@"), "{error}");
}
