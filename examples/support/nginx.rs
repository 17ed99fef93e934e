//! What the benchmarks against nginx share (included with `#[path]`): an
//! nginx on loopback answering every path with a static token JSON (a valid
//! token answer and a valid API answer), keep-alive, over HTTP and over
//! HTTPS with the test CA's certificate; and the C contenders' build.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN_JSON: &str = r#"{"status":0,"msg":"SUCCESS","business":"apim-token-service","data":{"accessToken":"APP_0123456789abcdef0123456789","expire":7200}}"#;

pub fn repo() -> &'static Path {
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

/// nginx, one worker, stopped and its folder removed when dropped.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub http: u16,
    pub https: u16,
}

impl Nginx {
    /// Starts nginx, if it is installed.
    pub fn start() -> Option<Nginx> {
        let nginx = ["/usr/sbin/nginx", "nginx"].into_iter().find(|n| {
            Command::new(n)
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
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
events {{ worker_connections 1024; }}
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
            "server: {} (one worker, static JSON, keep-alive)",
            String::from_utf8_lossy(&version.stderr).trim()
        );
        Some(Nginx {
            child,
            dir,
            http,
            https,
        })
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.https)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds `examples/c/<name>.c` with `libraries` (-O2), if their headers are
/// installed; the program's path.
pub fn build_c_program(name: &str, libraries: &[&str]) -> Option<PathBuf> {
    let output = repo().join(format!("target/{name}"));
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&output)
        .arg(repo().join(format!("examples/c/{name}.c")))
        .args(libraries)
        .status()
        .ok()?;
    status.success().then_some(output)
}

/// The flags that compile and link a C program against the release library
/// (built now).
#[allow(dead_code)] // included by benchmarks that do not all link C programs to it
pub fn release_library_flags() -> Option<Vec<String>> {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--lib", "--quiet"])
        .current_dir(repo())
        .status()
        .ok()?;
    let library_dir = repo().join("target/release");
    built.success().then(|| {
        vec![
            format!("-I{}", repo().join("include").display()),
            format!("-L{}", library_dir.display()),
            format!("-Wl,-rpath,{}", library_dir.display()),
            "-lenos_token".to_string(),
        ]
    })
}

/// Runs a contender (without a proxy) and returns the figures it printed
/// after its count: "<calls> calls, <figure> <unit>, <figure> <unit>...".
#[allow(dead_code)] // included by benchmarks that do not all run contenders
pub fn contender_figures(command: &mut Command) -> Vec<f64> {
    let output = command.env("NO_PROXY", "*").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{command:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Vec<f64> = stdout
        .split(", ")
        .skip(1)
        .filter_map(|part| part.split(' ').next()?.parse().ok())
        .collect();
    assert!(!figures.is_empty(), "unexpected output: {stdout}");
    figures
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
