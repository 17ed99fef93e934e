//! Benchmark: 1,000 API calls with 64 in flight, against nginx on loopback,
//! over HTTP and HTTPS: the library's non-blocking calls
//! (`enos_client_send_async`, `max_concurrent_calls` 64) against libcurl's
//! multi interface with 64 transfers at once (each signed with
//! `enos_client_auth_headers`), both from `examples/c/bench_calls_in_flight.c`
//! so that they run as alike as can be.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_calls_in_flight
//! ```
//!
//! Rounds interleave the contenders, each a fresh process that first makes
//! the same 1,000 calls once (a warm-up: the connections, and the library's
//! worker threads, which both then keep) and is measured on the second
//! 1,000; the table shows the median of the rounds: calls per second (wall
//! time) and CPU per call (getrusage, user + system, every thread of the
//! process).

#[path = "support/nginx.rs"]
mod nginx;

use std::path::Path;
use std::process::Command;

use nginx::{Nginx, build_c_program, contender_figures, median, release_library_flags, repo};

const CALLS: u32 = 1000;
const CONCURRENCY: u32 = 64;
const ROUNDS: usize = 9;

/// One round of one contender: (wall ms, CPU ms).
fn round(program: &Path, mode: &str, url: &str, ca_file: Option<&Path>) -> (f64, f64) {
    let ca = ca_file.map_or("-".into(), |p| p.display().to_string());
    let figures = contender_figures(Command::new(program).args([
        mode,
        url,
        &ca,
        "bench-key",
        "bench-secret",
        &CALLS.to_string(),
        &CONCURRENCY.to_string(),
    ]));
    // "<calls> calls, <wall> ms, <cpu> ms CPU"
    (figures[0], figures[1])
}

fn main() {
    let Some(nginx) = Nginx::start() else {
        println!("not measured: nginx is not installed (apt-get install nginx)");
        return;
    };
    let program = release_library_flags().and_then(|mut flags| {
        flags.push("-lcurl".into());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        build_c_program("bench_calls_in_flight", &flags)
    });
    let Some(program) = program else {
        println!(
            "not measured: the C contender was not built (apt-get install libcurl4-openssl-dev)"
        );
        return;
    };
    let ca_file = repo().join("tests/data/tls/ca.crt");
    println!(
        "{CALLS} calls, {CONCURRENCY} in flight, {ROUNDS} interleaved rounds (fresh processes), median"
    );
    println!(
        "{:<6} {:>12} {:>12} {:>9}   {:>12} {:>12} {:>9}",
        "", "enos calls/s", "curl calls/s", "ratio", "enos CPU/call", "curl CPU/call", "ratio"
    );
    for (name, url, ca) in [
        ("HTTP", nginx.http_url(), None),
        ("HTTPS", nginx.https_url(), Some(ca_file.as_path())),
    ] {
        let (mut enos_rates, mut curl_rates, mut enos_cpu, mut curl_cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (wall, cpu) = round(&program, "enos", &url, ca);
            enos_rates.push(f64::from(CALLS) / wall * 1000.0);
            enos_cpu.push(cpu * 1000.0 / f64::from(CALLS));
            let (wall, cpu) = round(&program, "curl", &url, ca);
            curl_rates.push(f64::from(CALLS) / wall * 1000.0);
            curl_cpu.push(cpu * 1000.0 / f64::from(CALLS));
        }
        let (enos_rate, curl_rate) = (median(enos_rates), median(curl_rates));
        let (enos_cpu, curl_cpu) = (median(enos_cpu), median(curl_cpu));
        println!(
            "{name:<6} {enos_rate:>12.0} {curl_rate:>12.0} {:>8.2}x   {:>10.1}µs {:>10.1}µs {:>8.2}x",
            enos_rate / curl_rate,
            enos_cpu,
            curl_cpu,
            enos_cpu / curl_cpu,
        );
    }
    println!(
        "calls/s ratio: enos / curl (>= 1.0: at least as many calls per second); CPU ratio: enos / curl. \
         machine: {} logical CPUs, nginx on the same machine",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
