//! Benchmark: the cost of one signed API call, CPU time as well as wall
//! time, for `enos_client_request` against libcurl sending the headers
//! `enos_client_auth_headers` made (examples/c/bench_libcurl_api.c, what
//! programs wrote before) and the raw-socket floor (examples/c/bench_raw.c
//! with `api`: one write, one read and one SHA-256 per call), over HTTP and
//! HTTPS on loopback nginx with keep-alive.
//!
//! ```sh
//! cargo run --release --example bench_call_cost
//! ```
//!
//! Calls alternate between a GET with a query and a POST with a JSON body.
//! Each contender is a process of its own that makes 200 warm-up calls, then
//! CALLS timed ones, and reports wall time and CPU time (getrusage: user +
//! system, its own process only) per call; rounds interleave the
//! contenders, and the table shows the median of the rounds. CPU time is the
//! steadier figure on a shared machine: wall time includes nginx's share of
//! the two cores.
//!
//! `--ours URL CA|- N` runs the library's contender alone (also for
//! profiling: `valgrind --tool=callgrind target/release/examples/bench_call_cost --ours ...`).

#[path = "support/abi_client.rs"]
mod abi_client;
#[path = "support/nginx.rs"]
mod nginx;

use std::path::Path;
use std::process::Command;
use std::ptr;
use std::time::Instant;

use abi_client::Client;
use nginx::{Nginx, build_c_program, contender_figures, median, release_library_flags, repo};

use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::request::enos_client_request;
use enos_token::ffi::response::{enos_response_free, enos_response_status};

const CALLS: u32 = 20_000;
const ROUNDS: usize = 5;
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
const BODY: &[u8] = br#"{"assetIds":["a1","a2"]}"#;

/// User + system CPU time of this process so far, in nanoseconds.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (micros(usage.ru_utime) + micros(usage.ru_stime)) * 1000
}

impl Client {
    /// A client of the benchmark's app.
    fn of_bench_app(url: &str, ca_file: Option<&Path>) -> Client {
        Client::new(url, KEY, SECRET, ca_file)
    }

    /// One signed call, a GET (even `i`) or a POST with a JSON body.
    fn call(&self, i: u32) {
        let mut response = ptr::null_mut();
        let post = i % 2 == 1;
        // SAFETY: a live client and valid strings; the response is freed right away.
        unsafe {
            let status = if post {
                enos_client_request(
                    self.0,
                    c"POST".as_ptr(),
                    c"/connect-service/v2.1/devices?action=get&orgId=o1".as_ptr(),
                    c"application/json;charset=UTF-8".as_ptr(),
                    BODY.as_ptr(),
                    BODY.len(),
                    &mut response,
                )
            } else {
                enos_client_request(
                    self.0,
                    c"GET".as_ptr(),
                    c"/asset-service/v2.1/assets?orgId=o1&pageSize=10".as_ptr(),
                    ptr::null(),
                    ptr::null(),
                    0,
                    &mut response,
                )
            };
            assert_eq!(status, ENOS_OK);
            assert_eq!(enos_response_status(response), 200);
            enos_response_free(response);
        }
    }
}

/// The library's contender, in this process: prints what the C ones print.
fn run_ours(url: &str, ca_file: Option<&Path>, calls: u32) {
    let client = Client::of_bench_app(url, ca_file);
    (0..200).for_each(|i| client.call(i));
    let (started, cpu_started) = (Instant::now(), cpu_ns());
    (0..calls).for_each(|i| client.call(i));
    let (wall, cpu) = (started.elapsed().as_nanos() as u64, cpu_ns() - cpu_started);
    println!(
        "{calls} calls, {} ns per call, {} ns CPU per call",
        wall / u64::from(calls),
        cpu / u64::from(calls)
    );
}

/// Wall and CPU nanoseconds per call that a contender printed.
fn run(command: &mut Command) -> (f64, f64) {
    let figures = contender_figures(command);
    assert_eq!(figures.len(), 2, "wall and CPU time expected: {figures:?}");
    (figures[0], figures[1])
}

fn ca_argument(ca_file: Option<&Path>) -> String {
    ca_file.map_or("-".to_string(), |p| p.to_string_lossy().into_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--ours" {
        let ca = (args[3] != "-").then(|| Path::new(&args[3]).to_path_buf());
        run_ours(&args[2], ca.as_deref(), args[4].parse().expect("a number"));
        return;
    }
    let Some(nginx) = Nginx::start() else {
        println!("not measured: needs nginx (apt-get install nginx)");
        return;
    };
    let libcurl = release_library_flags().and_then(|mut flags| {
        flags.push("-lcurl".into());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        build_c_program("bench_libcurl_api", &flags)
    });
    let (Some(libcurl), Some(raw)) = (libcurl, build_c_program("bench_raw", &["-lcrypto"])) else {
        println!(
            "not measured: the C contenders need libcurl and OpenSSL headers (apt-get install libcurl4-openssl-dev libssl-dev)"
        );
        return;
    };
    let ca_file = repo().join("tests/data/tls/ca.crt");
    println!(
        "signed API calls (GET with a query and POST with a JSON body, alternating), {CALLS} calls per round, \
         {ROUNDS} interleaved rounds, median; microseconds per call"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "wall ours", "wall curl", "wall raw", "CPU ours", "CPU curl", "CPU raw", "CPU o/c"
    );
    for (name, url, ca) in [
        ("HTTP", nginx.http_url(), None),
        ("HTTPS", nginx.https_url(), Some(ca_file.as_path())),
    ] {
        let calls = CALLS.to_string();
        let ours = || {
            let mut command = Command::new(std::env::current_exe().unwrap());
            command.args(["--ours", &url, &ca_argument(ca), &calls]);
            run(&mut command)
        };
        let curl = || {
            let mut command = Command::new(&libcurl);
            command.args([&url, &ca_argument(ca), KEY, SECRET, &calls]);
            run(&mut command)
        };
        let floor = || {
            let authority = url.trim_start_matches("http://");
            let (host, port) = authority.rsplit_once(':').expect("host:port");
            let mut command = Command::new(&raw);
            command.args([host, port, KEY, SECRET, &calls, "api"]);
            run(&mut command)
        };
        let mut figures: [Vec<(f64, f64)>; 3] = Default::default();
        for _ in 0..ROUNDS {
            figures[0].push(ours());
            figures[1].push(curl());
            if ca.is_none() {
                figures[2].push(floor());
            }
        }
        let middle = |values: &Vec<(f64, f64)>, cpu: bool| {
            (!values.is_empty()).then(|| {
                median(values.iter().map(|v| if cpu { v.1 } else { v.0 }).collect()) / 1000.0
            })
        };
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let (ours_cpu, curl_cpu) = (middle(&figures[0], true), middle(&figures[1], true));
        println!(
            "{name:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9.2}x",
            cell(middle(&figures[0], false)),
            cell(middle(&figures[1], false)),
            cell(middle(&figures[2], false)),
            cell(ours_cpu),
            cell(curl_cpu),
            cell(middle(&figures[2], true)),
            ours_cpu.unwrap() / curl_cpu.unwrap(),
        );
        if let (Some(ours), Some(raw)) = (middle(&figures[0], false), middle(&figures[2], false)) {
            println!("{name:<6} wall ours / raw floor: {:.2}x", ours / raw);
        }
    }
    println!(
        "machine: {} logical CPUs; the raw floor is plain TCP only",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
