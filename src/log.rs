//! Logging for operators, and what may be said about a token in it: its
//! first four characters and its length, never the whole of it. No message
//! ever holds a token, the secret or a signature.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::fork::ForkSafeMutex;

/// How important a log message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// A call failed and the caller gets an error.
    Error = 1,
    /// Something failed but was handled (retry, fallback to a cached token).
    Warn = 2,
    /// A token was fetched or invalidated.
    Info = 3,
    /// One line per API call made with `Client::request`.
    Debug = 4,
}

/// A thread-safe function of level and message.
type LogSink = dyn Fn(LogLevel, &str) + Send + Sync;

/// Where log messages go.
///
/// Clones share one sink and one gate: once [`Logger::close`] returns, the
/// sink is never called again by any clone, and no call of it is still
/// running (except on the thread that closes, if it closes from inside the
/// sink). A C host frees the sink's `user_data` right after freeing the
/// client, while workers of cancelled calls may still be finishing.
#[derive(Clone)]
pub struct Logger(Arc<Gate>);

struct Gate {
    sink: Box<LogSink>,
    state: ForkSafeMutex<GateState>,
}

/// Sink calls running now, counted per fork generation: a child process
/// does not wait for calls that were running on its parent's threads.
#[derive(Default)]
struct GateState {
    generation: u64,
    running: usize,
    closed: bool,
}

impl GateState {
    fn current(&mut self) -> &mut Self {
        let generation = crate::fork::generation();
        if self.generation != generation {
            self.generation = generation;
            self.running = 0;
        }
        self
    }
}

thread_local! {
    /// The gates whose sink this thread is inside (a sink may log again).
    static INSIDE_SINKS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Logger {
    pub fn new(sink: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        Logger(Arc::new(Gate {
            sink: Box::new(sink),
            state: ForkSafeMutex::new(GateState::default()),
        }))
    }

    /// A logger of its own (closed apart) that passes messages to this one.
    pub(crate) fn gated(&self) -> Logger {
        let inner = self.clone();
        Logger::new(move |level, message| inner.log(level, message))
    }

    /// Passes `message` to the sink, unless the logger was closed.
    pub fn log(&self, level: LogLevel, message: &str) {
        {
            let mut state = self.0.state.lock();
            let state = state.current();
            if state.closed {
                return;
            }
            state.running += 1;
        }
        let gate = self.gate_id();
        // Not during the thread's own teardown (its locals may be gone).
        let _ = INSIDE_SINKS.try_with(|inside| inside.borrow_mut().push(gate));
        let leave = Leave(self);
        (self.0.sink)(level, message);
        drop(leave);
    }

    /// Stops every clone from calling the sink, and waits for the sink
    /// calls running on other threads to return.
    pub(crate) fn close(&self) {
        let gate = self.gate_id();
        let own = INSIDE_SINKS
            .try_with(|inside| inside.borrow().iter().filter(|&&g| g == gate).count())
            .unwrap_or(0);
        self.0.state.lock().current().closed = true;
        let mut pause = Duration::from_micros(50);
        while self.0.state.lock().current().running > own {
            // Only while a log callback runs on another thread: rare, and
            // as long as that callback takes.
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn gate_id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

/// Counts a sink call as returned, even if the sink panicked.
struct Leave<'a>(&'a Logger);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let gate = self.0.gate_id();
        let _ = INSIDE_SINKS.try_with(|inside| {
            let mut inside = inside.borrow_mut();
            if let Some(at) = inside.iter().rposition(|&g| g == gate) {
                inside.remove(at);
            }
        });
        let mut state = self.0.0.state.lock();
        let generation = crate::fork::generation();
        if state.generation == generation {
            state.running = state.running.saturating_sub(1);
        }
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger")
    }
}

/// `"abcd…(28 bytes)"` for a 28-byte token starting with `abcd`.
pub fn token_hint(token: &str) -> String {
    let prefix: String = token.chars().take(4).collect();
    format!("{prefix}…({} bytes)", token.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Barrier, Mutex};

    #[test]
    fn close_waits_for_a_running_sink_and_stops_every_clone() {
        let entered = Arc::new(Barrier::new(2));
        let returned = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (sink_entered, sink_returned, sink_calls) =
            (entered.clone(), returned.clone(), calls.clone());
        let logger = Logger::new(move |_, message| {
            sink_calls.fetch_add(1, Ordering::SeqCst);
            if message == "slow" {
                sink_entered.wait();
                std::thread::sleep(Duration::from_millis(100));
                sink_returned.store(true, Ordering::SeqCst);
            }
        });
        let clone = logger.clone();
        let worker = std::thread::spawn(move || clone.log(LogLevel::Error, "slow"));
        entered.wait();
        logger.close();
        assert!(
            returned.load(Ordering::SeqCst),
            "close returned while the sink ran"
        );
        let clone = logger.clone();
        clone.log(LogLevel::Error, "after close");
        worker.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// One logger given to two clients: freeing one closes its own gate.
    #[test]
    fn closing_a_gated_logger_leaves_the_one_it_passes_to_open() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let shared = Logger::new(move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let (first, second) = (shared.gated(), shared.gated());
        first.close();
        first.log(LogLevel::Info, "dropped");
        second.log(LogLevel::Info, "passed");
        shared.log(LogLevel::Info, "passed");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_sink_may_log_again_and_even_close_without_waiting_for_itself() {
        let slot: Arc<Mutex<Option<Logger>>> = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (sink_slot, sink_seen) = (slot.clone(), seen.clone());
        let logger = Logger::new(move |_, message| {
            sink_seen.lock().unwrap().push(message.to_string());
            let inner = sink_slot.lock().unwrap().clone().unwrap();
            match message {
                "outer" => inner.log(LogLevel::Info, "inner"),
                "closing" => inner.close(),
                _ => {}
            }
        });
        *slot.lock().unwrap() = Some(logger.clone());
        logger.log(LogLevel::Info, "outer");
        logger.log(LogLevel::Info, "closing");
        logger.log(LogLevel::Info, "dropped");
        assert_eq!(*seen.lock().unwrap(), ["outer", "inner", "closing"]);
        slot.lock().unwrap().take();
    }

    #[test]
    fn hint_shows_only_a_prefix_and_length() {
        assert_eq!(super::token_hint("abcdefgh"), "abcd…(8 bytes)");
        assert_eq!(super::token_hint("ab"), "ab…(2 bytes)");
    }
}
