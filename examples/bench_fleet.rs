//! Experiment: a fleet of 8 processes sharing one app key, every API call
//! made with `enos_client_request` against the fake gateway's signed API,
//! which refuses retired tokens (a Refresh retires the token it refreshed).
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_fleet [SECONDS]
//! ```
//!
//! Tokens live 30 s and are refreshed 20 s early; each process makes a call
//! every 10 ms for SECONDS (default 45). Run twice: with a shared cache (one
//! host's processes) and without one (as 8 hosts would be, each fetching on
//! its own; the gateway, which returns its current token to every Get, is
//! then the only shared state). Prints calls, failed calls (any answer but
//! 200, or an error; each also on stderr) and the token requests the
//! gateway saw; with `ENOS_BENCH_FLEET_TRACE=1`, each token request too
//! (when, its timestamp against the fake's clock, its status).

use std::ffi::CString;
use std::process::{Command, Stdio};
use std::ptr;
use std::time::{Duration, Instant};

use enos_token::fake::{FakeGateway, FakeGatewayConfig};
use enos_token::ffi::builder::*;
use enos_token::ffi::client::enos_client_free;
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::request::enos_client_request;
use enos_token::ffi::response::{enos_response_free, enos_response_status};

const KEY: &str = "fleet-key";
const SECRET: &str = "fleet-secret";
const MEMBERS: usize = 8;

/// One member: calls for `seconds`, prints "calls N failed F".
fn member(url: &str, shared_cache: &str, seconds: u64) {
    let (url, key, secret) = (
        CString::new(url).unwrap(),
        CString::new(KEY).unwrap(),
        CString::new(SECRET).unwrap(),
    );
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
        assert_eq!(
            enos_client_builder_set_refresh_margin_s(builder, 20),
            ENOS_OK
        );
        let directory = CString::new(shared_cache).unwrap();
        assert_eq!(
            enos_client_builder_set_shared_cache(builder, directory.as_ptr()),
            ENOS_OK
        );
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut calls, mut failed) = (0u64, 0u64);
    while Instant::now() < until {
        let mut response = ptr::null_mut();
        // SAFETY: a live client; the response is freed right away.
        let ok = unsafe {
            let status = enos_client_request(
                client,
                c"GET".as_ptr(),
                c"/fake/v1/echo?orgId=o1".as_ptr(),
                ptr::null(),
                ptr::null(),
                0,
                &mut response,
            );
            let ok = status == ENOS_OK && enos_response_status(response) == 200;
            if !ok {
                let message = enos_token::ffi::last_error::enos_last_error_message();
                let message = std::ffi::CStr::from_ptr(message).to_string_lossy();
                eprintln!(
                    "failed: {status:?}, HTTP {}: {message}",
                    enos_response_status(response)
                );
            }
            enos_response_free(response);
            ok
        };
        calls += 1;
        failed += u64::from(!ok);
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: built above, freed once.
    unsafe { enos_client_free(client) };
    println!("calls {calls} failed {failed}");
}

/// One run of the fleet: calls, failed calls, and the gateway's counters.
fn run(seconds: u64, shared: bool) -> (u64, u64, enos_token::fake::FakeStats) {
    let mut config = FakeGatewayConfig::new(KEY, SECRET);
    config.token_lifetime = Duration::from_secs(30);
    let fake = FakeGateway::start(config).unwrap();
    let directory =
        std::env::temp_dir().join(format!("enos-bench-fleet-{}-{shared}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let cache = if shared {
        directory.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let members: Vec<_> = (0..MEMBERS)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--member", &fake.url(), &cache, &seconds.to_string()])
                .env("NO_PROXY", "*")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut calls, mut failed) = (0, 0);
    for member in members {
        let output = member.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(output.status.success() && numbers.len() == 2, "{text}");
        calls += numbers[0];
        failed += numbers[1];
    }
    let _ = std::fs::remove_dir_all(&directory);
    if std::env::var_os("ENOS_BENCH_FLEET_TRACE").is_some() {
        let first = fake.token_requests().first().map_or(0, |r| r.at_wall_ms);
        for r in fake.token_requests() {
            eprintln!(
                "{:>6} ms {:<7} ts {:+} status {}",
                r.at_wall_ms - first,
                r.kind,
                r.timestamp - r.at_wall_ms,
                r.status
            );
        }
    }
    (calls, failed, fake.stats())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--member" {
        member(&args[2], &args[3], args[4].parse().unwrap());
        return;
    }
    let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(45);
    println!(
        "{MEMBERS} processes, one app key, tokens of 30 s refreshed 20 s early, a call every 10 ms for {seconds} s"
    );
    for shared in [true, false] {
        let (calls, failed, stats) = run(seconds, shared);
        println!(
            "{:<26} calls {calls:>6}  failed {failed:>3}  token requests {:>3} (Get {}, Refresh {}, answered 1001: {})",
            if shared {
                "shared cache (one host):"
            } else {
                "no shared cache (8 hosts):"
            },
            stats.get_requests + stats.refresh_requests,
            stats.get_requests,
            stats.refresh_requests,
            stats.status_count(1001),
        );
    }
    println!(
        "machine: {} logical CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
