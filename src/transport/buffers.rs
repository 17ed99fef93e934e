//! A connection's input and output buffers, zeroed as they are done with.
//!
//! They hold every request and answer of the connection: Refresh bodies and
//! token answers, API calls with their `apim-accesstoken` header. ureq's own
//! `LazyBuffers` frees them (and moves input around) without zeroing; these
//! zero what was consumed, what a compaction or a growth leaves behind, and
//! everything when the connection is dropped.
//!
//! Consumed input is zeroed at once, with one exception. On a connection
//! our own HTTP/1.1 drives (`direct/`; it says so, and that an exchange
//! has ended, by consuming nothing from an empty buffer), a fill of more
//! than [`WIPE_AT_ONCE`] bytes (a download passing through) is zeroed when
//! the next read has put new bytes over it (the part they did not cover),
//! when the exchange ends, or when the connection is dropped: zeroing every
//! byte of a download as it passed cost a tenth of its time. ureq (through
//! a proxy) gives no end of an exchange, so its connections never defer.

use ureq::unversioned::transport::Buffers;

use crate::secret::wipe;

/// Room the request body reader needs (as ureq's `LazyBuffers` gives it).
const MIN_TMP_SIZE: usize = 10 * 1024;
/// Consumed input up to this size is zeroed at once (see the module).
const WIPE_AT_ONCE: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct WipingBuffers {
    input_size: usize,
    output_size: usize,
    input: Vec<u8>,
    /// `input[consumed..filled]` is unconsumed.
    consumed: usize,
    filled: usize,
    /// `input[filled..dirty]` may hold consumed bytes not zeroed yet.
    dirty: usize,
    /// Large fills may be zeroed later (see the module).
    deferring: bool,
    output: Vec<u8>,
    /// The last `input_consume` consumed something.
    progress: bool,
}

impl WipingBuffers {
    /// Buffers of these sizes, allocated when first needed.
    pub(crate) fn new(input_size: usize, output_size: usize) -> Self {
        WipingBuffers {
            input_size: input_size.max(1),
            output_size: output_size.max(1),
            input: Vec::new(),
            consumed: 0,
            filled: 0,
            dirty: 0,
            deferring: false,
            output: Vec::new(),
            progress: false,
        }
    }

    /// Moves the unconsumed input to the front, zeroing what it leaves.
    fn compact(&mut self) {
        if self.consumed == 0 {
            return;
        }
        let unconsumed = self.filled - self.consumed;
        self.input.copy_within(self.consumed..self.filled, 0);
        wipe(&mut self.input[unconsumed..self.filled.max(self.dirty)]);
        self.consumed = 0;
        self.filled = unconsumed;
        self.dirty = unconsumed;
    }

    /// Makes the input buffer `length` bytes long, zeroing the old one.
    fn grow_input(&mut self, length: usize) {
        let mut bigger = vec![0u8; length];
        bigger[..self.filled].copy_from_slice(&self.input[..self.filled]);
        wipe(&mut self.input);
        self.input = bigger;
        self.dirty = self.filled;
    }

    /// Zeroes consumed bytes not zeroed yet.
    fn wipe_dirty(&mut self) {
        wipe(&mut self.input[self.filled..self.dirty.max(self.filled)]);
        self.dirty = self.filled;
    }

    fn ensure_allocation(&mut self) {
        if self.output.len() < self.output_size {
            let mut bigger = vec![0u8; self.output_size];
            bigger[..self.output.len()].copy_from_slice(&self.output);
            wipe(&mut self.output);
            self.output = bigger;
        }
        self.compact();
        if self.input.len() < self.input_size {
            self.grow_input(self.input_size);
        }
    }
}

impl Buffers for WipingBuffers {
    fn output(&mut self) -> &mut [u8] {
        self.ensure_allocation();
        &mut self.output
    }

