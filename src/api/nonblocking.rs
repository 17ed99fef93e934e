//! Calls that never block their caller (`Client::send_async`,
//! `enos_client_send_async`): each runs on one of the client's worker
//! threads (at most `max_concurrent` at once, the rest queued), and says it
//! is done three ways: its completion callback (once, on the worker), its
//! file descriptor (an eventfd, readable from then on), and [`Call::wait`].
//! A cancel completes the call at once: a queued one never starts, a
//! running one's connections are shut down (they are never reused) and its
//! waits end, and its late result is dropped.
//!
//! The workers and their queue belong to one process: a child forked with
//! calls in flight gets a new, empty executor, and a call it inherited is
//! done there, cancelled ("started in the parent process").

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::response::Response;
use crate::error::{Error, ErrorKind};
use crate::fork::ForkSafeMutex;
use crate::transport::Cancellation;

/// A worker with nothing to do for this long ends its thread.
const IDLE_WORKER_LIFETIME: Duration = Duration::from_secs(30);

/// What a call runs: the blocking send, on a worker thread.
pub(crate) type Job = Box<dyn FnOnce() -> Result<Response, Error> + Send>;
/// What runs when a call is done (on the worker thread).
pub(crate) type Completion = Box<dyn FnOnce(&Arc<CallShared>) + Send>;

/// Where a call is.
enum CallState {
    Queued,
    Running,
    Done(Result<Response, Error>),
    /// Its response was handed to a waiter.
    HandedOut,
}

/// One call in flight, shared by its handle, its worker and the executor.
pub(crate) struct CallShared {
    state: Mutex<CallState>,
    done: Condvar,
    cancellation: Arc<Cancellation>,
    /// Readable once the call is done: an eventfd made when first asked for
    /// (most callers wait or take a callback, and never pay its three system
    /// calls), under the state's lock, so that done and readable stay one
    /// moment; `None` inside if none could be made.
    event: OnceLock<Option<OwnedFd>>,
    completion: Mutex<Option<Completion>>,
    /// The process (fork generation) the call was started in.
    generation: u64,
    /// `METHOD /path?names`, for messages.
    description: String,
    idempotent: bool,
}

