//! Calls that never block their caller (`Client::send_async`), against the
//! fake gateway over real sockets: many at once, the three ways a call says
//! it is done, cancelling queued and running calls, and dropping them.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enos_token::{ErrorKind, Request};
use support::*;

fn readable(fd: i32) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut poll, 1, 0) == 1 }
}

#[test]
fn two_hundred_calls_of_100_ms_complete_within_a_second() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    let request = Request::new("GET", "/fake/v1/echo?delayMs=100").unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..200).map(|_| client.send_async(&request)).collect();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "started at once"
    );
    for call in &calls {
        assert_eq!(call.wait(None).unwrap().status(), 200);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(client.counters().api_calls, 200);
}

#[test]
fn the_descriptor_is_readable_exactly_when_the_call_is_done_and_the_callback_runs_once_elsewhere() {
    let fake = fake();
    let client = client(&fake.url());
    let request = Request::new("GET", "/fake/v1/echo?delayMs=200").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(Vec::new()));
    let (counted, seen) = (calls.clone(), threads.clone());
    let call = client.send_async_then(&request, move |outcome| {
        assert_eq!(outcome.unwrap().status(), 200);
        seen.lock().unwrap().push(std::thread::current().id());
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let fd = call.fd();
    assert!(fd >= 0);
    assert!(!readable(fd) && !call.is_done());
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1);
    assert!(call.is_done(), "readable means done");
    while calls.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_ne!(threads.lock().unwrap()[0], std::thread::current().id());
    let taken = call.wait(Some(Duration::ZERO)).unwrap_err();
    assert!(
        taken.message().contains("already handed out"),
        "the callback took it"
    );
}

#[test]
fn a_cancel_during_a_ten_second_answer_completes_within_50_ms_and_the_client_goes_on() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    let slow = Request::new("GET", "/fake/v1/echo?delayMs=10000").unwrap();
    let call = client.send_async(&slow);
    std::thread::sleep(Duration::from_millis(100)); // sent, waiting
    let cancelled = Instant::now();
    call.cancel();
    let error = call.wait(None).unwrap_err();
    let took = cancelled.elapsed();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert!(took < Duration::from_millis(50), "{took:?}");
    assert!(
        error
            .message()
            .contains("cancelled after its request was sent"),
        "{error}"
    );
    let next = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(next.status(), 200, "the next call works");
    let post = client.send_async(&{
        let mut request = Request::new("POST", "/fake/v1/echo?delayMs=10000").unwrap();
        request.body(None, b"{}".to_vec()).unwrap();
        request
    });
    std::thread::sleep(Duration::from_millis(100));
    post.cancel();
    let error = post.wait(None).unwrap_err();
    assert!(
        error.message().contains("the server may have processed it"),
        "{error}"
    );
}

#[test]
fn a_queued_call_cancelled_never_reaches_the_server() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder.max_concurrent_calls(1).unwrap();
    let client = builder.build().unwrap();
    client.access_token().unwrap();
    let first = client.send_async(&Request::new("GET", "/fake/v1/echo?delayMs=300").unwrap());
    let queued = client.send_async(&Request::new("GET", "/fake/v1/echo?queued=1").unwrap());
    queued.cancel();
    assert_eq!(queued.wait(None).unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(first.wait(None).unwrap().status(), 200);
    std::thread::sleep(Duration::from_millis(50));
    let calls = fake.api_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
}

#[test]
fn dropping_a_running_call_returns_at_once_and_cancels_it() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    let call = client.send_async(&Request::new("GET", "/fake/v1/echo?delayMs=10000").unwrap());
    std::thread::sleep(Duration::from_millis(50));
    let dropped = Instant::now();
    drop(call);
    assert!(dropped.elapsed() < Duration::from_millis(20));
    // The worker is free again: a call with one worker goes through.
    let response = client.request("GET", "/fake/v1/echo", None, b"").unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn freeing_the_client_cancels_its_calls_in_flight() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    let call = client.send_async(&Request::new("GET", "/fake/v1/echo?delayMs=10000").unwrap());
    std::thread::sleep(Duration::from_millis(50));
    let freed = Instant::now();
    drop(client);
    assert!(freed.elapsed() < Duration::from_millis(100));
    assert_eq!(call.wait(None).unwrap_err().kind(), ErrorKind::Cancelled);
}

