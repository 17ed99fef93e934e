//! Eight managed tokens without a shared cache, as eight hosts of one app key
//! would be, against a gateway that keeps one token per app key (a Get
//! returns it, a Refresh retires it), on one hand-driven clock with a seeded
//! random sequence: the issue-16 fleet experiment, minus the sockets, run
//! for many seeds. `examples/bench_fleet.rs` runs it with real processes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::error::service_status;
use crate::time::ManualClock;

/// The gateway's token service for one app key.
struct OneTokenPerKey {
    clock: Arc<ManualClock>,
    lifetime: Duration,
    state: Mutex<GatewayState>,
}

#[derive(Default)]
struct GatewayState {
    /// The current token and when it expires (monotonic ns).
    current: Option<(String, u64)>,
    issued: u32,
    gets: u32,
    refreshes: u32,
}

impl OneTokenPerKey {
    /// Tokens of 30 s, on `clock`.
    fn new(clock: &Arc<ManualClock>) -> Self {
        OneTokenPerKey {
            clock: clock.clone(),
            lifetime: Duration::from_secs(30),
            state: Mutex::default(),
        }
    }

    fn issue(&self, state: &mut GatewayState, now_ns: u64) -> Token {
        state.issued += 1;
        let expires = now_ns + self.lifetime.as_nanos() as u64;
        state.current = Some((format!("tok-{}", state.issued), expires));
        Token {
            access_token: format!("tok-{}", state.issued),
            expire_s: self.lifetime.as_secs() as i64,
        }
    }

    /// Whether an API call signed with `token` is accepted now.
    fn accepts(&self, token: &str) -> bool {
        let now = self.clock.now().monotonic_ns;
        let state = self.state.lock().unwrap();
        state
            .current
            .as_ref()
            .is_some_and(|(current, expires)| current == token && now < *expires)
    }
}

impl TokenSource for OneTokenPerKey {
    fn fetch(&self, fetch: &Fetch, _: Option<Instant>) -> Result<Token, Error> {
        let now = self.clock.now().monotonic_ns;
        let mut state = self.state.lock().unwrap();
        let valid = state.current.clone().filter(|(_, expires)| now < *expires);
        match fetch {
            Fetch::Get => {
                state.gets += 1;
                Ok(match valid {
                    Some((token, expires)) => Token {
                        access_token: token,
                        expire_s: ((expires - now) / 1_000_000_000) as i64,
                    },
                    None => self.issue(&mut state, now),
                })
            }
            Fetch::Refresh(old) => {
                state.refreshes += 1;
                match valid {
                    Some((token, _)) if *token == **old => Ok(self.issue(&mut state, now)),
                    _ => Err(Error::service(
                        service_status::REFRESH_FAILED,
                        "failed to refresh the access token",
                    )),
                }
            }
        }
    }
}

/// One host's managed token on `clock`, refreshed 20 s early, without a
/// shared cache.
fn host(clock: &Arc<ManualClock>) -> ManagedToken {
    let options = ManagedOptions {
        refresh_margin: Duration::from_secs(20),
        ..ManagedOptions::default()
    };
    let clock = Clock::Manual(clock.clone());
    ManagedToken::new(options, Duration::from_secs(30), None, clock, None)
}

struct Outcome {
    calls: u32,
    failed: u32,
    gets: u32,
    refreshes: u32,
    /// Tokens the gateway issued: the first, then one per Refresh that
    /// succeeded.
    issued: u32,
}

/// Eight hosts each calling an API every 10 ms for 45 s, tokens of 30 s
/// refreshed 20 s early; a refused call drops its token, gets the current
/// one and is sent once more.
fn run_fleet(seed: u64) -> Outcome {
    let clock = ManualClock::new();
    clock.seed(seed);
    let gateway = OneTokenPerKey::new(&clock);
    let hosts: Vec<ManagedToken> = (0..8).map(|_| host(&clock)).collect();
    let (mut calls, mut failed) = (0, 0);
    for _ in 0..4500 {
        for host in &hosts {
            calls += 1;
            let token = host.access_token(&gateway, str::to_string).unwrap();
            if gateway.accepts(&token) {
                continue;
            }
            host.invalidate(Some(&token));
            let renewed = host.access_token(&gateway, str::to_string).unwrap();
            failed += u32::from(!gateway.accepts(&renewed));
        }
        clock.advance(Duration::from_millis(10));
    }
    let state = gateway.state.lock().unwrap();
    Outcome {
        calls,
        failed,
        gets: state.gets,
        refreshes: state.refreshes,
        issued: state.issued,
    }
}

#[test]
fn eight_hosts_refresh_once_per_period_and_never_fail_a_call() {
    let mut over_40 = Vec::new();
    for seed in 0..50 {
        let outcome = run_fleet(seed);
        assert_eq!(outcome.calls, 36_000);
        assert_eq!(outcome.failed, 0, "seed {seed}: a call failed twice");
        let periods = outcome.issued - 1;
        assert!(
            (3..=4).contains(&periods),
            "seed {seed}: {periods} tokens refreshed in 45 s of 30 s tokens refreshed 20 s early"
        );
        // One Get per host at start, then one per period by each host but
        // the one that refreshed (a period that began in the last 10 ms may
        // end the run before every host has called again).
        assert!(
            (8 + 7 * (periods - 1)..=8 + 7 * periods).contains(&outcome.gets),
            "seed {seed}: {} Gets for {periods} periods",
            outcome.gets
        );
        assert!(
            outcome.refreshes <= periods + 1,
            "seed {seed}: {} Refreshes for {periods} periods",
            outcome.refreshes
        );
        let requests = outcome.gets + outcome.refreshes;
        if requests > 40 {
            over_40.push((seed, requests));
        }
    }
    // Two hosts falling due within one 10 ms step of each other, before
    // either has refreshed, both send a Refresh (the second is refused and
    // Gets): possible in the first period only, when every host holds a
    // token it got (later the host that refreshed last is due first).
    assert!(over_40.len() <= 2, "over 40 token requests: {over_40:?}");
}

#[test]
fn the_host_that_refreshed_last_refreshes_next() {
    let clock = ManualClock::new();
    let gateway = OneTokenPerKey::new(&clock);
    let (leader, follower) = (host(&clock), host(&clock));
    let first = leader.access_token(&gateway, str::to_string).unwrap();
    follower.access_token(&gateway, str::to_string).unwrap();
    // Past every band of a token got (20 s less 10-20%): both are due; the
    // leader refreshes first.
    clock.advance(Duration::from_secs(14));
    let second = leader.access_token(&gateway, str::to_string).unwrap();
    assert_ne!(second, first);
    assert!(!gateway.accepts(&first), "a Refresh retires the old token");
    follower.invalidate(Some(&first));
    assert_eq!(
        follower.access_token(&gateway, str::to_string).unwrap(),
        second
    );
    // 12 s later the refresher (0-10% shorter: due 10-12 s after its
    // Refresh) is due and the follower (10-20% shorter: 12-14 s) is not.
    clock.advance(Duration::from_millis(12_000));
    assert_eq!(
        follower.access_token(&gateway, str::to_string).unwrap(),
        second
    );
    let third = leader.access_token(&gateway, str::to_string).unwrap();
    assert_ne!(third, second);
    let state = gateway.state.lock().unwrap();
    assert_eq!((state.gets, state.refreshes), (2 + 1, 2));
}
