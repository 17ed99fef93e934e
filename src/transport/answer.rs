//! An answer whose head has arrived, and its body: read whole (wiped as it
//! grows) or in pieces, from a direct connection or through ureq, with
//! every failure classified by cause.

use std::time::Duration;

use super::direct::DirectBody;
use super::exchange::ErrorContext;
use super::{RequestInProgress, Transport, classify};
use crate::error::Error;

/// Where an answer's body comes from.
pub(crate) enum BodySource {
    /// Through ureq (a proxied connection).
    Ureq(ureq::Body),
    /// Our own HTTP/1.1 on a direct connection.
    Direct(DirectBody),
}

/// An answer whose head has arrived; its body is read with
/// [`OpenAnswer::read_all`] or [`OpenAnswer::into_body`], or dropped unread
/// (which closes the connection unless the body was empty).
pub(crate) struct OpenAnswer<'t> {
    pub(super) transport: &'t Transport,
    pub(crate) status: u16,
    /// In the order received, names lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(super) body: BodySource,
    pub(super) named_timeout: Duration,
    pub(super) in_progress: RequestInProgress,
}

impl<'t> OpenAnswer<'t> {
    /// The first value of header `name` (lower case), if any.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body's length, when the server announced it.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// The body, of which at most `limit` bytes will be read.
    pub(crate) fn into_body(self, limit: u64) -> AnswerBody<'t> {
        let OpenAnswer {
            transport,
            status,
            body,
            named_timeout,
            in_progress,
            ..
        } = self;
        let reader = match body {
            BodySource::Ureq(body) => Reader::Ureq(body.into_with_config().limit(limit).reader()),
            BodySource::Direct(mut body) => {
                body.set_limit(limit);
                Reader::Direct(body)
            }
        };
        AnswerBody {
            transport,
            status,
            named_timeout,
            limit,
            reader,
            _in_progress: in_progress,
        }
    }

    /// Reads the whole body, at most `max_body` bytes.
    pub(crate) fn read_all(self, max_body: u64) -> Result<Vec<u8>, Error> {
        self.into_body(max_body).read_all()
    }
}

enum Reader {
    Ureq(ureq::BodyReader<'static>),
    Direct(DirectBody),
}

impl Reader {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, ureq::Error> {
        match self {
            Reader::Ureq(reader) => loop {
                match std::io::Read::read(reader, buffer) {
                    Ok(read) => return Ok(read),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ureq::Error::from(e)),
                }
            },
            Reader::Direct(body) => body.read(buffer),
        }
    }
}

/// Why [`AnswerBody::deliver_next`] stopped.
pub(crate) enum Delivery {
    /// Reading the body failed (the connection broke, ...).
    Read(Error),
    /// The output refused the bytes.
    Output(Error),
}

/// An answer's body being read; its failures are classified by cause.
pub(crate) struct AnswerBody<'t> {
    transport: &'t Transport,
    status: u16,
    named_timeout: Duration,
    limit: u64,
    reader: Reader,
    _in_progress: RequestInProgress,
}

impl AnswerBody<'_> {
    fn failure(&self, error: ureq::Error) -> Error {
        let context = ErrorContext {
            transport: self.transport,
            phase: classify::Phase::ResponseBody,
            named_timeout: self.named_timeout,
            deadline: None,
            body_limit: self.limit,
        };
        context.classify(error).with_http_status(self.status)
    }

    /// Reads the next bytes into `buffer`; 0 at the end of the body.
    pub(crate) fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        self.reader.read(buffer).map_err(|e| self.failure(e))
    }

    /// Hands the next bytes of the body to `deliver` (from the
    /// connection's own buffer when it can: no copy; else through
    /// `scratch`); 0 at the end.
    pub(crate) fn deliver_next(
        &mut self,
        scratch: &mut [u8],
        deliver: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<usize, Delivery> {
        let delivered = match &mut self.reader {
            Reader::Direct(body) => body.deliver(scratch, deliver),
            Reader::Ureq(_) => match self.reader.read(scratch) {
                Ok(0) => Ok(Ok(0)),
                Ok(read) => Ok(deliver(&scratch[..read]).map(|()| read)),
                Err(e) => Err(e),
            },
        };
        match delivered {
            Ok(Ok(read)) => Ok(read),
            Ok(Err(e)) => Err(Delivery::Output(e)),
            Err(e) => Err(Delivery::Read(self.failure(e))),
        }
    }

    /// Reads the rest of the body into a vector that is grown by hand, so
    /// that no part of the answer (it may hold a token) is left in freed
    /// memory.
    pub(crate) fn read_all(&mut self) -> Result<Vec<u8>, Error> {
        let reader = &mut self.reader;
        read_all_wiping(|buffer| reader.read(buffer)).map_err(|e| self.failure(e))
    }
}

/// Reads to the end into a vector that is grown by hand, so that no part
/// of the answer (it holds a token) is left in freed memory. It reads
/// straight into the vector (no intermediate buffer to copy from and
/// wipe), whose room is zeroed once when it is made (`read` wants
/// initialized bytes): every byte is zeroed at most once per size, so a
/// large answer read in small pieces costs no more than a small one per
/// byte. One byte of capacity is left for a NUL the C side may append.
fn read_all_wiping<E>(mut read: impl FnMut(&mut [u8]) -> Result<usize, E>) -> Result<Vec<u8>, E> {
    const FIRST_ROOM: usize = 1024;
    let mut body: Vec<u8> = Vec::with_capacity(FIRST_ROOM);
    body.resize(FIRST_ROOM - 1, 0);
    let mut filled = 0;
    let outcome = loop {
        if filled == body.len() {
            let room = body.len() * 2;
            let mut bigger = Vec::with_capacity(room + 1);
            bigger.extend_from_slice(&body);
            bigger.resize(room, 0);
            crate::secret::wipe(&mut body);
            body = bigger;
        }
        match read(&mut body[filled..]) {
            Ok(0) => break Ok(()),
            Ok(read) => filled += read,
            Err(e) => break Err(e),
        }
    };
    match outcome {
        Ok(()) => {
            // Past `filled` only zeros, unless a reader wrote more than it
            // said: wiped all the same.
            crate::secret::wipe(&mut body[filled..]);
            body.truncate(filled);
            Ok(body)
        }
        Err(e) => {
            crate::secret::wipe(&mut body);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_all_wiping;

    /// Gives `data` in pieces of at most `piece` bytes, then fails if told.
    struct Pieces<'a> {
        data: &'a [u8],
        piece: usize,
        fail_at_end: bool,
    }

    impl Pieces<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> Result<usize, &'static str> {
            if self.data.is_empty() && self.fail_at_end {
                return Err("cut");
            }
            let n = self.piece.min(buffer.len()).min(self.data.len());
            buffer[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn an_answer_read_in_pieces_arrives_whole_with_room_for_a_nul() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for (length, piece) in [(0, 1), (1022, 7), (1023, 1023), (1024, 5000), (100_000, 7)] {
            let mut pieces = Pieces {
                data: &data[..length],
                piece,
                fail_at_end: false,
            };
            let body = read_all_wiping(|buffer| pieces.read(buffer)).unwrap();
            assert_eq!(body, data[..length], "{length} bytes in pieces of {piece}");
            assert!(body.capacity() > body.len(), "room for the NUL");
        }
        let mut cut = Pieces {
            data: &data[..5000],
            piece: 100,
            fail_at_end: true,
        };
        assert!(read_all_wiping(|buffer| cut.read(buffer)).is_err());
    }
}
