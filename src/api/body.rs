//! A request's body and where its bytes come from: bytes in memory, a file
//! streamed as it is sent, or `multipart/form-data` parts (each bytes, a
//! file or a reader). Opened anew for each attempt, with its length known
//! before the first byte (never chunked), and fed to the signature only
//! when it is a JSON body (`signing::signs_body`).

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Sha256;
use sha2::digest::Update;

use super::file::SendFile;
use super::multipart;
use super::output::ProgressMeter;
use crate::error::{Error, ErrorKind};
use crate::transport::OutgoingBody;

/// A reader part's source: fills the start of the buffer, returns how
/// many bytes it wrote (0 at the end), or an error to stop the call.
pub(crate) type ReadFn = Arc<dyn Fn(&mut [u8]) -> std::io::Result<usize> + Send + Sync>;

/// A request's body, as the request object keeps it.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Bytes {
        content_type: String,
        bytes: Arc<[u8]>,
    },
    File {
        content_type: String,
        path: PathBuf,
    },
    Parts(Vec<Part>),
}

impl std::fmt::Debug for Body {
    // Lengths and kinds only: the bytes are the caller's data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes { bytes, .. } => write!(f, "Bytes({} bytes)", bytes.len()),
            Body::File { path, .. } => write!(f, "File({})", path.display()),
            Body::Parts(parts) => write!(f, "Parts({})", parts.len()),
        }
    }
}

/// One `multipart/form-data` part.
#[derive(Clone)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) file_name: Option<String>,
    /// `None`: a plain field, without a `Content-Type` line.
    pub(crate) content_type: Option<String>,
    pub(crate) source: PartSource,
}

#[derive(Clone)]
pub(crate) enum PartSource {
    Bytes(Arc<[u8]>),
    File(PathBuf),
    Reader { length: u64, read: ReadFn },
}

/// A body as one call sees it: borrowed from a request object, or from the
/// arguments of the one-line call.
#[derive(Clone, Copy)]
pub(crate) enum BodyView<'a> {
    Empty,
    Bytes {
        content_type: &'a str,
        bytes: &'a [u8],
    },
    File {
        content_type: &'a str,
        path: &'a Path,
    },
    Parts(&'a [Part]),
}

impl Body {
    pub(crate) fn view(&self) -> BodyView<'_> {
        match self {
            Body::Empty => BodyView::Empty,
            Body::Bytes {
                content_type,
                bytes,
            } => BodyView::Bytes {
                content_type,
                bytes,
            },
            Body::File { content_type, path } => BodyView::File { content_type, path },
            Body::Parts(parts) => BodyView::Parts(parts),
        }
    }
}

/// A body opened for one attempt.
pub(crate) struct OpenedBody<'a> {
    /// The `Content-Type` header, if any (multipart's carries its boundary).
    pub(crate) content_type: Option<String>,
    pub(crate) body: OutgoingBody<'a>,
}

impl<'a> BodyView<'a> {
    /// Whether the body can be made again for another send: a reader part
    /// cannot (its bytes are pulled from the caller as they are sent).
    pub(crate) fn replayable(&self) -> bool {
        match self {
            BodyView::Parts(parts) => parts
                .iter()
                .all(|p| !matches!(p.source, PartSource::Reader { .. })),
            _ => true,
        }
    }

    /// Whether bytes are streamed from a file or a reader as they are sent.
    pub(crate) fn streamed(&self) -> bool {
        match self {
            BodyView::File { .. } => true,
            BodyView::Parts(parts) => parts
                .iter()
                .any(|p| !matches!(p.source, PartSource::Bytes(_))),
            _ => false,
        }
    }

    /// Feeds the body to the signature when it is signed (a JSON body); a
    /// JSON file is read to be hashed.
    pub(crate) fn feed_signature(&self, hasher: &mut Sha256) -> Result<(), Error> {
        match *self {
            BodyView::Bytes {
                content_type,
                bytes,
            } if crate::signing::signs_body(content_type) => {
                hasher.update(bytes);
                Ok(())
            }
            BodyView::File { content_type, path } if crate::signing::signs_body(content_type) => {
                SendFile::open_as(path, ErrorKind::Io)?.read_each(|chunk| hasher.update(chunk))
            }
            _ => Ok(()),
        }
    }

