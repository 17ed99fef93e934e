//! Benchmark: files both ways through `Client::send` (the core of
//! `enos_client_send`) against curl, on loopback nginx, over HTTP and HTTPS.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_files [-- SIZE_MIB]
//! ```
//!
//! nginx (required) serves a file of SIZE_MIB (default 1024) from a
//! temporary folder and discards uploads (`return 200` reads and drops the
//! body), with the test CA's certificate for HTTPS. Each contender runs in a
//! process of its own, so that its peak RSS is its own:
//!
//! * download to `/dev/null`: `enos-token` with an output fd, against
//!   `curl -o /dev/null`;
//! * upload from the file: `enos-token` with `set_body_file`, against
//!   `curl --data-binary @file` (which reads the file into memory first)
//!   and `curl -T file` (which streams it).
//!
//! Time is the transfer's wall time (curl's own `time_total`); rounds
//! interleave the contenders and the table shows the median. Memory is the
//! peak RSS of the process (wait4), and for enos-token the growth of its peak
//! RSS from after one small call to after the transfer.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enos_token::{ClientBuilder, Request};

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
const ROUNDS: usize = 3;
const TOKEN_JSON: &str = r#"{"status":0,"msg":"SUCCESS","business":"apim-token-service","data":{"accessToken":"APP_0123456789abcdef0123456789","expire":7200}}"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peak_rss_kib() -> i64 {
    // SAFETY: a zeroed rusage is a valid output buffer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// Waits for `child` and returns its exit success and peak RSS (KiB).
fn wait_with_rss(child: &mut Child) -> (bool, i64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid output buffer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child's pid, valid pointers.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage.ru_maxrss,
    )
}

/// `--worker download|upload URL CA|- FILE`: one transfer through the
/// library; prints `seconds rss_before_kib rss_after_kib`.
fn worker(args: &[String]) {
    let (direction, url, ca, file) = (&args[0], &args[1], &args[2], &args[3]);
    let mut builder = ClientBuilder::new(url, KEY, SECRET).unwrap();
    builder.proxy("").unwrap();
    if ca != "-" {
        builder.ca_file(ca).unwrap();
    }
    let client = builder.build().unwrap();
    // The empty call: a token, a connection, a small answer.
    assert_eq!(
        client.request("GET", "/empty", None, b"").unwrap().status(),
        200
    );
    let before = peak_rss_kib();
    let started = Instant::now();
    let response = if direction == "download" {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let mut request = Request::new("GET", "/files/data.bin").unwrap();
        request.output_fd(null.as_raw_fd()).unwrap();
        client.send(&request).unwrap()
    } else {
        let mut request = Request::new("POST", "/upload").unwrap();
        request.body_file(None, file).unwrap();
        client.send(&request).unwrap()
    };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(response.status(), 200);
    println!("{seconds} {before} {}", peak_rss_kib());
}

struct Nginx {
    child: Child,
    dir: PathBuf,
    http: u16,
    https: u16,
}

