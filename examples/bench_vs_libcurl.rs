//! Benchmark: a Get through enos-token's C ABI against a hand-written
//! libcurl + OpenSSL client (examples/c/bench_libcurl.c) and the raw-socket
//! floor (examples/c/bench_raw.c: one write and one read per call), on
//! loopback.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_vs_libcurl
//! ```
//!
//! The token server is nginx (when installed) answering a static token JSON
//! with keep-alive, over HTTP and HTTPS (the test CA in tests/data/tls);
//! without nginx it is the fake gateway, which does real work per request
//! (said in the output). Rounds interleave the contenders; each reports the
//! cost per call of CALLS calls on one kept-alive connection, after a warm-up;
//! the table shows the median of the rounds. With strace installed and nginx
//! serving, it also counts the system calls per call of each contender
//! (strace -f -c over 500 and 1,500 calls; the difference over 1,000), the
//! library's through this program run as `--calls URL CA|- N`.
//!
//! Signed API calls have their own benchmark, with CPU time:
//! `examples/bench_call_cost.rs`.

#[path = "support/abi_client.rs"]
mod abi_client;
#[path = "support/nginx.rs"]
mod nginx;

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr;
use std::time::{Duration, Instant};

use abi_client::Client;
use nginx::{Nginx, build_c_program, contender_figures, median, repo};

use enos_token::fake::{FakeGateway, FakeGatewayConfig, TlsIdentity};
use enos_token::ffi::client::*;
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::oneshot::enos_get_access_token;
use enos_token::ffi::strings::enos_string_free;

const CALLS: u32 = 5000;
const ROUNDS: usize = 7;
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

/// The token servers: nginx, or the fake gateway.
enum Servers {
    Nginx(Nginx),
    Fake {
        http: FakeGateway,
        https: FakeGateway,
    },
}

impl Servers {
    fn start() -> Servers {
        match Nginx::start() {
            Some(nginx) => Servers::Nginx(nginx),
            None => Self::start_fake(),
        }
    }

    fn start_fake() -> Servers {
        let mut config = FakeGatewayConfig::new(KEY, SECRET);
        config.apps.insert("bench-curl".into(), SECRET.into());
        config.apps.insert("bench-raw".into(), SECRET.into());
        let http = FakeGateway::start(config.clone()).unwrap();
        let tls = repo().join("tests/data/tls");
        config.tls = Some(TlsIdentity {
            certificate_chain_pem: std::fs::read(tls.join("localhost.crt")).unwrap(),
            private_key_pem: std::fs::read(tls.join("localhost.key")).unwrap(),
        });
        let https = FakeGateway::start(config).unwrap();
        println!(
            "token server: the fake gateway (nginx not installed; it checks every request, so costs include its work)"
        );
        Servers::Fake { http, https }
    }

    fn urls(&self) -> (String, String) {
        match self {
            Servers::Nginx(nginx) => (nginx.http_url(), nginx.https_url()),
            Servers::Fake { http, https } => (
                http.url(),
                format!("https://localhost:{}", https.address().port()),
            ),
        }
    }

    /// The app key the libcurl client uses (a separate app on the fake, so
    /// that the two processes' timestamps can never collide).
    fn curl_key(&self) -> &'static str {
        match self {
            Servers::Nginx(_) => KEY,
            Servers::Fake { .. } => "bench-curl",
        }
    }

    /// The app key the raw client uses (likewise).
    fn raw_key(&self) -> &'static str {
        match self {
            Servers::Nginx(_) => KEY,
            Servers::Fake { .. } => "bench-raw",
        }
    }
}

impl Client {
    /// A client of the benchmark's app.
    fn of_bench_app(url: &str, ca_file: Option<&Path>) -> Client {
        Client::new(url, KEY, SECRET, ca_file)
    }

    /// Nanoseconds per `enos_client_get_token` + `enos_string_free`.
    fn time_calls(&self, calls: u32) -> f64 {
        let started = Instant::now();
        for _ in 0..calls {
            let mut token: *mut c_char = ptr::null_mut();
            // SAFETY: a live client; the token is freed right away.
            unsafe {
                assert_eq!(
                    enos_client_get_token(self.0, &mut token, ptr::null_mut()),
                    ENOS_OK
                );
                enos_string_free(token);
            }
        }
        started.elapsed().as_nanos() as f64 / f64::from(calls)
    }
}

/// Nanoseconds per one-shot `enos_get_access_token` + `enos_string_free`.
fn time_one_shot(url: &str, calls: u32) -> f64 {
    let url = CString::new(url).unwrap();
    let (key, secret) = (CString::new(KEY).unwrap(), CString::new(SECRET).unwrap());
    let started = Instant::now();
    for _ in 0..calls {
        let mut token: *mut c_char = ptr::null_mut();
        // SAFETY: valid strings; the token is freed right away.
        unsafe {
            let status = enos_get_access_token(
                url.as_ptr(),
                key.as_ptr(),
                secret.as_ptr(),
                &mut token,
                ptr::null_mut(),
            );
            assert_eq!(status, ENOS_OK);
            enos_string_free(token);
        }
    }
    started.elapsed().as_nanos() as f64 / f64::from(calls)
}

/// The cost per call that a C client printed ("N calls, X ns per call").
fn run_c_client(command: &mut Command) -> f64 {
    contender_figures(command)[0]
}

fn raw_command(program: &Path, url: &str, key: &str, calls: u32) -> Command {
    let authority = url.trim_start_matches("http://");
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    let mut command = Command::new(program);
    command.args([host, port, key, SECRET, &calls.to_string()]);
    command
}

