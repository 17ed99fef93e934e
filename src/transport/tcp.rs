//! TCP at the system-call floor.
//!
//! ureq's own TCP transport costs 10 system calls for a request on a
//! kept-alive connection: each of its two liveness probes switches the
//! socket to non-blocking and back around a read (3 calls each), and it sets
//! the socket's read and write timeouts on every request, since each
//! request's deadline differs by microseconds from the last. This one:
//!
//! * probes with one `recv(MSG_PEEK | MSG_DONTWAIT)`, and only when a
//!   connection is taken from the pool: the probe ureq makes when it puts a
//!   connection back, right after reading its answer, is answered without a
//!   system call (whatever it would catch, the next take's probe catches);
//! * keeps the socket's timeouts when they still fit: a timeout is set, to
//!   what is left rounded down to [`TIMEOUT_STEP`], only when the one in place
//!   is longer than what is left of the deadline or more than two steps
//!   shorter; an operation that times out early is simply retried with the
//!   rest of the deadline.
//!
//! So a pooled request is a probe, one write and one read: 3 system calls.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::Error;

use super::buffers::WipingBuffers;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, ShutdownHandle, Transport,
};

/// Socket timeouts are set in steps of this, so that most requests need none.
const TIMEOUT_STEP: Duration = Duration::from_millis(100);

/// Opens plain TCP connections (unless an earlier connector in the chain,
/// SOCKS, already made one).
#[derive(Debug, Default)]
pub(crate) struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let deadline = details.timeout.not_zero().map(|t| Instant::now() + *t);
        let stream = connect_any(&details.addrs, deadline)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let buffers = WipingBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers,
            read_timeout: None,
            write_timeout: None,
            just_read: false,
        };
        (details.register_shutdown)(transport.shutdown_handle())?;
        Ok(Some(Either::B(transport)))
    }
}

/// Tries the addresses in order, the first getting half of the time left,
/// the next half of the rest, and so on (the last gets all that is left).
fn connect_any(addrs: &[SocketAddr], deadline: Option<Instant>) -> Result<TcpStream, Error> {
    let mut last_error = None;
    for (index, addr) in addrs.iter().enumerate() {
        let share = |left: Duration| {
            let share = if index + 1 == addrs.len() {
                left
            } else {
                left / 2
            };
            share.max(Duration::from_millis(10))
        };
        let attempt = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Timeout(ureq::Timeout::Connect));
                }
                if super::cancel::in_scope() {
                    connect_cancellable(addr, share(left))
                } else {
                    TcpStream::connect_timeout(addr, share(left))
                }
            }
            None if super::cancel::in_scope() => connect_cancellable(addr, Duration::MAX),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                last_error = Some(Error::Timeout(ureq::Timeout::Connect));
            }
            Err(e) => last_error = Some(Error::Io(e)),
        }
    }
    Err(last_error.unwrap_or(Error::HostNotFound))
}

/// Connects to `addr` within `timeout`, giving up as soon as the call on
/// this thread is cancelled (checked every few milliseconds while the
/// handshake is in progress).
fn connect_cancellable(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: a new socket; closed by the TcpStream that owns it, or below.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is ours; the stream closes it when dropped.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (storage, length) = socket_address(addr);
    // SAFETY: a valid socket and address of `length` bytes.
    let started = unsafe { libc::connect(fd, (&raw const storage).cast(), length) };
    if started < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if super::cancel::is_cancelled() {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the call was cancelled while connecting",
                ));
            }
            let left = deadline.map_or(super::cancel::POLL_INTERVAL, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
            let slice = left.min(super::cancel::POLL_INTERVAL);
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, slice.as_millis().max(1) as i32) };
            if ready > 0 {
                break;
            }
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(error) = stream.take_error()? {
            return Err(error);
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// `addr` as a C socket address.
fn socket_address(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: a zeroed sockaddr_storage is valid, and each arm writes a
    // sockaddr that fits in it.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let length = match addr {
            SocketAddr::V4(v4) => {
                let out = &mut *(&raw mut storage).cast::<libc::sockaddr_in>();
                out.sin_family = libc::AF_INET as libc::sa_family_t;
                out.sin_port = v4.port().to_be();
                out.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let out = &mut *(&raw mut storage).cast::<libc::sockaddr_in6>();
                out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                out.sin6_port = v6.port().to_be();
                out.sin6_addr.s6_addr = v6.ip().octets();
                out.sin6_flowinfo = v6.flowinfo();
                out.sin6_scope_id = v6.scope_id();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, length as libc::socklen_t)
    }
}

