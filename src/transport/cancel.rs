//! Cancelling a call from another thread: the call's thread enters a
//! [`Cancellation`] scope, every connection it opens or takes from the pool
//! registers its shutdown handle there, and [`Cancellation::cancel`] shuts
//! those connections down, which makes a blocked read or write return at
//! once (and the connection is never used again). Waits that are not on a
//! socket (connecting, sleeping before a retry) look at the flag every few
//! milliseconds.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::ShutdownHandle;

/// How often a wait that is not on a socket looks at the flag.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// One call's cancellation: a flag, and the connections to shut down.
#[derive(Default)]
pub(crate) struct Cancellation {
    cancelled: AtomicBool,
    /// The request's first byte was handed to a connection.
    sent: AtomicBool,
    connections: Mutex<Vec<Weak<dyn ShutdownHandle>>>,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Cancellation>>> = const { RefCell::new(None) };
}

impl Cancellation {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Whether any byte of the request may have left.
    pub(crate) fn was_sent(&self) -> bool {
        self.sent.load(Ordering::Acquire)
    }

    /// Cancels: every connection the call uses is shut down (at once, from
    /// this thread; its own thread sees the failure), and waits end.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for connection in connections {
            if let Some(connection) = connection.upgrade() {
                connection.shutdown();
            }
        }
    }

    fn register(&self, handle: &Weak<dyn ShutdownHandle>) {
        if self.is_cancelled() {
            if let Some(connection) = handle.upgrade() {
                connection.shutdown();
            }
            return;
        }
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|c| c.strong_count() > 0);
        if !connections.iter().any(|c| Weak::ptr_eq(c, handle)) {
            connections.push(handle.clone());
        }
    }

    /// Runs `body` on this thread inside this cancellation's scope.
    pub(crate) fn within<R>(self: &Arc<Self>, body: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Cancellation>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        body()
    }
}

/// The scope's cancellation registers this connection (a no-op outside one).
pub(crate) fn register(handle: &Weak<dyn ShutdownHandle>) {
    let _ = CURRENT.try_with(|current| {
        if let Some(cancellation) = &*current.borrow() {
            cancellation.register(handle);
        }
    });
}

/// Marks the scope's request as (perhaps) sent.
pub(crate) fn mark_sent() {
    let _ = CURRENT.try_with(|current| {
        if let Some(cancellation) = &*current.borrow() {
            cancellation.sent.store(true, Ordering::Release);
        }
    });
}

/// Whether the call on this thread was cancelled.
pub(crate) fn is_cancelled() -> bool {
    CURRENT
        .try_with(|current| current.borrow().as_ref().is_some_and(|c| c.is_cancelled()))
        .unwrap_or(false)
}

/// Whether this thread runs inside a cancellation scope.
pub(crate) fn in_scope() -> bool {
    CURRENT
        .try_with(|current| current.borrow().is_some())
        .unwrap_or(false)
}

/// Sleeps `wait`, waking early (false) when the call on this thread is
/// cancelled; true when the whole wait passed.
pub(crate) fn sleep(wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        if is_cancelled() {
            return false;
        }
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return true;
        };
        if left.is_zero() {
            return true;
        }
        let slice = if in_scope() {
            left.min(POLL_INTERVAL)
        } else {
            left
        };
        std::thread::sleep(slice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flag(AtomicBool);

    impl ShutdownHandle for Flag {
        fn shutdown(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn cancel_shuts_down_what_the_scope_registered_and_ends_sleeps() {
        let cancellation = Arc::new(Cancellation::default());
        let connection = Arc::new(Flag(AtomicBool::new(false)));
        let handle = Arc::downgrade(&connection) as Weak<dyn ShutdownHandle>;
        register(&handle); // outside a scope: nothing
        cancellation.within(|| {
            register(&handle);
            register(&handle);
            mark_sent();
        });
        assert_eq!(cancellation.connections.lock().unwrap().len(), 1);
        assert!(cancellation.was_sent());
        assert!(!is_cancelled(), "the scope ended with the body");
        let canceller = cancellation.clone();
        let waiter = std::thread::spawn(move || {
            let started = Instant::now();
            let whole = canceller.within(|| sleep(Duration::from_secs(10)));
            (whole, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(30));
        cancellation.cancel();
        let (whole, took) = waiter.join().unwrap();
        assert!(!whole && took < Duration::from_secs(1), "{took:?}");
        assert!(connection.0.load(Ordering::SeqCst), "shut down");
        let late = Arc::new(Flag(AtomicBool::new(false)));
        let late_handle = Arc::downgrade(&late) as Weak<dyn ShutdownHandle>;
        cancellation.within(|| register(&late_handle));
        assert!(
            late.0.load(Ordering::SeqCst),
            "a connection taken after the cancel"
        );
    }
}