impl std::fmt::Debug for CallShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call", &self.description)
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallShared {
    fn new(description: String, idempotent: bool, completion: Option<Completion>) -> Arc<Self> {
        Arc::new(CallShared {
            state: Mutex::new(CallState::Queued),
            done: Condvar::new(),
            cancellation: Arc::default(),
            event: OnceLock::new(),
            completion: Mutex::new(completion),
            generation: crate::fork::generation(),
            description,
            idempotent,
        })
    }

    /// Started in another process (this is a forked child's copy).
    fn inherited(&self) -> bool {
        self.generation != crate::fork::generation()
    }

    fn inherited_error(&self) -> Error {
        Error::new(
            ErrorKind::Cancelled,
            format!(
                "{}: the call was started in the parent process before fork(); it does not exist in this one",
                self.description
            ),
        )
    }

    /// The descriptor that becomes readable when the call is done (-1 in a
    /// forked child, or when none could be made).
    pub(crate) fn fd(&self) -> RawFd {
        if self.inherited() {
            return -1;
        }
        let state = lock(&self.state);
        let event = self.event.get_or_init(|| {
            // SAFETY: eventfd with flags only; the descriptor is owned below.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            // SAFETY: a descriptor eventfd just gave us.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        });
        if event.is_some() && matches!(*state, CallState::Done(_) | CallState::HandedOut) {
            // Made after the call was done: readable at once. (A second call
            // of fd() writes again: harmless, the counter only grows.)
            Self::signal(event.as_ref());
        }
        event.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.inherited()
            || matches!(
                *lock(&self.state),
                CallState::Done(_) | CallState::HandedOut
            )
    }

    /// Waits until the call is done, at most `timeout` (`None`: no limit),
    /// and takes its outcome: the response once, or the call's error.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<Response, Error> {
        if self.inherited() {
            return Err(self.inherited_error());
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = lock(&self.state);
        loop {
            match &*state {
                CallState::Done(_) | CallState::HandedOut => break,
                _ => {}
            }
            match deadline {
                None => {
                    state = self
                        .done
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "{}: not done within the {} ms waited; the call goes on",
                                self.description,
                                timeout.unwrap_or_default().as_millis()
                            ),
                        ));
                    }
                    state = self
                        .done
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        match std::mem::replace(&mut *state, CallState::HandedOut) {
            CallState::Done(Ok(response)) => Ok(response),
            CallState::Done(Err(error)) => {
                *state = CallState::Done(Err(error.clone()));
                Err(error)
            }
            _ => Err(Error::invalid_argument(format!(
                "{}: its response was already handed out by an earlier wait",
                self.description
            ))),
        }
    }

    /// Cancels the call: a queued one never starts; a running one's
    /// connections are shut down and its waits end. Either way it is done at
    /// once, with `ErrorKind::Cancelled`. Nothing for a call already done.
    pub(crate) fn cancel(&self) {
        if self.inherited() {
            return;
        }
        let cancelled = {
            let mut state = lock(&self.state);
            match &*state {
                CallState::Queued | CallState::Running => {
                    *state = CallState::Done(Err(self.cancelled_error()));
                    self.make_readable();
                    true
                }
                _ => false,
            }
        };
        if cancelled {
            self.done.notify_all();
            self.cancellation.cancel();
        }
    }

    fn cancelled_error(&self) -> Error {
        let what = if !self.cancellation.was_sent() {
            "cancelled before its request was sent"
        } else if self.idempotent {
            "cancelled after its request was sent"
        } else {
            "cancelled after its request was sent: the server may have processed it"
        };
        Error::new(
            ErrorKind::Cancelled,
            format!("{}: {what}", self.description),
        )
    }

    /// The handle is gone: the call is cancelled if it still runs, and its
    /// callback will not be called (one running now finishes).
    pub(crate) fn release(&self) {
        lock(&self.completion).take();
        self.cancel();
    }

    /// Makes the descriptor readable, if one was made; called with the
    /// state locked, as it becomes done, so that done and readable are one
    /// moment to observers.
    fn make_readable(&self) {
        Self::signal(self.event.get().and_then(Option::as_ref));
    }

    fn signal(event: Option<&OwnedFd>) {
        if let Some(event) = event {
            let one: u64 = 1;
            // SAFETY: an eventfd and 8 readable bytes; a full counter (never
            // reached: a few writes per call) would only fail the write.
            unsafe { libc::write(event.as_raw_fd(), (&raw const one).cast(), 8) };
        }
    }

    /// The worker's outcome: kept unless a cancel completed the call first;
    /// then the completion callback runs (once).
    fn complete(self: &Arc<Self>, outcome: Result<Response, Error>) {
        let kept = {
            let mut state = lock(&self.state);
            if matches!(*state, CallState::Running | CallState::Queued) {
                *state = CallState::Done(outcome);
                self.make_readable();
                true
            } else {
                false
            }
        };
        if kept {
            self.done.notify_all();
        }
        let completion = lock(&self.completion).take();
        if let Some(completion) = completion {
            completion(self);
        }
    }

    /// Queued → running; false when a cancel came first.
    fn start(&self) -> bool {
        let mut state = lock(&self.state);
        if matches!(*state, CallState::Queued) {
            *state = CallState::Running;
            return true;
        }
        false
    }
}

/// A call in flight (see the module documentation). Dropping it cancels
/// the call if it is still running, and its completion callback is not
/// called after that.
#[derive(Debug)]
pub struct Call {
    pub(crate) shared: Arc<CallShared>,
}

impl Call {
    /// The shared state, the handle's own reference kept (for the C handle,
    /// which frees it with `enos_call_free`).
    pub(crate) fn into_shared(self) -> Arc<CallShared> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: read once out of a value whose destructor never runs.
        unsafe { std::ptr::read(&this.shared) }
    }

    /// A descriptor that becomes readable when the call is done, and stays
    /// so (for `poll`, `epoll`, an event loop's reader); -1 in a process
    /// forked after the call started. Never read from or close it.
    pub fn fd(&self) -> RawFd {
        self.shared.fd()
    }

    /// Whether the call is done.
    pub fn is_done(&self) -> bool {
        self.shared.is_done()
    }

    /// Waits until the call is done, at most `timeout` (`None`: as long as
    /// it takes), and returns its outcome: the response (once), or its
    /// error. A timeout that passes is `ErrorKind::Timeout`, and the call
    /// goes on.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Response, Error> {
        self.shared.wait(timeout)
    }

    /// Cancels the call (see the module documentation); it completes at
    /// once with `ErrorKind::Cancelled`. Nothing for a call already done.
    pub fn cancel(&self) {
        self.shared.cancel();
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// One queued call: its shared state and what it runs.
struct Queued {
    call: Arc<CallShared>,
    job: Job,
}

struct Queue {
    jobs: VecDeque<Queued>,
    /// Calls running now, for a client that goes away.
    running: Vec<Arc<CallShared>>,
    workers: usize,
    idle: usize,
    closed: bool,
}

/// The workers of one client in one process.
struct Workers {
    queue: Mutex<Queue>,
    work: Condvar,
    max_concurrent: usize,
}

/// A client's worker threads (one process's: see the module documentation).
pub(crate) struct Executor {
    current: ForkSafeMutex<(u64, Arc<Workers>)>,
    max_concurrent: usize,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("max_concurrent", &self.max_concurrent)
            .finish_non_exhaustive()
    }
}

