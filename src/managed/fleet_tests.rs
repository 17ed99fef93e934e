//! The managed token across a fleet: two clients sharing one token file, as
//! two processes would, with one hand-driven clock and a script each.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{Script, token, unavailable};
use super::*;
use crate::time::ManualClock;

/// Two clients sharing one token file (as two processes would), with one
/// clock and a script each.
struct Fleet {
    clock: Arc<ManualClock>,
    members: Vec<(Arc<ManagedToken>, Arc<Script>)>,
    directory: std::path::PathBuf,
}

impl Fleet {
    fn new(name: &str) -> Fleet {
        let directory =
            std::env::temp_dir().join(format!("enos-fleet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        let shared = crate::shared_cache::SharedCacheDirectory::open(directory.to_str().unwrap())
            .unwrap()
            .slot("http://gw:1", "app")
            .unwrap()
            .unwrap();
        let clock = ManualClock::new();
        let options = ManagedOptions {
            max_retries: 0,
            ..ManagedOptions::default()
        };
        let members = (0..2)
            .map(|_| {
                let cache = ManagedToken::new(
                    options.clone(),
                    Duration::from_secs(30),
                    None,
                    Clock::Manual(clock.clone()),
                    Some(shared.clone()),
                );
                (Arc::new(cache), Arc::<Script>::default())
            })
            .collect();
        Fleet {
            clock,
            members,
            directory,
        }
    }

    fn get(&self, member: usize) -> Result<String, Error> {
        let (cache, script) = &self.members[member];
        cache.access_token(&**script, str::to_string)
    }

    fn script(&self, member: usize) -> &Script {
        &self.members[member].1
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[test]
fn siblings_take_each_others_tokens_without_fetching() {
    let fleet = Fleet::new("switch");
    fleet.script(0).answer(token("tok-1", 7200));
    assert_eq!(fleet.get(0).unwrap(), "tok-1");
    assert_eq!(fleet.get(1).unwrap(), "tok-1", "from the file");
    assert!(fleet.script(1).fetches().is_empty());

    // One refresh for the fleet; the other switches on its very next call.
    fleet.clock.advance(Duration::from_secs(6750));
    fleet.script(0).answer(token("tok-2", 7200));
    assert_eq!(fleet.get(0).unwrap(), "tok-2");
    assert_eq!(fleet.get(1).unwrap(), "tok-2");
    assert!(fleet.script(1).fetches().is_empty());

    // A token the gateway rejected, invalidated by one: one fetch in all.
    assert!(fleet.members[0].0.invalidate(Some("tok-2")));
    fleet.clock.advance(Duration::from_secs(2));
    fleet.script(1).answer(token("tok-3", 7200));
    assert_eq!(
        fleet.get(1).unwrap(),
        "tok-3",
        "the rejected token is gone here too"
    );
    assert_eq!(fleet.get(0).unwrap(), "tok-3");
    assert_eq!(fleet.script(0).fetches().len(), 2, "Get, Refresh: no third");
}

#[test]
fn a_failed_refresh_pauses_the_whole_fleet() {
    let fleet = Fleet::new("pause");
    fleet.script(0).answer(token("tok-1", 7200));
    fleet.get(0).unwrap();
    fleet.get(1).unwrap();
    fleet.clock.advance(Duration::from_secs(6750)); // due for both
    fleet.script(0).answer(unavailable());
    assert_eq!(fleet.get(0).unwrap(), "tok-1", "served through the failure");
    assert_eq!(
        fleet.get(1).unwrap(),
        "tok-1",
        "paused too: no attempt of its own"
    );
    assert!(fleet.script(1).fetches().is_empty());
}

#[test]
fn a_sibling_waiting_for_the_lock_takes_the_token_fetched_meanwhile() {
    let fleet = Fleet::new("wait");
    let (started, release) = fleet.script(0).blocked();
    let first = {
        let (cache, script) = fleet.members[0].clone();
        std::thread::spawn(move || cache.access_token(&*script, str::to_string))
    };
    started.recv().unwrap(); // member 0 holds the fleet's lock, fetching
    let second = {
        let (cache, script) = fleet.members[1].clone();
        std::thread::spawn(move || cache.access_token(&*script, str::to_string))
    };
    std::thread::sleep(Duration::from_millis(50)); // let it reach the lock
    release.send(token("tok-1", 7200)).unwrap();
    assert_eq!(first.join().unwrap().unwrap(), "tok-1");
    assert_eq!(second.join().unwrap().unwrap(), "tok-1");
    assert!(
        fleet.script(1).fetches().is_empty(),
        "one fetch for the fleet"
    );
}
