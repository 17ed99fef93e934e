//! What happened during the request this thread is making, as seen from
//! inside ureq's connector chain: whether a new connection was opened (and
//! failed), and whether any byte of the answer arrived. ureq runs the
//! connector and the transport on the calling thread, so a thread-local
//! record is exact. It tells a stale pooled connection (retry it once on a
//! new one) from a failed connect (name the proxy; a TLS failure is a
//! handshake failure) from a failure after the answer started.

use std::cell::Cell;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestTrace {
    /// The connector ran: the request did not use a pooled connection.
    pub(crate) opened_connection: bool,
    /// Opening the connection (TCP, proxy or TLS handshake) failed.
    pub(crate) connect_failed: bool,
    /// At least one byte of the answer arrived.
    pub(crate) answer_started: bool,
    /// The first two bytes the server sent on a new connection, as they
    /// came off the socket (below TLS): `HT` for plain HTTP, `0x15 0x03`
    /// or `0x16 0x03` for a TLS record. Tells a scheme mix-up.
    pub(crate) first_bytes: [u8; 2],
}

thread_local! {
    static TRACE: Cell<RequestTrace> = const {
        Cell::new(RequestTrace {
            opened_connection: false,
            connect_failed: false,
            answer_started: false,
            first_bytes: [0, 0],
        })
    };
}

/// Starts a new record for this thread's next request.
pub(crate) fn start() {
    TRACE.with(|trace| trace.set(RequestTrace::default()));
}

/// The record of this thread's current request.
pub(crate) fn current() -> RequestTrace {
    TRACE.with(Cell::get)
}

fn update(change: impl FnOnce(&mut RequestTrace)) {
    TRACE.with(|trace| {
        let mut value = trace.get();
        change(&mut value);
        trace.set(value);
    });
}

pub(crate) fn opened_connection(failed: bool) {
    update(|trace| {
        trace.opened_connection = true;
        trace.connect_failed |= failed;
    });
}

/// Bytes read from a socket: the first two are kept.
pub(crate) fn received(bytes: &[u8]) {
    update(|trace| {
        if trace.first_bytes == [0, 0] && bytes.len() >= 2 {
            trace.first_bytes = [bytes[0], bytes[1]];
        }
    });
}

impl RequestTrace {
    /// The server's first bytes were plain HTTP.
    pub(crate) fn server_spoke_http(&self) -> bool {
        &self.first_bytes == b"HT"
    }

    /// The server's first bytes were a TLS record (an alert or a handshake).
    pub(crate) fn server_spoke_tls(&self) -> bool {
        matches!(self.first_bytes, [0x15 | 0x16, 0x03])
    }
}

pub(crate) fn answer_started() {
    update(|trace| trace.answer_started = true);
}
