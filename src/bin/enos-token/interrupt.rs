//! Ctrl-C during `request`: SIGINT is blocked and read from a signalfd, so
//! that it cancels the call in flight (its connection shut down, nothing
//! half-written behind the user's back) and the program exits with 130, as
//! a shell expects of an interrupted command. This is the program's own
//! signal handling: the library never touches signals.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use enos_token::Call;

/// SIGINT, taken from its default action for this program's life.
pub struct Interrupts {
    signals: OwnedFd,
}

/// The signal set holding SIGINT alone.
fn sigint_only() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset then sigaddset
    // make it the set {SIGINT}.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

impl Interrupts {
    /// Blocks SIGINT on this thread, and so on every thread it starts from
    /// now on (call it before any), and opens a descriptor that reads it.
    /// `None` (SIGINT then keeps its default action) if that fails.
    pub fn take() -> Option<Interrupts> {
        let set = sigint_only();
        // SAFETY: a valid set; the old mask is not wanted.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return None;
        }
        // SAFETY: a new descriptor for a valid set, owned below.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
        if fd < 0 {
            // SAFETY: as above; SIGINT gets its default action back.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
            return None;
        }
        // SAFETY: the descriptor signalfd just returned.
        Some(Interrupts {
            signals: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Waits until `call` is done, or SIGINT comes first (true).
    pub fn interrupted_before(&self, call: &Call) -> bool {
        let mut waited = [
            libc::pollfd {
                fd: call.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            if call.is_done() {
                return false;
            }
            // A call without a descriptor (none could be made) is looked at
            // every 50 ms; poll ignores a negative descriptor.
            let timeout = if waited[0].fd < 0 { 50 } else { -1 };
            // SAFETY: two valid pollfd entries.
            let ready = unsafe { libc::poll(waited.as_mut_ptr(), 2, timeout) };
            if ready > 0 && waited[1].revents & libc::POLLIN != 0 {
                return true;
            }
        }
    }
}
