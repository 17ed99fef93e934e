//! Benchmark: the cached `enos_client_access_token` through the C ABI.
//!
//! ```sh
//! cargo run --release --features fake-gateway --example bench_access_token
//! ```
//!
//! Starts the fake gateway, builds a client through the C functions, fetches
//! the token once, then times `enos_client_access_token` + `enos_string_free`
//! (what a C caller does before each API call) on 1, 2 and 8 threads,
//! without and then with the shared token cache.
//! Prints nanoseconds per call and calls per second; the median of 5 rounds.

use std::ffi::{CString, c_char};
use std::ptr;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use enos_token::fake::FakeGateway;
use enos_token::ffi::builder::enos_client_builder_set_shared_cache;
use enos_token::ffi::builder::{enos_client_build, enos_client_builder_new};
use enos_token::ffi::client::enos_client_free;
use enos_token::ffi::enos_status::ENOS_OK;
use enos_token::ffi::managed::{enos_client_access_token, enos_client_get_counters};
use enos_token::ffi::strings::enos_string_free;
use enos_token::ffi::{enos_client, enos_client_counters};

const CALLS_PER_THREAD: u64 = match option_env!("ENOS_BENCH_CALLS") {
    Some(_) => 20_000,
    None => 2_000_000,
};
const ROUNDS: usize = 5;

struct SharedClient(*mut enos_client);
// SAFETY: enos_client is documented (and asserted) Send + Sync.
unsafe impl Send for SharedClient {}
unsafe impl Sync for SharedClient {}

fn calls(client: &SharedClient, count: u64) {
    for _ in 0..count {
        let mut token: *mut c_char = ptr::null_mut();
        // SAFETY: a live client and a writable out-pointer.
        let status = unsafe { enos_client_access_token(client.0, &mut token) };
        assert_eq!(status, ENOS_OK);
        // SAFETY: the token came from the library.
        unsafe { enos_string_free(token) };
    }
}

/// Seconds for `threads` threads each making CALLS_PER_THREAD calls.
fn round(client: &Arc<SharedClient>, threads: usize) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let client = client.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                calls(&client, 1000); // warm this thread's cache
                barrier.wait();
                calls(&client, CALLS_PER_THREAD);
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for handle in handles {
        handle.join().unwrap();
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let fake = FakeGateway::start_simple("bench-key", "bench-secret").expect("fake gateway");
    let directory = std::env::temp_dir().join(format!("enos-bench-shared-{}", std::process::id()));
    for shared in [None, Some(&directory)] {
        bench(&fake, shared);
    }
    let _ = std::fs::remove_dir_all(&directory);
    println!(
        "machine: {} logical CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

/// The table for one client, with the shared cache in `shared` or without.
fn bench(fake: &FakeGateway, shared: Option<&std::path::PathBuf>) {
    let url = CString::new(fake.url()).unwrap();
    let (key, secret) = (c"bench-key", c"bench-secret");
    let mut builder = ptr::null_mut();
    let mut client = ptr::null_mut();
    // SAFETY: valid strings and out-pointers.
    unsafe {
        assert_eq!(
            enos_client_builder_new(url.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut builder),
            ENOS_OK
        );
        if let Some(directory) = shared {
            let directory = CString::new(directory.to_str().unwrap()).unwrap();
            assert_eq!(
                enos_client_builder_set_shared_cache(builder, directory.as_ptr()),
                ENOS_OK
            );
        }
        assert_eq!(enos_client_build(builder, &mut client), ENOS_OK);
    }
    let client = Arc::new(SharedClient(client));
    calls(&client, 1); // the one Get

    println!(
        "cached enos_client_access_token + enos_string_free, {}, {CALLS_PER_THREAD} calls per thread, median of {ROUNDS} rounds",
        if shared.is_some() {
            "shared cache on"
        } else {
            "no shared cache"
        }
    );
    println!(
        "{:>8} {:>12} {:>16} {:>10}",
        "threads", "ns/call", "calls/s total", "vs 1 thread"
    );
    let mut single = 0.0;
    for threads in [1usize, 2, 8] {
        let mut seconds: Vec<f64> = (0..ROUNDS).map(|_| round(&client, threads)).collect();
        seconds.sort_by(f64::total_cmp);
        let median = seconds[ROUNDS / 2];
        let total_calls = (threads as u64 * CALLS_PER_THREAD) as f64;
        let per_second = total_calls / median;
        let ns_per_call = median * 1e9 / CALLS_PER_THREAD as f64; // per call, per thread
        if threads == 1 {
            single = per_second;
        }
        println!(
            "{threads:>8} {ns_per_call:>12.1} {per_second:>16.0} {:>9.2}x",
            per_second / single
        );
    }

    let mut counters = enos_client_counters {
        struct_size: std::mem::size_of::<enos_client_counters>(),
        ..Default::default()
    };
    // SAFETY: live client, writable struct.
    unsafe {
        assert_eq!(enos_client_get_counters(client.0, &mut counters), ENOS_OK);
        enos_client_free(client.0);
    }
    println!(
        "gateway requests during the benchmark: {} (cache hits {})",
        counters.get_requests + counters.refresh_requests,
        counters.cache_hits
    );
}