impl Nginx {
    fn start(data_dir: &Path) -> Nginx {
        let dir = std::env::temp_dir().join(format!("enos-bench-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let (http, https) = (free_port(), free_port());
        let tls = repo().join("tests/data/tls");
        let locations = format!(
            "location = /apim-token-service/v2.0/token/get {{ return 200 '{TOKEN_JSON}'; }}
    location = /empty {{ return 200 'ok'; }}
    location /files/ {{ alias {}/; }}
    location = /upload {{ client_max_body_size 0; return 200 '{{\"code\":0}}'; }}",
            data_dir.display()
        );
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log stderr error;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  default_type application/json;
  server {{ listen 127.0.0.1:{http}; {locations} }}
  server {{
    listen 127.0.0.1:{https} ssl;
    ssl_certificate {tls}/localhost.crt;
    ssl_certificate_key {tls}/localhost.key;
    {locations}
  }}
}}
"#,
            dir = dir.display(),
            tls = tls.display(),
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let child = Command::new("nginx")
            .args([
                "-p",
                &dir.to_string_lossy(),
                "-c",
                &dir.join("nginx.conf").to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx starts (apt-get install nginx)");
        for port in [http, https] {
            let until = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < until, "nginx did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Nginx {
            child,
            dir,
            http,
            https,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One measurement: seconds, peak RSS (KiB), and RSS growth (KiB) for ours.
#[derive(Clone, Copy, Default)]
struct Run {
    seconds: f64,
    peak_kib: i64,
    growth_kib: Option<i64>,
}

fn ours(direction: &str, url: &str, ca: &str, file: &Path) -> Result<Run, String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--worker", direction, url, ca, &file.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let (ok, peak_kib) = wait_with_rss(&mut child);
    assert!(ok, "worker failed: {out}");
    let fields: Vec<f64> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    Ok(Run {
        seconds: fields[0],
        peak_kib,
        growth_kib: Some((fields[2] - fields[1]) as i64),
    })
}

/// A curl run, or what curl said when it failed.
fn curl(args: &[&str], url: &str, ca: &str) -> Result<Run, String> {
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
        "-w",
        "%{time_total}",
    ]);
    if ca != "-" {
        command.args(["--cacert", ca]);
    }
    let mut child = command
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let (ok, peak_kib) = wait_with_rss(&mut child);
    if !ok {
        return Err(err.lines().next().unwrap_or("failed").to_string());
    }
    Ok(Run {
        seconds: out.trim().parse().unwrap(),
        peak_kib,
        growth_kib: None,
    })
}

fn median(runs: &mut [Run]) -> Run {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs[runs.len() / 2]
}

type Contender = (String, Box<dyn Fn() -> Result<Run, String>>);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker(&args[1..]);
    }
    let size_mib: u64 = args.first().map_or(1024, |a| a.parse().expect("SIZE_MIB"));
    let data_dir = std::env::temp_dir().join(format!("enos-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let file = data_dir.join("data.bin");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut block = vec![0u8; 1024 * 1024];
        for mib in 0..size_mib {
            for (i, byte) in block.iter_mut().enumerate() {
                *byte = (i as u64 * 131 + mib * 7) as u8;
            }
            std::io::Write::write_all(&mut out, &block).unwrap();
        }
    }
    let nginx = Nginx::start(&data_dir);
    let ca = repo()
        .join("tests/data/tls/ca.crt")
        .to_string_lossy()
        .into_owned();
    let version = Command::new("curl").arg("--version").output().unwrap();
    println!(
        "{size_mib} MiB over loopback nginx; curl: {}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
    println!(
        "median of {ROUNDS} rounds; peak RSS of each process; growth = enos-token's peak RSS after the transfer minus after one small call"
    );
    println!(
        "{:<34} {:>9} {:>10} {:>11} {:>8}",
        "", "seconds", "MiB/s", "peak RSS", "growth"
    );
    for (scheme, base, ca) in [
        (
            "HTTP",
            format!("http://127.0.0.1:{}", nginx.http),
            "-".to_string(),
        ),
        (
            "HTTPS",
            format!("https://localhost:{}", nginx.https),
            ca.clone(),
        ),
    ] {
        let file_arg = format!("@{}", file.display());
        let file_path = file.to_string_lossy().into_owned();
        let contenders: Vec<Contender> = vec![
            (
                format!("{scheme} download  enos-token"),
                Box::new({
                    let (base, ca, file) = (base.clone(), ca.clone(), file.clone());
                    move || ours("download", &base, &ca, &file)
                }),
            ),
            (
                format!("{scheme} download  curl -o /dev/null"),
                Box::new({
                    let (url, ca) = (format!("{base}/files/data.bin"), ca.clone());
                    move || curl(&[], &url, &ca)
                }),
            ),
            (
                format!("{scheme} upload    enos-token"),
                Box::new({
                    let (base, ca, file) = (base.clone(), ca.clone(), file.clone());
                    move || ours("upload", &base, &ca, &file)
                }),
            ),
            (
                format!("{scheme} upload    curl --data-binary @"),
                Box::new({
                    let (url, ca, arg) = (format!("{base}/upload"), ca.clone(), file_arg.clone());
                    move || curl(&["--data-binary", &arg], &url, &ca)
                }),
            ),
            (
                format!("{scheme} upload    curl -T (streams)"),
                Box::new({
                    let (url, ca, path) = (format!("{base}/upload"), ca.clone(), file_path.clone());
                    move || curl(&["-X", "POST", "-T", &path], &url, &ca)
                }),
            ),
        ];
        let mut results: Vec<Vec<Run>> = vec![Vec::new(); contenders.len()];
        let mut failures: Vec<Option<String>> = vec![None; contenders.len()];
        for _ in 0..ROUNDS {
            for (index, (_, run)) in contenders.iter().enumerate() {
                if failures[index].is_some() {
                    continue;
                }
                match run() {
                    Ok(run) => results[index].push(run),
                    Err(why) => failures[index] = Some(why),
                }
            }
        }
        for (index, (name, _)) in contenders.iter().enumerate() {
            if let Some(why) = &failures[index] {
                println!("{name:<34} failed: {why}");
                continue;
            }
            let run = median(&mut results[index]);
            println!(
                "{:<34} {:>9.3} {:>10.0} {:>8} KiB {:>8}",
                name,
                run.seconds,
                size_mib as f64 / run.seconds,
                run.peak_kib,
                run.growth_kib
                    .map_or("".to_string(), |g| format!("{g} KiB"))
            );
        }
    }
    drop(nginx);
    let _ = std::fs::remove_dir_all(&data_dir);
}
