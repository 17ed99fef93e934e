//! Benchmark: a fleet of 8 processes sharing one app key, against a rate
//! limit and an outage of the fake gateway.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_retries
//! ```
//!
//! 1. **Rate limit.** The fake allows 150 calls/s per app key with a burst
//!    of 20. Each process sends a burst of 4 calls (4 threads) every 0.75 s,
//!    all processes at the same instants (32 calls at once), for 20 s. Goal:
//!    no call ends with a 429, and at most 1.5 requests on the wire per call.
//! 2. **Outage.** Each process sends GETs at 30 calls/s for 15 s; from 5 s to
//!    10 s every API call is answered 503. Goal: requests on the wire during
//!    the outage at most the calls plus each client's retry budget (100
//!    retries), and every call after it succeeds.
//!
//! The fake runs in this process; the 8 clients are processes of their own
//! (this program again, as `--worker`), so they share nothing but the app key.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use enos_token::ClientBuilder;
use enos_token::fake::{FakeGateway, FakeGatewayConfig};

const KEY: &str = "fleet-key";
const SECRET: &str = "fleet-secret";
const PROCESSES: usize = 8;

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sleeps until the wall clock reads `at_ms`.
fn sleep_until(at_ms: u64) {
    let now = wall_ms();
    if at_ms > now {
        std::thread::sleep(Duration::from_millis(at_ms - now));
    }
}

fn client(url: &str) -> enos_token::Client {
    let mut builder = ClientBuilder::new(url, KEY, SECRET).unwrap();
    builder.proxy("").unwrap();
    builder.build().unwrap()
}

/// `--worker rate URL EPOCH_MS SECONDS`: bursts of 4; prints `calls 429s failures`.
fn rate_worker(url: &str, epoch_ms: u64, seconds: u64) {
    let client = client(url);
    client.access_token().unwrap();
    let (mut calls, mut limited, mut failed) = (0, 0, 0);
    let mut tick = 0;
    loop {
        let at = epoch_ms + tick * 750;
        if at >= epoch_ms + seconds * 1000 {
            break;
        }
        sleep_until(at);
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| client.request("GET", "/fake/v1/echo?orgId=o1", None, b"")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for outcome in outcomes {
            calls += 1;
            match outcome {
                Ok(response) if response.status() == 429 => limited += 1,
                Ok(response) if response.status() == 200 => {}
                _ => failed += 1,
            }
        }
        tick += 1;
    }
    println!("{calls} {limited} {failed}");
}

/// `--worker outage URL EPOCH_MS SECONDS FROM_S TO_S`: GETs at 30 calls/s;
/// prints `calls calls_in_outage failures_after_outage`.
fn outage_worker(url: &str, epoch_ms: u64, seconds: u64, from_s: u64, to_s: u64) {
    let client = client(url);
    client.access_token().unwrap();
    let (mut calls, mut in_outage, mut failed_after) = (0, 0, 0);
    let mut tick = 0u64;
    loop {
        let at = epoch_ms + tick * 1000 / 30;
        if at >= epoch_ms + seconds * 1000 {
            break;
        }
        sleep_until(at);
        let started = wall_ms();
        let outcome = client.request("GET", "/fake/v1/echo?orgId=o1", None, b"");
        calls += 1;
        let offset = started - epoch_ms;
        if offset >= from_s * 1000 && offset < to_s * 1000 {
            in_outage += 1;
        }
        // Calls that start a second after the outage ended (the switch is
        // the fake's, in another process: a little slack).
        let ok = matches!(&outcome, Ok(response) if response.status() == 200);
        if offset >= to_s * 1000 + 1000 && !ok {
            failed_after += 1;
        }
        // A call that took long (retries) skips the ticks it missed.
        tick = ((wall_ms() - epoch_ms) * 30 / 1000 + 1).max(tick + 1);
    }
    println!("{calls} {in_outage} {failed_after}");
}

/// Runs 8 workers with `args` (after the URL and epoch) and sums their
/// three numbers.
fn fleet(mode: &str, url: &str, epoch_ms: u64, args: &[String]) -> [u64; 3] {
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--worker", mode, url, &epoch_ms.to_string()])
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sums = [0u64; 3];
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a worker failed");
        let text = String::from_utf8_lossy(&output.stdout);
        for (sum, field) in sums.iter_mut().zip(text.split_whitespace()) {
            *sum += field.parse::<u64>().unwrap();
        }
    }
    sums
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        let number = |i: usize| args[i].parse::<u64>().unwrap();
        match args[1].as_str() {
            "rate" => rate_worker(&args[2], number(3), number(4)),
            _ => outage_worker(&args[2], number(3), number(4), number(5), number(6)),
        }
        return;
    }
    println!("8 processes, one app key, the fake gateway in the parent process; release build");

    let fake = FakeGateway::start(FakeGatewayConfig::new(KEY, SECRET)).unwrap();
    fake.set_rate_limit(Some((150.0, 20.0)));
    let epoch = wall_ms() + 1500;
    let [calls, limited, failed] = fleet("rate", &fake.url(), epoch, &["20".into()]);
    let wire = fake.api_calls().len() as u64;
    let refused = fake.stats().rate_limited;
    println!(
        "rate limit 150/s, burst 20; bursts of 32 every 0.75 s for 20 s: {calls} calls, \
         {limited} ended with 429, {failed} failed otherwise; {wire} requests on the wire \
         ({:.2} per call), {refused} answered 429",
        wire as f64 / calls as f64
    );
    drop(fake);

    let fake = FakeGateway::start(FakeGatewayConfig::new(KEY, SECRET)).unwrap();
    let epoch = wall_ms() + 1500;
    let (from_s, to_s, seconds) = (5, 10, 15);
    let fleet_run = std::thread::spawn({
        let url = fake.url();
        move || {
            let args = [seconds, from_s, to_s].map(|n: u64| n.to_string());
            fleet("outage", &url, epoch, &args)
        }
    });
    sleep_until(epoch + from_s * 1000);
    fake.set_outage(
        503,
        Some(Duration::from_secs(to_s - from_s)),
        None,
        false,
        None,
    );
    let [calls, in_outage, failed_after] = fleet_run.join().unwrap();
    let outage_wire = fake.api_calls().iter().filter(|c| c.status == 503).count();
    println!(
        "outage of 5 s (503) in 15 s of GETs at 30/s per process: {calls} calls, {in_outage} \
         started during the outage, {outage_wire} requests answered 503 (at most {} allowed: \
         the calls plus 8 x 100 retries), {failed_after} calls failed after it",
        in_outage + 8 * 100
    );
}