fn libcurl_command(
    program: &Path,
    url: &str,
    ca_file: Option<&Path>,
    key: &str,
    calls: u32,
) -> Command {
    let ca = ca_file.map_or("-".to_string(), |p| p.to_string_lossy().into_owned());
    let mut command = Command::new(program);
    command.args([url, &ca, key, SECRET, &calls.to_string()]);
    command
}

fn self_command(url: &str, ca_file: Option<&Path>, calls: u32) -> Command {
    let ca = ca_file.map_or("-".to_string(), |p| p.to_string_lossy().into_owned());
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--calls", url, &ca, &calls.to_string()]);
    command
}

/// System calls per call: strace -f -c over `command(500)` and
/// `command(1500)`, the difference over 1,000 calls.
fn system_calls_per_call(command: impl Fn(u32) -> Command) -> Option<f64> {
    let total = |calls: u32| -> Option<u64> {
        let file = std::env::temp_dir().join(format!("enos-strace-{}-{calls}", std::process::id()));
        let inner = command(calls);
        let status = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&file)
            .arg(inner.get_program())
            .args(inner.get_args())
            .env("NO_PROXY", "*")
            .stdout(Stdio::null())
            .status()
            .ok()?;
        let report = std::fs::read_to_string(&file).ok()?;
        let _ = std::fs::remove_file(&file);
        if !status.success() {
            return None;
        }
        report
            .lines()
            .find(|line| line.trim_end().ends_with("total"))
            .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
    };
    std::thread::sleep(Duration::from_millis(1100)); // timestamps of earlier runs behind
    let few = total(500)?;
    std::thread::sleep(Duration::from_millis(1100));
    let many = total(1500)?;
    Some((many as f64 - few as f64) / 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--calls" {
        // One contender for strace: the library's client, N calls.
        let ca = (args[3] != "-").then(|| PathBuf::from(&args[3]));
        let client = Client::of_bench_app(&args[2], ca.as_deref());
        client.time_calls(200);
        client.time_calls(args[4].parse().expect("a number of calls"));
        return;
    }
    let servers = Servers::start();
    let (http_url, https_url) = servers.urls();
    let ca_file = repo().join("tests/data/tls/ca.crt");
    let libcurl = build_c_program("bench_libcurl", &["-lcurl", "-lcrypto"]);
    let raw = build_c_program("bench_raw", &["-lcrypto"]);
    if libcurl.is_none() || raw.is_none() {
        println!(
            "C clients not built (headers missing: apt-get install libcurl4-openssl-dev libssl-dev)"
        );
    }

    println!("{CALLS} calls per round, {ROUNDS} interleaved rounds, median; microseconds per call");
    println!(
        "{:<6} {:>8} {:>8} {:>8} {:>8} {:>12} {:>11} {:>14}",
        "", "client", "1-shot", "libcurl", "raw", "client/curl", "client/raw", "1-shot/client"
    );
    let mut cases = Vec::new();
    for (name, url, ca) in [
        ("HTTP", &http_url, None),
        ("HTTPS", &https_url, Some(ca_file.as_path())),
    ] {
        let client = Client::of_bench_app(url, ca);
        client.time_calls(200); // warm-up: connection, TLS, caches
        let plain = ca.is_none(); // one-shot calls trust only the built-in roots; raw is plain TCP
        if plain {
            time_one_shot(url, 200);
        }
        let (mut ours, mut shots, mut curls, mut raws) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(client.time_calls(CALLS));
            if plain {
                shots.push(time_one_shot(url, CALLS));
            }
            if let Some(program) = &libcurl {
                curls.push(run_c_client(&mut libcurl_command(
                    program,
                    url,
                    ca,
                    servers.curl_key(),
                    CALLS,
                )));
            }
            if let (Some(program), true) = (&raw, plain) {
                raws.push(run_c_client(&mut raw_command(
                    program,
                    url,
                    servers.raw_key(),
                    CALLS,
                )));
            }
        }
        let middle = |values: Vec<f64>| (!values.is_empty()).then(|| median(values) / 1000.0);
        let ours = median(ours) / 1000.0;
        let (shot, curl, floor) = (middle(shots), middle(curls), middle(raws));
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let ratio = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}x", ours / v));
        println!(
            "{name:<6} {ours:>8.1} {:>8} {:>8} {:>8} {:>12} {:>11} {:>14}",
            cell(shot),
            cell(curl),
            cell(floor),
            ratio(curl),
            ratio(floor),
            shot.map_or("-".into(), |s| format!("{:.2}x", s / ours)),
        );
        cases.push((name, url.clone(), ca));
    }
    println!("signed API calls: see examples/bench_call_cost.rs (CPU and wall time per call)");
    let strace = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if strace && matches!(servers, Servers::Nginx(_)) {
        println!("system calls per call (strace -f -c):");
        for (name, url, ca) in cases {
            let ours = system_calls_per_call(|n| self_command(&url, ca, n));
            let curl = libcurl.as_ref().and_then(|program| {
                system_calls_per_call(|n| libcurl_command(program, &url, ca, servers.curl_key(), n))
            });
            let floor = raw.as_ref().filter(|_| ca.is_none()).and_then(|program| {
                system_calls_per_call(|n| raw_command(program, &url, servers.raw_key(), n))
            });
            let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            println!(
                "{name:<6} client {}  libcurl {}  raw {}",
                cell(ours),
                cell(curl),
                cell(floor)
            );
        }
    } else {
        println!("system calls not counted (needs strace, and nginx as the token server)");
    }
    println!(
        "machine: {} logical CPUs; one-shot over HTTPS not measured (it trusts only the built-in roots, not the test CA)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
