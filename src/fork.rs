//! Living through `fork()`.
//!
//! A child process starts with one thread and a copy of the parent's memory:
//! the parent's pooled connections (whose bytes the parent is still reading),
//! a fetch "in flight" on a thread that does not exist in the child, and locks
//! that another thread may have held at the instant of the fork. This module
//! gives the rest of the library two things to deal with that:
//!
//! * [`generation`]: a number that changes in a child at every fork. Holders
//!   of process-specific state (the transport's connection pool, the managed
//!   token's flight, the background refresher) remember the generation they
//!   were made in, and a holder that sees another one knows it was inherited.
//!   Reading it is one atomic load, no system call.
//! * [`ForkSafeMutex`]: a mutex that is never held across a fork. `fork()`
//!   waits (in a `pthread_atfork` prepare handler) until no thread is inside
//!   such a lock, so the child never inherits one locked. Their critical
//!   sections are short and never block (no I/O, no callback, no waiting), so
//!   the fork waits at most a few microseconds.
//!
//! The handlers are registered through `pthread_atfork` the first time either
//! is used. glibc unregisters handlers of a shared object when it is unloaded
//! with `dlclose`, so they never point into unmapped code.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

/// Bumped in the child by the `pthread_atfork` child handler.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Threads inside a [`ForkSafeMutex`], plus [`FORK_PENDING`] while a fork waits.
static INSIDE: AtomicU32 = AtomicU32::new(0);
const FORK_PENDING: u32 = 1 << 31;

/// A fork never waits longer than this for threads to leave their locks: a
/// thread that is descheduled for that long inside a few instructions is a
/// sign of a stopped process, and a hung `fork()` would be worse.
const MAX_FORK_WAIT: Duration = Duration::from_secs(1);

fn register_handlers() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: the handlers are plain functions that touch only atomics.
        unsafe { libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child)) };
    });
}

extern "C" fn prepare() {
    INSIDE.fetch_or(FORK_PENDING, Ordering::SeqCst);
    let started = Instant::now();
    while INSIDE.load(Ordering::SeqCst) & !FORK_PENDING != 0 && started.elapsed() < MAX_FORK_WAIT {
        std::thread::yield_now();
    }
}

extern "C" fn in_parent() {
    INSIDE.fetch_and(!FORK_PENDING, Ordering::SeqCst);
}

/// This process's id, read once per process (0: not read yet).
static PROCESS_ID: AtomicU32 = AtomicU32::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    PROCESS_ID.store(0, Ordering::SeqCst);
    // The child has one thread, which is inside no lock.
    INSIDE.store(0, Ordering::SeqCst);
}

/// The current fork generation of this process: changes in a child at
/// every `fork()`, never in the parent.
pub(crate) fn generation() -> u64 {
    register_handlers();
    GENERATION.load(Ordering::Acquire)
}

/// The process id, without a system call after the first (glibc no longer
/// caches `getpid()`); a forked child reads its own.
pub(crate) fn process_id() -> u32 {
    register_handlers();
    match PROCESS_ID.load(Ordering::Relaxed) {
        0 => {
            let id = std::process::id();
            PROCESS_ID.store(id, Ordering::Relaxed);
            id
        }
        id => id,
    }
}

/// Counts this thread as inside a fork-safe lock until dropped; waits while a
/// fork is being prepared.
struct Inside;

impl Inside {
    fn enter() -> Inside {
        let mut current = INSIDE.load(Ordering::Relaxed);
        loop {
            if current & FORK_PENDING != 0 {
                std::thread::yield_now();
                current = INSIDE.load(Ordering::Relaxed);
                continue;
            }
            match INSIDE.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Inside,
                Err(actual) => current = actual,
            }
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::Release);
    }
}

/// A mutex that a child process never inherits locked (see the module docs).
/// Only for short critical sections that never block: no I/O, no callback,
/// no condition variable.
#[derive(Debug, Default)]
pub(crate) struct ForkSafeMutex<T> {
    mutex: Mutex<T>,
}

/// The lock of a [`ForkSafeMutex`]: the mutex guard, then the fork guard.
pub(crate) struct ForkSafeGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    _inside: Inside,
}

impl<T> ForkSafeMutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        ForkSafeMutex {
            mutex: Mutex::new(value),
        }
    }

    /// The data, through exclusive access (no lock needed).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.mutex.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks; a panic of an earlier holder does not make the data unusable.
    pub(crate) fn lock(&self) -> ForkSafeGuard<'_, T> {
        register_handlers();
        let inside = Inside::enter();
        ForkSafeGuard {
            guard: self.mutex.lock().unwrap_or_else(PoisonError::into_inner),
            _inside: inside,
        }
    }
}

impl<T> std::ops::Deref for ForkSafeGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for ForkSafeGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_fork_changes_the_generation_in_the_child_only() {
        let before = generation();
        let lock = ForkSafeMutex::new(5);
        // SAFETY: the child only reads atomics and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = generation() == before + 1 && *lock.lock() == 5;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(generation(), before, "the parent keeps its generation");
    }
}