    fn input(&self) -> &[u8] {
        &self.input[self.consumed..self.filled]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.ensure_allocation();
        &mut self.input[self.filled..]
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.ensure_allocation();
        let free = self.input.len() - self.filled;
        if free < MIN_TMP_SIZE {
            self.grow_input(self.filled + MIN_TMP_SIZE);
        }
        (&mut self.input[self.filled..], &mut self.output)
    }

    fn input_appended(&mut self, amount: usize) {
        self.filled = (self.filled + amount).min(self.input.len());
        // What the new bytes did not cover of an earlier fill.
        self.wipe_dirty();
    }

    fn input_consume(&mut self, amount: usize) {
        self.progress = amount > 0;
        self.consumed = (self.consumed + amount).min(self.filled);
        if self.consumed == self.filled {
            self.dirty = self.dirty.max(self.filled);
            self.consumed = 0;
            self.filled = 0;
            if amount == 0 {
                self.deferring = true; // our exchange: an exchange ended
            }
            if amount == 0 || !self.deferring || self.dirty <= WIPE_AT_ONCE {
                self.wipe_dirty();
            }
        }
    }

    fn can_use_input(&self) -> bool {
        self.consumed < self.filled && self.progress
    }
}

impl Drop for WipingBuffers {
    fn drop(&mut self) {
        wipe(&mut self.input);
        wipe(&mut self.output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_kept_in_order_and_zeroed_once_consumed() {
        let mut buffers = WipingBuffers::new(8, 8);
        buffers.input_append_buf()[..6].copy_from_slice(b"secret");
        buffers.input_appended(6);
        assert_eq!(buffers.input(), b"secret");
        buffers.input_consume(2);
        assert!(buffers.can_use_input());
        assert_eq!(buffers.input(), b"cret");
        // Compaction moves "cret" to the front and zeroes the rest.
        buffers.input_append_buf()[..2].copy_from_slice(b"XY");
        buffers.input_appended(2);
        assert_eq!(buffers.input(), b"cretXY");
        assert_eq!(&buffers.input[6..], &[0, 0]);
        buffers.input_consume(6);
        assert!(buffers.input.iter().all(|&b| b == 0), "{:?}", buffers.input);
        assert!(!buffers.can_use_input());
        let (tmp, output) = buffers.tmp_and_output();
        assert!(tmp.len() >= MIN_TMP_SIZE && output.len() == 8);
    }

    #[test]
    fn a_large_fill_is_zeroed_by_the_next_fill_or_at_the_end_of_the_exchange() {
        let size = 4 * WIPE_AT_ONCE;
        let mut buffers = WipingBuffers::new(size, 8);
        // Driven by ureq: every consumed fill is zeroed at once.
        buffers.input_append_buf().fill(b'a');
        buffers.input_appended(size);
        buffers.input_consume(size);
        assert!(buffers.input.iter().all(|&b| b == 0));
        // Driven by our exchange (it says so): large fills are deferred.
        buffers.input_consume(0);
        buffers.input_append_buf().fill(b'a');
        buffers.input_appended(size);
        buffers.input_consume(size);
        assert!(
            buffers.input.iter().all(|&b| b == b'a'),
            "not zeroed as it passes"
        );
        // A shorter fill: what it did not cover is zeroed when it arrives.
        buffers.input_append_buf()[..10].fill(b'b');
        buffers.input_appended(10);
        assert_eq!(buffers.input(), [b'b'; 10]);
        assert!(buffers.input[10..].iter().all(|&b| b == 0));
        // A small consumed fill is zeroed at once.
        buffers.input_consume(10);
        assert!(buffers.input.iter().all(|&b| b == 0));
        // Another large one, then the end of the exchange.
        buffers.input_append_buf().fill(b'c');
        buffers.input_appended(size);
        buffers.input_consume(size);
        assert!(buffers.input.contains(&b'c'));
        buffers.input_consume(0);
        assert!(
            buffers.input.iter().all(|&b| b == 0),
            "zeroed when the exchange ends"
        );
    }
}
