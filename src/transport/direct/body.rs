//! An answer's body on a direct connection: read into the caller's buffer,
//! or handed to an output straight from the connection's buffer; the
//! connection goes back to the pool when the body has ended.

use super::malformed;
use super::pool::Taken;
use crate::transport::exchange::Timing;
use crate::transport::http1::{Framing, Malformed};

/// An answer's body on a direct connection.
pub(crate) struct DirectBody {
    framing: Framing,
    reusable: bool,
    taken: Option<Taken>,
    timing: Timing,
    limit: u64,
    read: u64,
}

impl DirectBody {
    pub(crate) fn new(
        framing: Framing,
        reusable: bool,
        taken: Taken,
        timing: Timing,
    ) -> DirectBody {
        let mut body = DirectBody {
            framing,
            reusable,
            taken: Some(taken),
            timing,
            limit: u64::MAX,
            read: 0,
        };
        body.release_if_done();
        body
    }

    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The body ended: the connection goes back to the pool when it can
    /// carry another request (nothing more came with the answer).
    fn release_if_done(&mut self) {
        if !self.framing.is_done() {
            return;
        }
        if let Some(mut taken) = self.taken.take() {
            let buffers = taken.connection().buffers();
            let clean = buffers.input().is_empty();
            if self.reusable && clean {
                // The exchange ended: what is left of the answer is zeroed
                // (see `buffers.rs`).
                buffers.input_consume(0);
                taken.release();
            }
        }
    }

    /// Reads the next bytes into `buffer`; 0 at the end. After a failure
    /// the connection is closed.
    pub(crate) fn read(&mut self, buffer: &mut [u8]) -> Result<usize, ureq::Error> {
        let read = self.read_some(buffer);
        if read.is_err() {
            self.taken = None;
        }
        read
    }

    fn read_some(&mut self, buffer: &mut [u8]) -> Result<usize, ureq::Error> {
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(taken) = self.taken.as_mut() else {
                return Ok(0);
            };
            let connection = taken.connection();
            let input = connection.buffers().input();
            let (used, written) = if input.is_empty() {
                (0, 0)
            } else {
                let decoded = self.framing.decode(input, buffer).map_err(malformed)?;
                connection.buffers().input_consume(decoded.0);
                decoded
            };
            self.count(written)?;
            if self.framing.is_done() {
                self.release_if_done();
                return Ok(written);
            }
            if written > 0 {
                return Ok(written);
            }
            if used == 0 && !self.await_input()? {
                return Ok(0);
            }
        }
    }

    /// Hands the next bytes of the body to `deliver`, straight from the
    /// connection's buffer when the body is delimited by a length or by the
    /// end of the connection (no copy), else through `scratch`. `Ok(Ok(0))`
    /// at the end; `Ok(Err(_))` when `deliver` failed.
    pub(crate) fn deliver<E>(
        &mut self,
        scratch: &mut [u8],
        deliver: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<usize, E>, ureq::Error> {
        let delivered = self.deliver_some(scratch, deliver);
        if delivered.is_err() {
            self.taken = None;
        }
        delivered
    }

    fn deliver_some<E>(
        &mut self,
        scratch: &mut [u8],
        deliver: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<usize, E>, ureq::Error> {
        if matches!(self.framing, Framing::Chunked(_)) {
            let read = self.read_some(scratch)?;
            return Ok(match read {
                0 => Ok(0),
                read => deliver(&scratch[..read]).map(|()| read),
            });
        }
        loop {
            let Some(taken) = self.taken.as_mut() else {
                return Ok(Ok(0));
            };
            if self.framing.is_done() {
                self.release_if_done();
                return Ok(Ok(0));
            }
            let buffers = taken.connection().buffers();
            let available = buffers.input().len();
            if available > 0 {
                let body = self.framing.take(available);
                let delivered = deliver(&buffers.input()[..body]);
                buffers.input_consume(body);
                self.count(body)?;
                self.release_if_done();
                return Ok(delivered.map(|()| body));
            }
            if !self.await_input()? {
                return Ok(Ok(0));
            }
        }
    }

    /// Counts `read` bytes against the limit.
    fn count(&mut self, read: usize) -> Result<(), ureq::Error> {
        self.read += read as u64;
        if self.read > self.limit {
            return Err(ureq::Error::BodyExceedsLimit(self.limit));
        }
        Ok(())
    }

    /// Waits for more input: false when the connection ended where the
    /// body may end.
    fn await_input(&mut self) -> Result<bool, ureq::Error> {
        let timeout = self.timing.step(ureq::Timeout::RecvBody);
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let Some(taken) = self.taken.as_mut() else {
            return Ok(false);
        };
        if taken.connection().await_input(timeout)? {
            return Ok(true);
        }
        self.taken = None;
        self.framing.at_end_of_input().map_err(|e| match e {
            Malformed::Body(what) => {
                ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what))
            }
            other => malformed(other),
        })?;
        Ok(false)
    }
}
