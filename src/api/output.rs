//! Where an answer's body goes (memory, a file descriptor, a callback) and
//! the progress reports of a call.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};

/// Takes a streamed answer's bytes; an error stops the call.
pub(crate) type WriteFn = Arc<dyn Fn(&[u8]) -> std::io::Result<()> + Send + Sync>;
/// Receives progress reports.
pub(crate) type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Progress reports are at least this far apart (but for the last one).
const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// Where an answer's body goes.
#[derive(Clone)]
pub(crate) enum Output {
    /// Into the response, up to the client's `max_response_bytes`.
    Memory,
    /// Written to this descriptor as it arrives.
    Fd(RawFd),
    /// Handed to this callback as it arrives.
    Callback(WriteFn),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Memory => f.write_str("Memory"),
            Output::Fd(fd) => write!(f, "Fd({fd})"),
            Output::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// How far a call has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the request's body sent so far (by the current attempt).
    pub sent: u64,
    /// The request body's length.
    pub send_total: u64,
    /// Bytes of the answer's body received so far.
    pub received: u64,
    /// The answer body's length, when the server said it.
    pub receive_total: Option<u64>,
}

/// Counts a call's bytes and reports them, at most every 100 ms and once
/// at the end. Used on the one thread that makes the call.
pub(crate) struct ProgressMeter<'a> {
    report: Option<&'a ProgressFn>,
    progress: Cell<Progress>,
    last_report: Cell<Option<Instant>>,
}

impl<'a> ProgressMeter<'a> {
    pub(crate) fn new(report: Option<&'a ProgressFn>) -> Self {
        ProgressMeter {
            report,
            progress: Cell::new(Progress::default()),
            last_report: Cell::new(None),
        }
    }

    fn change(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.get();
        change(&mut progress);
        self.progress.set(progress);
        if self.report.is_some() {
            self.tick();
        }
    }

    /// A new attempt sends `total` bytes, none sent yet.
    pub(crate) fn set_send_total(&self, total: u64) {
        self.change(|p| {
            p.send_total = total;
            p.sent = 0;
        });
    }

    pub(crate) fn add_sent(&self, bytes: u64) {
        self.change(|p| p.sent += bytes);
    }

    pub(crate) fn set_receive_total(&self, total: Option<u64>) {
        self.change(|p| p.receive_total = total);
    }

    pub(crate) fn add_received(&self, bytes: u64) {
        self.change(|p| p.received += bytes);
    }

    pub(crate) fn received(&self) -> u64 {
        self.progress.get().received
    }

    fn tick(&self) {
        let now = Instant::now();
        let due = self
            .last_report
            .get()
            .is_none_or(|last| now.duration_since(last) >= REPORT_INTERVAL);
        if due {
            self.last_report.set(Some(now));
            self.emit();
        }
    }

    /// Reports, unless the call was cancelled (its owner may be freeing what
    /// the callback uses).
    fn emit(&self) {
        if let Some(report) = self.report
            && !crate::transport::is_cancelled()
        {
            report(self.progress.get());
        }
    }

    /// The last report, whatever the time since the one before.
    pub(crate) fn finish(&self) {
        self.emit();
    }
}

/// A streamed answer's destination for one call.
pub(crate) struct Sink<'a> {
    output: &'a Output,
    meter: &'a ProgressMeter<'a>,
    /// How long a write to a descriptor that is not ready may wait.
    stall: Duration,
    /// What the output descriptor is, once looked at.
    fd_kind: Option<FdKind>,
}

/// What a write to a descriptor may raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FdKind {
    /// A pipe or FIFO: a write after its reader has gone raises `SIGPIPE`.
    Pipe,
    /// A socket: `send(MSG_NOSIGNAL)` raises nothing.
    Socket,
    /// A file, a device, ...: no `SIGPIPE` (no signal mask to change for
    /// each write: three system calls, as many as the write itself).
    Other,
}

fn kind_of(fd: RawFd) -> FdKind {
    // SAFETY: a zeroed stat is a valid output buffer.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `stat`; a bad descriptor fails (then the
    // write fails too, with its own message).
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return FdKind::Pipe; // unknown: the careful way
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::Other,
    }
}

impl<'a> Sink<'a> {
    pub(crate) fn new(output: &'a Output, meter: &'a ProgressMeter<'a>, stall: Duration) -> Self {
        Sink {
            output,
            meter,
            stall,
            fd_kind: None,
        }
    }

    /// Passes `bytes` on; the error says why the output refused them.
    /// Nothing is written once the call is cancelled: its owner may be
    /// closing the descriptor or freeing what the callback uses.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if crate::transport::is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "the call was cancelled"));
        }
        match self.output {
            Output::Memory => unreachable!("a body kept in memory is not streamed"),
            Output::Fd(fd) => {
                let kind = *self.fd_kind.get_or_insert_with(|| kind_of(*fd));
                write_fd(*fd, bytes, self.stall, kind)?
            }
            Output::Callback(write) => write(bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Cancelled,
                    format!(
                        "the output callback stopped the call after {} bytes of the answer ({e})",
                        self.meter.received()
                    ),
                )
            })?,
        }
        self.meter.add_received(bytes.len() as u64);
        Ok(())
    }
}

