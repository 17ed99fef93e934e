//! One write per request.
//!
//! ureq sends the request head and then the body with two writes: on a
//! socket with `TCP_NODELAY` that is two packets (two TLS records over TLS)
//! and two wake-ups at the gateway for a request of a few hundred bytes. This
//! transport holds what ureq transmits until ureq waits for the answer, then
//! sends it all in one write. Requests larger than [`MAX_PENDING`] are passed
//! on as they come.

use std::fmt;
use std::sync::{Arc, Weak};

use ureq::Error;
use ureq::unversioned::transport::{Buffers, NextTimeout, ShutdownHandle, Transport};

use super::forward::Forwarding;

/// Above this, pending output is sent at once rather than held.
const MAX_PENDING: usize = 64 * 1024;

/// Wraps the transport made by the connector chain (TCP, or TLS over TCP).
pub struct CoalescingTransport {
    inner: Box<dyn Transport>,
    pending: Vec<u8>,
    /// Requests go to a forwarding proxy: rewrite each one's head.
    forwarding: Option<Arc<Forwarding>>,
    /// The next output starts a request.
    at_request_start: bool,
    /// What shuts this connection down, for the cancellation of whichever
    /// call uses it (see `cancel.rs`).
    shutdown_handles: Vec<Weak<dyn ShutdownHandle>>,
}

impl CoalescingTransport {
    pub fn new(
        inner: Box<dyn Transport>,
        forwarding: Option<Arc<Forwarding>>,
        shutdown_handles: Vec<Weak<dyn ShutdownHandle>>,
    ) -> Self {
        CoalescingTransport {
            inner,
            pending: Vec::new(),
            forwarding,
            at_request_start: true,
            shutdown_handles,
        }
    }

    /// The call using this connection now may cancel it.
    fn register_with_call(&self) {
        if super::cancel::in_scope() {
            for handle in &self.shutdown_handles {
                super::cancel::register(handle);
            }
        }
    }

    /// Sends what is held, in as few writes as the inner buffer allows.
    fn flush_pending(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        if std::mem::take(&mut self.at_request_start) {
            if let Some(rewritten) = self
                .forwarding
                .as_ref()
                .and_then(|f| f.rewrite(&self.pending))
            {
                self.pending = rewritten;
            }
        }
        let mut sent = 0;
        while sent < self.pending.len() {
            let output = self.inner.buffers().output();
            let amount = output.len().min(self.pending.len() - sent);
            output[..amount].copy_from_slice(&self.pending[sent..sent + amount]);
            self.inner.transmit_output(amount, timeout)?;
            sent += amount;
        }
        crate::secret::wipe(&mut self.pending); // it held a request
        self.pending.clear();
        Ok(())
    }
}

impl Transport for CoalescingTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.register_with_call();
        if self.pending.is_empty() && amount > MAX_PENDING && self.forwarding.is_none() {
            self.at_request_start = false;
            super::cancel::mark_sent();
            return self.inner.transmit_output(amount, timeout);
        }
        let output = self.inner.buffers().output();
        if self.pending.len() + amount > self.pending.capacity() {
            // Grown by hand, so that the old buffer is zeroed before it is freed.
            let mut bigger = Vec::with_capacity((self.pending.len() + amount).max(4096));
            bigger.extend_from_slice(&self.pending);
            crate::secret::wipe(&mut self.pending);
            self.pending = bigger;
        }
        self.pending.extend_from_slice(&output[..amount]);
        if self.pending.len() > MAX_PENDING {
            super::cancel::mark_sent();
            self.flush_pending(timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.register_with_call();
        if !self.pending.is_empty() {
            super::cancel::mark_sent();
            self.flush_pending(timeout)?;
        }
        let more = self.inner.await_input(timeout)?;
        self.at_request_start = true;
        if !self.inner.buffers().input().is_empty() {
            super::trace::answer_started();
        }
        Ok(more)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

impl Drop for CoalescingTransport {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.pending);
    }
}

impl fmt::Debug for CoalescingTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescingTransport")
            .field("inner", &self.inner)
            .field("pending", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use ureq::unversioned::transport::LazyBuffers;

    /// Records every write it is asked to make.
    #[derive(Debug)]
    struct RecordingTransport {
        buffers: LazyBuffers,
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Transport for RecordingTransport {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), Error> {
            let bytes = self.buffers.output()[..amount].to_vec();
            self.writes.lock().unwrap().push(bytes);
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn timeout() -> NextTimeout {
        NextTimeout::default()
    }

    fn transmit(transport: &mut CoalescingTransport, bytes: &[u8]) {
        transport.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        transport.transmit_output(bytes.len(), timeout()).unwrap();
    }

    #[test]
    fn head_and_body_go_out_in_one_write_before_reading() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let inner = RecordingTransport {
            buffers: LazyBuffers::new(1024, 256),
            writes: writes.clone(),
        };
        let mut transport = CoalescingTransport::new(Box::new(inner), None, Vec::new());
        transmit(&mut transport, b"POST / HTTP/1.1\r\n\r\n");
        transmit(&mut transport, b"{\"body\":1}");
        assert!(
            writes.lock().unwrap().is_empty(),
            "held until the answer is awaited"
        );
        transport.await_input(timeout()).unwrap();
        assert_eq!(
            *writes.lock().unwrap(),
            vec![b"POST / HTTP/1.1\r\n\r\n{\"body\":1}".to_vec()]
        );
        transport.await_input(timeout()).unwrap();
        assert_eq!(writes.lock().unwrap().len(), 1, "nothing more to send");

        // More than the inner buffer holds goes out in buffer-sized writes.
        let big = vec![b'x'; 600];
        transmit(&mut transport, &big[..200]);
        transmit(&mut transport, &big[200..400]);
        transmit(&mut transport, &big[400..]);
        transport.await_input(timeout()).unwrap();
        let writes = writes.lock().unwrap();
        assert_eq!(
            writes[1..].iter().map(Vec::len).collect::<Vec<_>>(),
            vec![256, 256, 88]
        );
        assert_eq!(writes[1..].concat(), big);
    }
}