/// A C host frees its log callback's `user_data` right after
/// `enos_client_free`: the workers finishing the cancelled calls must not
/// be inside the callback, or enter it, once the free has returned
/// (AddressSanitizer caught the C++ wrapper's log function so).
#[test]
fn no_log_callback_runs_after_the_client_is_freed() {
    let fake = fake();
    let freed = Arc::new(AtomicUsize::new(0));
    let (entered, returned) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let running_after_free = Arc::new(AtomicUsize::new(0));
    let (sink_freed, sink_entered, sink_returned, sink_after) = (
        freed.clone(),
        entered.clone(),
        returned.clone(),
        running_after_free.clone(),
    );
    let mut builder = builder(&fake.url());
    builder.logger(Some(enos_token::Logger::new(move |_, _| {
        sink_entered.fetch_add(1, Ordering::SeqCst);
        // A slow callback: still running when the client is freed, unless
        // freeing waits for it.
        std::thread::sleep(Duration::from_millis(100));
        if sink_freed.load(Ordering::SeqCst) == 1 {
            sink_after.fetch_add(1, Ordering::SeqCst);
        }
        sink_returned.fetch_add(1, Ordering::SeqCst);
    })));
    let client = builder.build().unwrap();
    client.access_token().unwrap(); // logs the Get, on this thread
    let before = entered.load(Ordering::SeqCst);
    // Each call's worker logs a line (DEBUG) as its call ends.
    let calls: Vec<_> = (0..4)
        .map(|_| client.send_async(&Request::new("GET", "/fake/v1/echo").unwrap()))
        .collect();
    while entered.load(Ordering::SeqCst) == before {
        std::thread::yield_now();
    }
    drop(client); // while a worker is inside the callback
    freed.store(1, Ordering::SeqCst);
    for call in calls {
        let _ = call.wait(None); // answered or cancelled, whichever came first
    }
    // Calls complete before their workers return: wait for the workers.
    let waited = Instant::now();
    while returned.load(Ordering::SeqCst) < entered.load(Ordering::SeqCst)
        && waited.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(running_after_free.load(Ordering::SeqCst), 0);
    assert_eq!(
        returned.load(Ordering::SeqCst),
        entered.load(Ordering::SeqCst)
    );
}

#[test]
fn retries_renewal_and_streamed_outputs_hold_for_calls_in_flight() {
    let fake = fake();
    let mut builder = builder(&fake.url());
    builder.retries(2, Duration::from_millis(5)).unwrap();
    let client = builder.build().unwrap();
    let old = client.access_token().unwrap();
    support::client(&fake.url()).refresh_token(&old).unwrap(); // retired
    fake.set_outage(503, None, Some(1), false, None);
    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    let mut request = Request::new(
        "GET",
        "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/2000000.bin",
    )
    .unwrap();
    request.output_callback(move |chunk| {
        counted.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok(())
    });
    let call = client.send_async(&request);
    drop(request); // the call holds what it needs
    let response = call.wait(None).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(received.load(Ordering::SeqCst), 2_000_000);
    assert_eq!(response.attempts(), 3, "a renewal and a retry");
}

#[test]
fn once_a_call_is_cancelled_its_requests_callbacks_are_no_longer_called() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let late = Arc::new(AtomicUsize::new(0));
    let mut request = Request::new(
        "GET",
        "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/200000000.bin",
    )
    .unwrap();
    let (counted, seen, late_writes) = (received.clone(), cancelled.clone(), late.clone());
    request.output_callback(move |chunk| {
        if seen.load(Ordering::SeqCst) {
            late_writes.fetch_add(1, Ordering::SeqCst);
        }
        counted.fetch_add(chunk.len(), Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(200)); // a slow consumer: data waits in buffers
        Ok(())
    });
    let (seen, late_reports) = (cancelled.clone(), late.clone());
    request.progress(move |_| {
        if seen.load(Ordering::SeqCst) {
            late_reports.fetch_add(1, Ordering::SeqCst);
        }
    });
    let call = client.send_async(&request);
    while received.load(Ordering::SeqCst) < 1_000_000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    call.cancel();
    cancelled.store(true, Ordering::SeqCst);
    assert_eq!(call.wait(None).unwrap_err().kind(), ErrorKind::Cancelled);
    std::thread::sleep(Duration::from_millis(200));
    // At most the one callback that had started (or was about to) when the
    // cancel came; none after it, not even the final progress report.
    assert!(
        late.load(Ordering::SeqCst) <= 1,
        "{}",
        late.load(Ordering::SeqCst)
    );
}