/// A TCP connection (see the module documentation).
pub(crate) struct TcpTransport {
    /// Shared (weakly) with the agent's shutdown, which may shut it down
    /// from another thread.
    stream: Arc<TcpStream>,
    buffers: WipingBuffers,
    /// The socket's timeouts as last set (`None`: blocking without limit).
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The last operation was a read that returned data: the connection is
    /// on its way back to the pool.
    just_read: bool,
}

impl TcpTransport {
    fn shutdown_handle(&self) -> Weak<dyn ShutdownHandle> {
        Arc::downgrade(&self.stream) as Weak<dyn ShutdownHandle>
    }
}

/// The timeout to set for an operation with `left` until its deadline, or
/// `None` when `current` fits (see the module documentation).
fn timeout_to_set(current: Option<Duration>, left: Option<Duration>) -> Option<Option<Duration>> {
    match (current, left) {
        (None, None) => None,
        (Some(_), None) => Some(None),
        (Some(current), Some(left)) if current <= left && left - current <= 2 * TIMEOUT_STEP => {
            None
        }
        (_, Some(left)) => {
            let steps = left.as_nanos() / TIMEOUT_STEP.as_nanos();
            let stepped = TIMEOUT_STEP * u32::try_from(steps).unwrap_or(u32::MAX);
            let timeout = if stepped.is_zero() { left } else { stepped };
            Some(Some(timeout.max(Duration::from_millis(1))))
        }
    }
}

/// What is left of `timeout`, and the instant it runs out.
fn deadline_of(timeout: NextTimeout) -> Result<Option<Instant>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| Instant::now() + *t))
}

fn left_until(deadline: Option<Instant>, reason: ureq::Timeout) -> Result<Option<Duration>, Error> {
    match deadline {
        None => Ok(None),
        Some(deadline) => match deadline.saturating_duration_since(Instant::now()) {
            left if left.is_zero() => Err(Error::Timeout(reason)),
            left => Ok(Some(left)),
        },
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.just_read = false;
        let timeout = timeout.for_write();
        let deadline = deadline_of(timeout)?;
        let mut sent = 0;
        while sent < amount {
            let left = left_until(deadline, timeout.reason)?;
            if let Some(set) = timeout_to_set(self.write_timeout, left) {
                self.stream.set_write_timeout(set)?;
                self.write_timeout = set;
            }
            let output = &self.buffers.output()[sent..amount];
            match (&*self.stream).write(output) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if retry_after(&e) => {} // interrupted, or an early timeout
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.just_read = false;
        let timeout = timeout.for_read();
        let deadline = deadline_of(timeout)?;
        loop {
            let left = left_until(deadline, timeout.reason)?;
            if let Some(set) = timeout_to_set(self.read_timeout, left) {
                self.stream.set_read_timeout(set)?;
                self.read_timeout = set;
            }
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                Ok(amount) => {
                    super::trace::received(&input[..amount]);
                    self.buffers.input_appended(amount);
                    self.just_read = amount > 0;
                    return Ok(amount > 0);
                }
                Err(e) if retry_after(&e) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    fn is_open(&mut self) -> bool {
        if std::mem::take(&mut self.just_read) {
            return true; // being put back in the pool: the next take probes
        }
        let mut byte = 0u8;
        // SAFETY: a valid socket and a one-byte buffer.
        let peeked = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // Open means nothing to read yet: no data the server was not asked
        // for, and no end of stream.
        peeked < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

/// Interrupted by a signal, or timed out before the deadline (the socket's
/// timeout may be shorter): try again; `left_until` ends it at the deadline.
fn retry_after(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_change_only_when_they_no_longer_fit() {
        let ms = Duration::from_millis;
        assert_eq!(timeout_to_set(None, None), None);
        assert_eq!(timeout_to_set(Some(ms(5)), None), Some(None));
        // 30 s left, none set: 30 s, stepped down.
        assert_eq!(
            timeout_to_set(None, Some(ms(29_999))),
            Some(Some(ms(29_900)))
        );
        // The next request, a few microseconds later: the same one fits.
        assert_eq!(timeout_to_set(Some(ms(29_900)), Some(ms(29_998))), None);
        // Longer than what is left: shorter, at once.
        assert_eq!(
            timeout_to_set(Some(ms(29_900)), Some(ms(500))),
            Some(Some(ms(500)))
        );
        // Much shorter than what is left: longer again.
        assert_eq!(
            timeout_to_set(Some(ms(500)), Some(ms(29_998))),
            Some(Some(ms(29_900)))
        );
        // Under one step: exactly what is left, at least 1 ms.
        assert_eq!(
            timeout_to_set(Some(ms(500)), Some(ms(42))),
            Some(Some(ms(42)))
        );
        assert_eq!(
            timeout_to_set(None, Some(Duration::from_micros(10))),
            Some(Some(ms(1)))
        );
    }
}
