//! This process's direct connections: the idle ones kept for the next
//! request, the shutdown handles of all of them, and a connection taken for
//! one exchange.

use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};

use ureq::unversioned::transport::ShutdownHandle;
use ureq::unversioned::transport::Transport as Connection;

use crate::fork::ForkSafeMutex;

/// This process's idle connections and the shutdown handles of all its
/// connections.
pub(super) struct Pool {
    pub(super) fork_generation: u64,
    pub(super) idle: Vec<Box<dyn Connection>>,
    pub(super) handles: Vec<Weak<dyn ShutdownHandle>>,
    pub(super) shut_down: bool,
    pub(super) in_use: Arc<AtomicUsize>,
}

impl Pool {
    pub(super) fn new() -> Pool {
        Pool {
            fork_generation: crate::fork::generation(),
            idle: Vec::new(),
            handles: Vec::new(),
            shut_down: false,
            in_use: Arc::default(),
        }
    }

    /// In a forked child, the inherited connections are the parent's:
    /// closed here without a byte sent (the parent's copies stay open), or
    /// left alone entirely if one was in use at the fork. Their shutdown
    /// handles are forgotten: shutting a shared socket down would end the
    /// parent's connection.
    pub(super) fn for_this_process(&mut self) -> &mut Pool {
        if self.fork_generation != crate::fork::generation() {
            let inherited = std::mem::replace(self, Pool::new());
            self.shut_down = inherited.shut_down;
            if inherited.in_use.load(Ordering::Acquire) == 0 {
                drop(inherited.idle);
            } else {
                std::mem::forget(inherited.idle);
            }
        }
        self
    }
}

/// A connection taken for one exchange: back to the pool when its answer
/// was read to the end and it can carry another request, closed otherwise.
pub(crate) struct Taken {
    pub(super) pool: Arc<ForkSafeMutex<Pool>>,
    pub(super) connection: Option<Box<dyn Connection>>,
    pub(super) fork_generation: u64,
    pub(super) in_use: Arc<AtomicUsize>,
    pub(super) max_idle: usize,
}

impl Taken {
    pub(crate) fn connection(&mut self) -> &mut dyn Connection {
        self.connection
            .as_deref_mut()
            .expect("taken until released")
    }

    /// Puts the connection back for the next request.
    pub(crate) fn release(mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        if !connection.is_open() {
            return;
        }
        let mut pool = self.pool.lock();
        let pool = pool.for_this_process();
        if pool.fork_generation == self.fork_generation
            && !pool.shut_down
            && pool.idle.len() < self.max_idle
        {
            pool.idle.push(connection);
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::Release);
    }
}
