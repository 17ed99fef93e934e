//! `enos-fake-gateway`: the fake EnOS token service as a program, for trying
//! the library and for tests in C, C++, Python and other languages.
//!
//! ```text
//! enos-fake-gateway [--host 127.0.0.1] [--port 8080] [--app KEY:SECRET | --app KEY]...
//!                   [--apps-file PATH] [--token-lifetime SECONDS] [--path-prefix PATH]
//!                   [--tls-cert PEM --tls-key PEM] [--url-file PATH] [--max-seconds N]
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
                         other prefix get 404, as at a real gateway
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

fn run() -> Result<(), String> {
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 8080;
    let mut apps = HashMap::new();
    let mut lifetime = Duration::from_secs(7200);
    let (mut cert, mut key, mut url_file, mut max_seconds) = (None, None, None, None);

    let mut verbose = false;
    let mut path_prefix = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                print!("{HELP}{}", enos_token::fake::ENDPOINTS);
                return Ok(());
            }
            "--version" | "-V" => {
                println!("enos-fake-gateway {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            "--verbose" | "-v" => {
                verbose = true;
                continue;
            }
            "--host" | "--port" | "--app" | "--apps-file" | "--token-lifetime" | "--tls-cert"
            | "--tls-key" | "--url-file" | "--max-seconds" | "--path-prefix" => {}
            other => return Err(format!("unknown option {other}")),
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--host" => {
                host = value
                    .parse()
                    .map_err(|_| format!("--host: not an IP: {value}"))?
            }
            "--port" => {
                port = value
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
                apps.insert(app_key, secret);
            }
            "--apps-file" => {
                let text = std::fs::read_to_string(&value).map_err(|e| format!("{value}: {e}"))?;
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let (app_key, secret) = line
                        .split_once(':')
                        .ok_or(format!("{value}: each line is KEY:SECRET"))?;
                    apps.insert(app_key.to_string(), secret.to_string());
                }
            }
            "--token-lifetime" => lifetime = Duration::from_secs(number(&value)?),
            "--tls-cert" => cert = Some(value),
            "--tls-key" => key = Some(value),
            "--url-file" => url_file = Some(value),
            "--max-seconds" => max_seconds = Some(number(&value)?),
            "--path-prefix" if !value.starts_with('/') => {
                return Err(format!("--path-prefix: {value} does not start with /"));
            }
            "--path-prefix" => path_prefix = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let demo_app = apps.is_empty();
    if demo_app {
        apps.insert("demo-app-key".to_string(), "demo-app-secret".to_string());
    }
    let tls = match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsIdentity {
            certificate_chain_pem: std::fs::read(&cert).map_err(|e| format!("{cert}: {e}"))?,
            private_key_pem: std::fs::read(&key).map_err(|e| format!("{key}: {e}"))?,
        }),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let config = FakeGatewayConfig {
        bind: SocketAddr::new(host, port),
        apps,
        token_lifetime: lifetime,
        tls,
        log_requests: verbose,
        path_prefix,
    };
    let gateway = FakeGateway::start(config).map_err(|e| format!("cannot start: {e}"))?;
    let url = gateway.url();
    if let Some(path) = url_file {
        std::fs::write(&path, format!("{url}\n")).map_err(|e| format!("{path}: {e}"))?;
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