    /// Opens the body for one attempt: files are opened (and checked) now;
    /// `meter` counts the bytes as they are sent. With `count_bytes`, even
    /// a body in memory is read through the meter (for progress reports).
    pub(crate) fn open(
        &self,
        meter: &'a ProgressMeter<'a>,
        count_bytes: bool,
    ) -> Result<OpenedBody<'a>, Error> {
        let (content_type, length, reader): (Option<String>, u64, Box<dyn Read + 'a>) = match *self
        {
            BodyView::Empty => {
                meter.set_send_total(0);
                return Ok(OpenedBody {
                    content_type: None,
                    body: OutgoingBody::Bytes(Cow::Borrowed(&[])),
                });
            }
            BodyView::Bytes {
                content_type,
                bytes,
            } => {
                meter.set_send_total(bytes.len() as u64);
                if !count_bytes {
                    meter.add_sent(bytes.len() as u64);
                    return Ok(OpenedBody {
                        content_type: Some(content_type.to_string()),
                        body: OutgoingBody::Bytes(Cow::Borrowed(bytes)),
                    });
                }
                (
                    Some(content_type.to_string()),
                    bytes.len() as u64,
                    Box::new(bytes),
                )
            }
            BodyView::File { content_type, path } => {
                let file = SendFile::open_as(path, ErrorKind::Io)?;
                (
                    Some(content_type.to_string()),
                    file.length,
                    Box::new(file.reader()),
                )
            }
            BodyView::Parts(parts) => {
                let opened = multipart::open(parts)?;
                (
                    Some(opened.content_type),
                    opened.length,
                    Box::new(opened.reader),
                )
            }
        };
        meter.set_send_total(length);
        Ok(OpenedBody {
            content_type,
            body: OutgoingBody::Stream {
                length,
                reader: Box::new(Metered {
                    inner: reader,
                    meter,
                }),
            },
        })
    }
}

/// Counts the bytes read from `inner` as sent.
struct Metered<'a> {
    inner: Box<dyn Read + 'a>,
    meter: &'a ProgressMeter<'a>,
}

impl Read for Metered<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.meter.add_sent(read as u64);
        Ok(read)
    }
}

/// `error` carried through the HTTP client, which passes `io::Error`s on.
pub(crate) fn source_error(error: Error) -> std::io::Error {
    error.into_io()
}

/// The library error inside an `io::Error` from a body source, if any.
pub(crate) fn error_in(error: &std::io::Error) -> Option<Error> {
    Error::carried_by(error)
}

/// Reads exactly `length` bytes from a reader part's callback; fewer, more,
/// or a callback error end the call before the part's last byte is sent.
pub(crate) struct ExactReader {
    name: String,
    read: ReadFn,
    length: u64,
    left: u64,
}

impl ExactReader {
    pub(crate) fn new(name: &str, length: u64, read: ReadFn) -> Self {
        ExactReader {
            name: name.to_string(),
            read,
            length,
            left: length,
        }
    }

    fn failed(&self, kind: ErrorKind, why: String) -> std::io::Error {
        source_error(Error::new(
            kind,
            format!("part \"{}\": {why}", self.name.escape_debug()),
        ))
    }

    /// Calls the callback, checking what it returns; never once the call is
    /// cancelled (its owner may be freeing what the callback uses).
    fn pull(&self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if crate::transport::is_cancelled() {
            return Err(self.failed(ErrorKind::Cancelled, "the call was cancelled".into()));
        }
        match (self.read)(buffer) {
            Ok(read) if read <= buffer.len() => Ok(read),
            Ok(read) => Err(self.failed(
                ErrorKind::InvalidArgument,
                format!(
                    "the read callback returned {read} for a buffer of {} bytes",
                    buffer.len()
                ),
            )),
            Err(e) => Err(self.failed(
                ErrorKind::Cancelled,
                format!(
                    "the read callback stopped the call after {} of {} bytes ({e})",
                    self.length - self.left,
                    self.length
                ),
            )),
        }
    }
}

impl Read for ExactReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let wanted = buffer
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.pull(&mut buffer[..wanted])?;
        if read == 0 {
            return Err(self.failed(
                ErrorKind::InvalidArgument,
                format!(
                    "the read callback ended after {} of the {} bytes declared",
                    self.length - self.left,
                    self.length
                ),
            ));
        }
        self.left -= read as u64;
        if self.left == 0 {
            // Before the last bytes go out: the source must end here.
            let mut probe = [0u8; 1];
            if self.pull(&mut probe)? != 0 {
                return Err(self.failed(
                    ErrorKind::InvalidArgument,
                    format!(
                        "the read callback gave more than the {} bytes declared",
                        self.length
                    ),
                ));
            }
        }
        Ok(read)
    }
}
