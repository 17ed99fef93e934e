//! `enos-fake-gateway`: the fake EnOS token service as a program, for trying
//! the library and for tests in C, C++, Python and other languages.
//!
//! ```text
//! enos-fake-gateway [--host 127.0.0.1] [--port 8080] [--app KEY:SECRET | --app KEY]...
//!                   [--apps-file PATH] [--token-lifetime SECONDS] [--path-prefix PATH]
//!                   [--tls-cert PEM --tls-key PEM] [--url-file PATH] [--max-seconds N]
//!                   [--timestamp-window SECONDS] [-v]
//! ```
//!
//! Prints `enos-fake-gateway listening on URL` on its first line (port 0
//! picks a free port) and serves until killed, or for `--max-seconds`.
//! `--app KEY` takes the secret from `ENOS_FAKE_APP_SECRET`, and
//! `--apps-file` from a file, so that no secret shows in `ps`.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use enos_token::fake::{FakeGateway, FakeGatewayConfig, TlsIdentity};

const USAGE: &str = "usage: enos-fake-gateway [OPTION]... (--help for all of them)";

const HELP: &str = "enos-fake-gateway: a fake of the EnOS API gateway's token service, for
trying enos-token and for tests. Prints 'enos-fake-gateway listening on URL'
first, then serves until killed.

Options:
  --host ADDR            address to listen on (default 127.0.0.1)
  --port N               port (default 8080; 0 picks a free one)
  --app KEY:SECRET       an application it knows (repeatable; default
                         demo-app-key:demo-app-secret)
  --app KEY              the same, the secret taken from ENOS_FAKE_APP_SECRET
                         (so that it does not show in ps)
  --apps-file PATH       applications from a file, one KEY:SECRET per line
  --token-lifetime S     lifetime of new tokens in seconds (default 7200)
  --path-prefix PATH     serve the token paths under PATH (as a gateway behind
                         a path prefix, e.g. /gw/enos); token paths under any
                         other prefix get 404, as at a real gateway. The URL
                         printed includes it; the control API answers with
                         or without it
  --timestamp-window S   refuse token requests (status 1004) and API calls
                         (HTTP 401) whose timestamp is more than S seconds
                         from the fake's clock (default 0: off; EnOS
                         documents no window, see tests/README.md)
  --tls-cert PEM --tls-key PEM
                         serve HTTPS (the repository's tests/data/tls has a
                         test CA, ca.crt, and localhost.crt/.key signed by it)
  --url-file PATH        also write the URL to this file
  --max-seconds N        exit after N seconds (default: never)
  -v, --verbose          write each request's method and path to stderr
  -V, --version          print the version
  -h, --help             print this

