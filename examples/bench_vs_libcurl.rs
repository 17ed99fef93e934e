//! Benchmark: a Get through enos-token's C ABI against a hand-written
//! libcurl + OpenSSL client (examples/c/bench_libcurl.c), on loopback.
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
//! the table shows the median of the rounds.

use std::ffi::{CString, c_char};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::time::{Duration, Instant};

use enos_token::fake::{FakeGateway, FakeGatewayConfig, TlsIdentity};
use enos_token::ffi::client::*;
use enos_token::ffi::enos_client;
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::oneshot::enos_get_access_token;
use enos_token::ffi::strings::enos_string_free;

const CALLS: u32 = 5000;
const ROUNDS: usize = 7;
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
const TOKEN_JSON: &str = r#"{"status":0,"msg":"SUCCESS","business":"apim-token-service","data":{"accessToken":"APP_0123456789abcdef0123456789","expire":7200}}"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The token servers: nginx, or the fake gateway.
enum Servers {
    Nginx {
        child: Child,
        http: u16,
        https: u16,
        dir: PathBuf,
    },
    Fake {
        http: FakeGateway,
        https: FakeGateway,
    },
}

impl Servers {
    fn start() -> Servers {
        let nginx = ["/usr/sbin/nginx", "nginx"].into_iter().find(|n| {
            Command::new(n)
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        match nginx {
            Some(nginx) => Self::start_nginx(nginx),
            None => Self::start_fake(),
        }
    }

    fn start_nginx(nginx: &str) -> Servers {
        let dir = std::env::temp_dir().join(format!("enos-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let (http, https) = (free_port(), free_port());
        let tls = repo().join("tests/data/tls");
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log stderr error;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/json;
  server {{ listen 127.0.0.1:{http}; location / {{ return 200 '{TOKEN_JSON}'; }} }}
  server {{
    listen 127.0.0.1:{https} ssl;
    ssl_certificate {tls}/localhost.crt;
    ssl_certificate_key {tls}/localhost.key;
    location / {{ return 200 '{TOKEN_JSON}'; }}
  }}
}}
"#,
            dir = dir.display(),
            tls = tls.display(),
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let child = Command::new(nginx)
            .args([
                "-p",
                &dir.to_string_lossy(),
                "-c",
                &dir.join("nginx.conf").to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx starts");
        wait_for(http);
        wait_for(https);
        let version = Command::new(nginx).arg("-v").output().unwrap();
        println!(
            "token server: {} (static token JSON, keep-alive)",
            String::from_utf8_lossy(&version.stderr).trim()
        );
        Servers::Nginx {
            child,
            http,
            https,
            dir,
        }
    }

    fn start_fake() -> Servers {
        let mut config = FakeGatewayConfig::new(KEY, SECRET);
        config.apps.insert("bench-curl".into(), SECRET.into());
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
            Servers::Nginx { http, https, .. } => (
                format!("http://127.0.0.1:{http}"),
                format!("https://localhost:{https}"),
            ),
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
            Servers::Nginx { .. } => KEY,
            Servers::Fake { .. } => "bench-curl",
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Servers::Nginx { child, dir, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

struct Client(*mut enos_client);

impl Client {
    fn new(url: &str, ca_file: Option<&Path>) -> Client {
        let url = CString::new(url).unwrap();
        let (key, secret) = (CString::new(KEY).unwrap(), CString::new(SECRET).unwrap());
        let mut builder = ptr::null_mut();
        let mut client = ptr::null_mut();
        // SAFETY: valid strings and out-pointers; the builder is consumed by build.
        unsafe {
            assert_eq!(
                enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
                ENOS_OK
            );
            assert_eq!(
                enos_client_builder_set_proxy(builder, c"".as_ptr()),
                ENOS_OK
            );
            if let Some(ca_file) = ca_file {
                let ca_file = CString::new(ca_file.to_string_lossy().as_bytes()).unwrap();
                assert_eq!(
                    enos_client_builder_set_ca_file(builder, ca_file.as_ptr()),
                    ENOS_OK
                );
            }
            assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
        }
        Client(client)
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

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: built by Client::new, freed once.
        unsafe { enos_client_free(self.0) };
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

/// Builds examples/c/bench_libcurl.c when libcurl's headers are installed.
fn build_libcurl_client() -> Option<PathBuf> {
    let output = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench_libcurl");
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&output)
        .arg(repo().join("examples/c/bench_libcurl.c"))
        .args(["-lcurl", "-lcrypto"])
        .status()
        .ok()?;
    status.success().then_some(output)
}

fn time_libcurl(program: &Path, url: &str, ca_file: Option<&Path>, key: &str, calls: u32) -> f64 {
    let ca = ca_file.map_or("-".to_string(), |p| p.to_string_lossy().into_owned());
    let output = Command::new(program)
        .args([url, &ca, key, SECRET, &calls.to_string()])
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("bench_libcurl prints its cost")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let servers = Servers::start();
    let (http_url, https_url) = servers.urls();
    let ca_file = repo().join("tests/data/tls/ca.crt");
    let libcurl = build_libcurl_client();
    if libcurl.is_none() {
        println!(
            "libcurl client not built (libcurl headers missing: apt-get install libcurl4-openssl-dev)"
        );
    }

    println!("{CALLS} calls per round, {ROUNDS} interleaved rounds, median; microseconds per call");
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "", "enos client", "enos 1-shot", "libcurl", "client/curl", "1-shot/client"
    );
    for (name, url, ca) in [
        ("HTTP", &http_url, None),
        ("HTTPS", &https_url, Some(ca_file.as_path())),
    ] {
        let client = Client::new(url, ca);
        client.time_calls(200); // warm-up: connection, TLS, caches
        let one_shot = ca.is_none(); // one-shot calls trust only the built-in roots
        if one_shot {
            time_one_shot(url, 200);
        }
        let (mut ours, mut shots, mut curls) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(client.time_calls(CALLS));
            if one_shot {
                shots.push(time_one_shot(url, CALLS));
            }
            if let Some(program) = &libcurl {
                curls.push(time_libcurl(program, url, ca, servers.curl_key(), CALLS));
            }
        }
        let ours = median(ours) / 1000.0;
        let shot = (!shots.is_empty()).then(|| median(shots) / 1000.0);
        let curl = (!curls.is_empty()).then(|| median(curls) / 1000.0);
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "{name:<8} {ours:>12.1} {:>12} {:>12} {:>12} {:>14}",
            cell(shot),
            cell(curl),
            curl.map_or("-".into(), |c| format!("{:.2}x", ours / c)),
            shot.map_or("-".into(), |s| format!("{:.2}x", s / ours)),
        );
    }
    println!(
        "machine: {} logical CPUs; one-shot over HTTPS not measured (it trusts only the built-in roots, not the test CA)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
