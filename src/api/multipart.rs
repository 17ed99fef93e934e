//! `multipart/form-data` bodies as EnOS checks them: a random boundary, and
//! every part with its `Content-Disposition`, its `Content-Type` (unless it
//! is a plain field) and its own `Content-Length` (required since EnOS
//! 2.1.0); the whole body's length computed before its first byte.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;

use super::body::{ExactReader, Part, PartSource};
use super::file::{FileReader, SendFile};
use crate::error::{Error, ErrorKind};

/// A multipart body opened for one attempt.
pub(crate) struct OpenedMultipart {
    /// `multipart/form-data; boundary=…`
    pub(crate) content_type: String,
    pub(crate) length: u64,
    pub(crate) reader: Segments,
}

/// A fresh random boundary: 32 hex digits after a fixed prefix, so that
/// no part's bytes are likely to contain it.
fn boundary() -> String {
    format!(
        "enos-token-{:016x}{:016x}",
        crate::time::random_u64(),
        crate::time::random_u64()
    )
}

/// A name or file name as quoted in `Content-Disposition`: `"` as `%22`,
/// as browsers send it (CR, LF and NUL were refused when the part was added).
fn quoted(text: &str) -> String {
    text.replace('"', "%22")
}

/// The head of one part, up to the blank line before its data.
pub(crate) fn part_head(boundary: &str, part: &Part, length: u64) -> String {
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
        quoted(&part.name)
    );
    if let Some(file_name) = &part.file_name {
        head.push_str(&format!("; filename=\"{}\"", quoted(file_name)));
    }
    head.push_str("\r\n");
    if let Some(content_type) = &part.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    head
}

/// Opens every part (files are opened and measured now) and lays the body
/// out.
pub(crate) fn open(parts: &[Part]) -> Result<OpenedMultipart, Error> {
    let boundary = boundary();
    let mut segments = VecDeque::with_capacity(parts.len() * 3 + 1);
    let mut length = 0u64;
    for part in parts {
        let (data, data_length) = match &part.source {
            PartSource::Bytes(bytes) => (Segment::Shared(bytes.clone()), bytes.len() as u64),
            PartSource::File(path) => {
                let file = SendFile::open_as(path, ErrorKind::Io)?;
                let file_length = file.length;
                (Segment::File(file.reader()), file_length)
            }
            PartSource::Reader { length, read } => (
                Segment::Reader(ExactReader::new(&part.name, *length, read.clone())),
                *length,
            ),
        };
        let head = part_head(&boundary, part, data_length);
        length = length
            .checked_add(head.len() as u64 + data_length + 2)
            .ok_or_else(|| Error::invalid_argument("the parts together are too long"))?;
        segments.push_back(Segment::Bytes(Cow::Owned(head.into_bytes())));
        segments.push_back(data);
        segments.push_back(Segment::Bytes(Cow::Borrowed(b"\r\n")));
    }
    let closing = format!("--{boundary}--\r\n");
    length += closing.len() as u64;
    segments.push_back(Segment::Bytes(Cow::Owned(closing.into_bytes())));
    Ok(OpenedMultipart {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        length,
        reader: Segments {
            segments,
            offset: 0,
        },
    })
}

/// One stretch of a multipart body.
pub(crate) enum Segment {
    Bytes(Cow<'static, [u8]>),
    /// A part's bytes, shared with the request object.
    Shared(std::sync::Arc<[u8]>),
    File(FileReader),
    Reader(ExactReader),
}

/// Reads the segments one after the other.
pub(crate) struct Segments {
    segments: VecDeque<Segment>,
    /// How far into the first segment, when it is bytes.
    offset: usize,
}

impl Segment {
    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Segment::Bytes(bytes) => Some(bytes),
            Segment::Shared(bytes) => Some(bytes),
            Segment::File(_) | Segment::Reader(_) => None,
        }
    }
}

impl Read for Segments {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while let Some(segment) = self.segments.front_mut() {
            let read = match segment.as_bytes() {
                Some(bytes) => {
                    let left = &bytes[self.offset..];
                    let read = left.len().min(buffer.len());
                    buffer[..read].copy_from_slice(&left[..read]);
                    self.offset += read;
                    read
                }
                None => match segment {
                    Segment::File(file) => file.read(buffer)?,
                    Segment::Reader(reader) => reader.read(buffer)?,
                    Segment::Bytes(_) | Segment::Shared(_) => 0,
                },
            };
            if read > 0 || buffer.is_empty() {
                return Ok(read);
            }
            self.segments.pop_front();
            self.offset = 0;
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn read_all(mut reader: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buffer = [0u8; 7]; // odd sizes cross every segment boundary
        loop {
            let n = reader.read(&mut buffer).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buffer[..n]);
        }
    }

    #[test]
    fn every_part_carries_its_own_length_and_the_total_is_exact() {
        let dir = std::env::temp_dir().join(format!("enos-multipart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("fw \"v2\".bin");
        std::fs::write(&file, vec![7u8; 1000]).unwrap();
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pulled = counter.clone();
        let parts = vec![
            Part {
                name: "enos-message".into(),
                file_name: None,
                content_type: Some("application/json".into()),
                source: PartSource::Bytes(Arc::from(&b"{\"a\":1}"[..])),
            },
            Part {
                name: "enos-file".into(),
                file_name: Some("fw \"v2\".bin".into()),
                content_type: Some("application/octet-stream".into()),
                source: PartSource::File(file.clone()),
            },
            Part {
                name: "note".into(),
                file_name: None,
                content_type: None,
                source: PartSource::Reader {
                    length: 5,
                    read: Arc::new(move |buffer: &mut [u8]| {
                        let at = pulled.load(std::sync::atomic::Ordering::SeqCst);
                        let data = b"hello";
                        let n = (data.len() - at).min(buffer.len());
                        buffer[..n].copy_from_slice(&data[at..at + n]);
                        pulled.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                        Ok(n)
                    }),
                },
            },
        ];
        let opened = open(&parts).unwrap();
        let boundary = opened
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
            .to_string();
        assert!(boundary.len() >= 40, "{boundary}");
        let length = opened.length;
        let body = read_all(opened.reader);
        assert_eq!(body.len() as u64, length, "Content-Length is exact");
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"enos-message\"\r\n\
             Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{{\"a\":1}}\r\n"
        )));
        assert!(text.contains(
            "Content-Disposition: form-data; name=\"enos-file\"; filename=\"fw %22v2%22.bin\"\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
        ));
        assert!(text.contains(
            "Content-Disposition: form-data; name=\"note\"\r\nContent-Length: 5\r\n\r\nhello\r\n"
        ));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_ne!(
            open(&parts[..1]).unwrap().content_type,
            format!("multipart/form-data; boundary={boundary}")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