Endpoints (GET / lists them too):
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("enos-fake-gateway: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The options that take a value.
const VALUE_OPTIONS: [&str; 11] = [
    "--host",
    "--port",
    "--app",
    "--apps-file",
    "--token-lifetime",
    "--tls-cert",
    "--tls-key",
    "--url-file",
    "--max-seconds",
    "--path-prefix",
    "--timestamp-window",
];

/// What the command line asked for.
struct Options {
    host: IpAddr,
    port: u16,
    apps: HashMap<String, String>,
    lifetime: Duration,
    cert: Option<String>,
    key: Option<String>,
    url_file: Option<String>,
    max_seconds: Option<u64>,
    verbose: bool,
    path_prefix: String,
    timestamp_window: Option<Duration>,
}

fn run() -> Result<(), String> {
    let Some(options) = parse_arguments(std::env::args().skip(1))? else {
        return Ok(()); // --help or --version
    };
    let demo_app = options.apps.is_empty();
    let (url_file, max_seconds) = (options.url_file.clone(), options.max_seconds);
    let config = configuration(options)?;
    let gateway = FakeGateway::start(config).map_err(|e| format!("cannot start: {e}"))?;
    // The gateway URL a client is given: with the path prefix, if any (the
    // control API answers under it too).
    let url = gateway.gateway_url();
    if let Some(path) = &url_file {
        std::fs::write(path, format!("{url}\n")).map_err(|e| format!("{path}: {e}"))?;
    }
    println!("enos-fake-gateway listening on {url}");
    let _ = std::io::stdout().flush();
    if demo_app {
        eprintln!("enos-fake-gateway: knows the app demo-app-key (secret demo-app-secret)");
    }
    match max_seconds {
        Some(seconds) => std::thread::sleep(Duration::from_secs(seconds)),
        None => loop {
            std::thread::park();
        },
    }
    Ok(())
}

/// The fake's configuration from the options (the demo app if none).
fn configuration(options: Options) -> Result<FakeGatewayConfig, String> {
    let mut apps = options.apps;
    if apps.is_empty() {
        apps.insert("demo-app-key".to_string(), "demo-app-secret".to_string());
    }
    let tls = match (options.cert, options.key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsIdentity {
            certificate_chain_pem: std::fs::read(&cert).map_err(|e| format!("{cert}: {e}"))?,
            private_key_pem: std::fs::read(&key).map_err(|e| format!("{key}: {e}"))?,
        }),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(FakeGatewayConfig {
        bind: SocketAddr::new(options.host, options.port),
        apps,
        token_lifetime: options.lifetime,
        tls,
        log_requests: options.verbose,
        path_prefix: options.path_prefix,
        timestamp_window: options.timestamp_window,
    })
}

/// The options, or `None` once `--help` or `--version` was answered.
fn parse_arguments(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        host: [127, 0, 0, 1].into(),
        port: 8080,
        apps: HashMap::new(),
        lifetime: Duration::from_secs(7200),
        cert: None,
        key: None,
        url_file: None,
        max_seconds: None,
        verbose: false,
        path_prefix: String::new(),
        timestamp_window: None,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                print!("{HELP}{}", enos_token::fake::ENDPOINTS);
                return Ok(None);
            }
            "--version" | "-V" => {
                println!("enos-fake-gateway {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--verbose" | "-v" => options.verbose = true,
            flag if !VALUE_OPTIONS.contains(&flag) => {
                return Err(format!("unknown option {flag}"));
            }
            _ => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                set_option(&mut options, &flag, value)?;
            }
        }
    }
    Ok(Some(options))
}

/// One `--flag value` pair.
fn set_option(options: &mut Options, flag: &str, value: String) -> Result<(), String> {
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| format!("{flag}: not a number: {v}"))
    };
    match flag {
        "--host" => {
            options.host = value
                .parse()
                .map_err(|_| format!("--host: not an IP: {value}"))?
        }
        "--port" => {
            options.port = value
                .parse()
                .map_err(|_| format!("--port: bad port: {value}"))?
        }
        "--app" => {
            let (app_key, secret) = match value.split_once(':') {
                Some((app_key, secret)) => (app_key.to_string(), secret.to_string()),
                None => (
                    value.clone(),
                    std::env::var("ENOS_FAKE_APP_SECRET").map_err(|_| {
                        format!("--app {value}: set ENOS_FAKE_APP_SECRET, or give KEY:SECRET")
                    })?,
                ),
            };
            options.apps.insert(app_key, secret);
        }
        "--apps-file" => {
            let text = std::fs::read_to_string(&value).map_err(|e| format!("{value}: {e}"))?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (app_key, secret) = line
                    .split_once(':')
                    .ok_or(format!("{value}: each line is KEY:SECRET"))?;
                options.apps.insert(app_key.to_string(), secret.to_string());
            }
        }
        "--token-lifetime" => options.lifetime = Duration::from_secs(number(&value)?),
        "--tls-cert" => options.cert = Some(value),
        "--tls-key" => options.key = Some(value),
        "--url-file" => options.url_file = Some(value),
        "--max-seconds" => options.max_seconds = Some(number(&value)?),
        "--path-prefix" if !value.starts_with('/') => {
            return Err(format!("--path-prefix: {value} does not start with /"));
        }
        "--path-prefix" => options.path_prefix = value,
        "--timestamp-window" => {
            let seconds = number(&value)?;
            options.timestamp_window = (seconds > 0).then(|| Duration::from_secs(seconds));
        }
        other => return Err(format!("unknown option {other}")),
    }
    Ok(())
}