/// `write(2)` without a `SIGPIPE`: a pipe whose reader has gone must be an
/// error of the call (`EPIPE`), never a signal that ends the host program.
/// SIGPIPE is blocked on this thread around the write, and one the write
/// raised is taken off the thread before it is unblocked.
fn write_without_sigpipe(fd: RawFd, bytes: &[u8]) -> isize {
    // SAFETY: plain signal-set manipulation on this thread's own mask, and a
    // write of `bytes`, valid for its length.
    unsafe {
        let mut sigpipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigpipe);
        libc::sigaddset(&mut sigpipe, libc::SIGPIPE);
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &sigpipe, &mut previous);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = std::io::Error::last_os_error();
        if written < 0 && error.raw_os_error() == Some(libc::EPIPE) && !was_pending {
            let no_wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&sigpipe, std::ptr::null_mut(), &no_wait);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        if written < 0 {
            // Restored for the caller, which reads it next.
            *libc::__errno_location() = error.raw_os_error().unwrap_or(0);
        }
        written
    }
}

/// Writes all of `bytes` to `fd`: interrupted writes are retried, a
/// non-blocking descriptor that is full is waited for (at most `stall`), a
/// closed pipe is an error, not a signal.
fn write_fd(fd: RawFd, mut bytes: &[u8], stall: Duration, kind: FdKind) -> Result<(), Error> {
    let failed = |e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("cannot write the answer to file descriptor {fd}: {e}"),
        )
    };
    while !bytes.is_empty() {
        let written = match kind {
            FdKind::Pipe => write_without_sigpipe(fd, bytes),
            // SAFETY: a send of `bytes`, valid for its length.
            FdKind::Socket => unsafe {
                libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL)
            },
            // SAFETY: a write of `bytes`, valid for its length.
            FdKind::Other => unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) },
        };
        if written > 0 {
            bytes = &bytes[written as usize..];
            continue;
        }
        let error = if written == 0 {
            std::io::Error::from(std::io::ErrorKind::WriteZero)
        } else {
            std::io::Error::last_os_error()
        };
        match error.kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => wait_writable(fd, stall).map_err(failed)?,
            _ => return Err(failed(error)),
        }
    }
    Ok(())
}

fn wait_writable(fd: RawFd, stall: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + stall;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not writable for {} ms", stall.as_millis()),
            ));
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let timeout = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut poll, 1, timeout) } {
            1.. => return Ok(()),
            0 => {}
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn reports_are_at_most_every_100_ms_and_once_at_the_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let report: ProgressFn = Arc::new(move |p| kept.lock().unwrap().push(p));
        let meter = ProgressMeter::new(Some(&report));
        meter.set_send_total(10);
        for _ in 0..10 {
            meter.add_sent(1);
        }
        meter.set_receive_total(Some(4));
        meter.add_received(4);
        assert_eq!(seen.lock().unwrap().len(), 1, "one report within 100 ms");
        meter.finish();
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen.last().unwrap(),
            Progress {
                sent: 10,
                send_total: 10,
                received: 4,
                receive_total: Some(4)
            }
        );
    }

    #[test]
    fn only_pipes_need_the_signal_mask_and_sockets_are_sent_without_a_signal() {
        use std::os::fd::AsRawFd;
        let mut ends = [0; 2];
        // SAFETY: pipe and socketpair fill two descriptors, closed below.
        unsafe { libc::pipe(ends.as_mut_ptr()) };
        assert_eq!(kind_of(ends[1]), FdKind::Pipe);
        // SAFETY: descriptors this test owns.
        unsafe {
            libc::close(ends[0]);
            libc::close(ends[1]);
        }
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert_eq!(kind_of(null.as_raw_fd()), FdKind::Other);
        assert_eq!(kind_of(-5), FdKind::Pipe, "unknown: the careful way");
        // SAFETY: as above.
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, ends.as_mut_ptr()) };
        assert_eq!(kind_of(ends[0]), FdKind::Socket);
        // SAFETY: as above.
        unsafe { libc::close(ends[1]) };
        let error = write_fd(ends[0], b"x", Duration::from_millis(10), FdKind::Socket).unwrap_err();
        assert!(error.message().contains("Broken pipe"), "{error}");
        // SAFETY: as above.
        unsafe { libc::close(ends[0]) };
    }

    #[test]
    fn a_closed_or_full_descriptor_is_an_io_error_naming_it() {
        let error = write_fd(-5, b"x", Duration::from_millis(10), kind_of(-5)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Io);
        assert!(error.message().contains("file descriptor -5"), "{error}");
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        use std::os::fd::AsRawFd;
        let kind = kind_of(full.as_raw_fd());
        assert_eq!(kind, FdKind::Other);
        let error = write_fd(full.as_raw_fd(), b"x", Duration::from_millis(10), kind).unwrap_err();
        assert!(error.message().contains("No space left"), "{error}");
    }
}
