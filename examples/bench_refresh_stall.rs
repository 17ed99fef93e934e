//! Benchmark: what callers of the managed token feel while the gateway is
//! slow or down, through the C ABI.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_refresh_stall
//! ```
//!
//! A client of the fake gateway (tokens live 10 s, margin 7 s, so a refresh
//! is due 2.3-3 s after the first token) already holds a token. Then 4
//! threads call `enos_client_access_token` + `enos_string_free` every
//! millisecond for 6.5 s while the one refresh
//!
//! * takes 3 s ("slow refresh"), or
//! * hangs for 40 s, with an overall timeout of 2 s ("outage"),
//!
//! in lazy mode (a caller refreshes) and with background refresh. Prints the
//! number of calls, the worst call, the 99.9th percentile, the median and the
//! calls over 50 ms, over all threads.

use std::ffi::{CString, c_char};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use enos_token::fake::{FakeGateway, FakeGatewayConfig, Fault};
use enos_token::ffi::builder::*;
use enos_token::ffi::client::*;
use enos_token::ffi::enos_client;
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::managed::*;
use enos_token::ffi::strings::enos_string_free;

const THREADS: usize = 4;
const RUN: Duration = Duration::from_millis(6500);

struct SharedClient(*mut enos_client);
// SAFETY: enos_client is documented (and asserted) Send + Sync.
unsafe impl Send for SharedClient {}
unsafe impl Sync for SharedClient {}

fn token(client: &SharedClient) {
    let mut token: *mut c_char = ptr::null_mut();
    // SAFETY: a live client and a writable out-pointer.
    let status = unsafe { enos_client_access_token(client.0, &mut token) };
    assert_eq!(status, ENOS_OK);
    // SAFETY: the token came from the library.
    unsafe { enos_string_free(token) };
}

fn build(fake: &FakeGateway, background: bool, total_ms: u64) -> SharedClient {
    let url = CString::new(fake.url()).unwrap();
    let (key, secret) = (c"bench-key", c"bench-secret");
    let mut builder = ptr::null_mut();
    let mut client = ptr::null_mut();
    // SAFETY: valid strings and out-pointers; the builder is consumed by build.
    unsafe {
        assert_eq!(
            enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
            ENOS_OK
        );
        enos_client_builder_set_proxy(builder, c"".as_ptr());
        enos_client_builder_set_timeout_ms(builder, 1000, total_ms);
        enos_client_builder_set_refresh_margin_s(builder, 7);
        enos_client_builder_set_retries(builder, 0, 0);
        enos_client_builder_set_background_refresh(builder, background);
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    SharedClient(client)
}

/// Every call's latency in microseconds, from all threads.
fn scenario(background: bool, delay: Duration, total_ms: u64) -> Vec<u64> {
    let mut config = FakeGatewayConfig::new("bench-key", "bench-secret");
    config.token_lifetime = Duration::from_secs(10);
    let fake = FakeGateway::start(config).expect("fake gateway");
    let client = Arc::new(build(&fake, background, total_ms));
    token(&client);
    fake.inject(Fault::Delay(delay));
    let until = Instant::now() + RUN;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    token(&client);
                    latencies.push(started.elapsed().as_micros() as u64);
                    std::thread::sleep(Duration::from_millis(1));
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    // SAFETY: no call is running any more.
    unsafe { enos_client_free(client.0) };
    all.sort_unstable();
    all
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn main() {
    println!(
        "{:<14} {:<10} {:>7} {:>12} {:>12} {:>10} {:>11}",
        "scenario", "mode", "calls", "worst", "p99.9", "median", "over 50 ms"
    );
    let scenarios = [
        ("slow refresh", Duration::from_secs(3), 10_000),
        ("outage", Duration::from_secs(40), 2_000),
    ];
    for (name, delay, total_ms) in scenarios {
        for background in [false, true] {
            let latencies = scenario(background, delay, total_ms);
            let mode = if background { "background" } else { "lazy" };
            println!(
                "{name:<14} {mode:<10} {:>7} {:>9} us {:>9} us {:>7} us {:>11}",
                latencies.len(),
                latencies[latencies.len() - 1],
                percentile(&latencies, 0.999),
                percentile(&latencies, 0.5),
                latencies.iter().filter(|l| **l > 50_000).count(),
            );
        }
    }
}