impl Workers {
    fn new(max_concurrent: usize) -> Arc<Workers> {
        Arc::new(Workers {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: Vec::new(),
                workers: 0,
                idle: 0,
                closed: false,
            }),
            work: Condvar::new(),
            max_concurrent,
        })
    }

    /// A worker's life: take jobs until idle for too long or closed.
    fn work(self: Arc<Self>) {
        loop {
            let Some(Queued { call, job }) = self.next_job() else {
                return;
            };
            if call.start() {
                let cancellation = call.cancellation.clone();
                let outcome = cancellation.within(job);
                lock(&self.queue).running.retain(|c| !Arc::ptr_eq(c, &call));
                call.complete(outcome);
            } else {
                lock(&self.queue).running.retain(|c| !Arc::ptr_eq(c, &call));
                call.complete(Err(call.cancelled_error()));
            }
        }
    }

    fn next_job(&self) -> Option<Queued> {
        let mut queue = lock(&self.queue);
        loop {
            if let Some(queued) = queue.jobs.pop_front() {
                queue.running.push(queued.call.clone());
                return Some(queued);
            }
            if queue.closed {
                queue.workers -= 1;
                return None;
            }
            queue.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(queue, IDLE_WORKER_LIFETIME)
                .unwrap_or_else(PoisonError::into_inner);
            queue = next;
            queue.idle -= 1;
            if waited.timed_out() && queue.jobs.is_empty() {
                queue.workers -= 1;
                return None;
            }
        }
    }
}

impl Executor {
    pub(crate) fn new(max_concurrent: usize) -> Executor {
        Executor {
            current: ForkSafeMutex::new((crate::fork::generation(), Workers::new(max_concurrent))),
            max_concurrent,
        }
    }

    /// This process's workers (new ones in a forked child).
    fn workers(&self) -> Arc<Workers> {
        let mut current = self.current.lock();
        let generation = crate::fork::generation();
        if current.0 != generation {
            *current = (generation, Workers::new(self.max_concurrent));
        }
        current.1.clone()
    }

    /// Queues `job` as a call described by `description`; it starts as soon
    /// as a worker is free. `completion` runs when it is done.
    pub(crate) fn submit(
        &self,
        description: String,
        idempotent: bool,
        job: Job,
        completion: Option<Completion>,
    ) -> Call {
        let call = CallShared::new(description, idempotent, completion);
        let workers = self.workers();
        let spawn = {
            let mut queue = lock(&workers.queue);
            if queue.closed {
                drop(queue);
                call.complete(Err(Error::invalid_argument(
                    "the client is being freed: no call starts on it",
                )));
                return Call { shared: call };
            }
            queue.jobs.push_back(Queued {
                call: call.clone(),
                job,
            });
            // Every queued job not matched by an idle worker (one woken but
            // not yet running still counts as idle: it will take one) gets
            // a new worker, up to the cap.
            let spawn = queue.jobs.len() > queue.idle && queue.workers < workers.max_concurrent;
            if spawn {
                queue.workers += 1;
            }
            spawn
        };
        if spawn {
            let worker = workers.clone();
            let started = std::thread::Builder::new()
                .name("enos-token-call".into())
                .spawn(move || worker.work());
            if started.is_err() {
                let mut queue = lock(&workers.queue);
                queue.workers -= 1;
                if queue.workers == 0 {
                    let stranded: Vec<Queued> = queue.jobs.drain(..).collect();
                    drop(queue);
                    for queued in stranded {
                        queued.call.complete(Err(Error::new(
                            ErrorKind::Internal,
                            "no thread could be started to make the call",
                        )));
                    }
                }
            }
        } else {
            workers.work.notify_one();
        }
        Call { shared: call }
    }

    /// The client goes away: no call starts any more, queued and running
    /// ones are cancelled (done at once), idle workers end. The workers
    /// drain the queue, so that every completion callback still runs on a
    /// worker, never on the thread freeing the client.
    pub(crate) fn close(&self) {
        let workers = self.workers();
        let (queued, running) = {
            let mut queue = lock(&workers.queue);
            queue.closed = true;
            let queued: Vec<Arc<CallShared>> = queue
                .jobs
                .iter()
                .map(|queued| queued.call.clone())
                .collect();
            (queued, queue.running.clone())
        };
        workers.work.notify_all();
        for call in queued.iter().chain(&running) {
            call.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ok_response() -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: b"ok".to_vec(),
            attempts: 1,
            request_id: std::sync::OnceLock::new(),
        }
    }

    fn readable(fd: RawFd) -> bool {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        unsafe { libc::poll(&mut poll, 1, 0) == 1 }
    }

    #[test]
    fn a_call_says_it_is_done_three_ways_and_hands_its_response_out_once() {
        let executor = Executor::new(4);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let callbacks = Arc::new(AtomicUsize::new(0));
        let counted = callbacks.clone();
        let caller = std::thread::current().id();
        let call = executor.submit(
            "GET /x".into(),
            true,
            Box::new(move || {
                gate.recv().unwrap();
                Ok(ok_response())
            }),
            Some(Box::new(move |_| {
                assert_ne!(
                    std::thread::current().id(),
                    caller,
                    "off the caller's thread"
                );
                counted.fetch_add(1, Ordering::SeqCst);
            })),
        );
        assert!(!call.is_done() && !readable(call.fd()));
        let early = call.wait(Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(early.kind(), ErrorKind::Timeout);
        release.send(()).unwrap();
        let response = call.wait(None).unwrap();
        assert_eq!(response.body(), b"ok");
        assert!(call.is_done() && readable(call.fd()));
        let again = call.wait(Some(Duration::ZERO)).unwrap_err();
        assert!(again.message().contains("already handed out"), "{again}");
        while callbacks.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(callbacks.load(Ordering::SeqCst), 1, "once");
    }

    #[test]
    fn a_queued_call_cancelled_never_starts_and_a_running_one_ends_at_once() {
        let executor = Executor::new(1);
        let started = Arc::new(AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let first_started = started.clone();
        let first = executor.submit(
            "GET /first".into(),
            true,
            Box::new(move || {
                first_started.fetch_add(1, Ordering::SeqCst);
                let _ = gate.recv();
                Ok(ok_response())
            }),
            None,
        );
        let second_started = started.clone();
        let second = executor.submit(
            "POST /second".into(),
            false,
            Box::new(move || {
                second_started.fetch_add(1, Ordering::SeqCst);
                Ok(ok_response())
            }),
            None,
        );
        while started.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        second.cancel();
        let error = second.wait(None).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled);
        assert!(
            error.message().contains("before its request was sent"),
            "{error}"
        );
        let cancelled_at = Instant::now();
        first.cancel();
        assert_eq!(first.wait(None).unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(cancelled_at.elapsed() < Duration::from_millis(50));
        release.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "the queued call never ran"
        );
    }

    #[test]
    fn a_descriptor_first_asked_for_after_the_call_is_done_is_readable_at_once() {
        let executor = Executor::new(1);
        let call = executor.submit("GET /x".into(), true, Box::new(|| Ok(ok_response())), None);
        while !call.is_done() {
            std::thread::yield_now();
        }
        let fd = call.fd();
        assert!(fd >= 0 && readable(fd));
        assert_eq!(call.fd(), fd, "one descriptor per call");
        call.wait(None).unwrap();
        assert!(readable(fd), "and it stays so");
    }

    #[test]
    fn closing_cancels_queued_and_running_calls_and_their_callbacks_run_on_workers() {
        let executor = Executor::new(1);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(AtomicUsize::new(0));
        let callbacks = Arc::new(AtomicUsize::new(0));
        let closer = std::thread::current().id();
        let gate = Arc::new(Mutex::new(gate));
        let calls: Vec<Call> = (0..3)
            .map(|i| {
                let (started, gate, callbacks) = (started.clone(), gate.clone(), callbacks.clone());
                executor.submit(
                    format!("GET /{i}"),
                    true,
                    Box::new(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        let _ = lock(&gate).recv_timeout(Duration::from_secs(5));
                        Ok(ok_response())
                    }),
                    Some(Box::new(move |_| {
                        // Counted by thread: 1 on a worker, 1000 on the closer's.
                        let on_closer = std::thread::current().id() == closer;
                        callbacks.fetch_add(if on_closer { 1000 } else { 1 }, Ordering::SeqCst);
                    })),
                )
            })
            .collect();
        while started.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        executor.close();
        for call in &calls {
            assert!(call.is_done(), "done at once");
            assert_eq!(call.wait(None).unwrap_err().kind(), ErrorKind::Cancelled);
        }
        release.send(()).unwrap();
        while callbacks.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            callbacks.load(Ordering::SeqCst),
            3,
            "each once, on a worker"
        );
        assert_eq!(started.load(Ordering::SeqCst), 1, "queued calls never ran");
    }

    #[test]
    fn at_most_max_concurrent_calls_run_at_once() {
        let executor = Executor::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<Call> = (0..12)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                executor.submit(
                    format!("GET /{i}"),
                    true,
                    Box::new(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(ok_response())
                    }),
                    None,
                )
            })
            .collect();
        for call in &calls {
            call.wait(None).unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
