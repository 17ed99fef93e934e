//! A file sent as a body or a part: opened and checked before a byte is
//! sent, read as it is sent, and refused the moment it changes size, so
//! that a file that changes during an upload ends the call instead of
//! arriving corrupt or short.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::body::source_error;
use crate::error::{Error, ErrorKind};

/// An open, regular, readable file and what it looked like when opened.
pub(crate) struct SendFile {
    file: File,
    /// Its path as given, for messages.
    shown: String,
    pub(crate) length: u64,
    modified_ns: i64,
}

impl SendFile {
    /// Opens `path`; a missing, unreadable or non-regular file is an error
    /// naming the path (`ErrorKind::InvalidArgument`).
    pub(crate) fn open(path: &Path) -> Result<SendFile, Error> {
        Self::open_as(path, ErrorKind::InvalidArgument)
    }

    /// As [`SendFile::open`], failures of `kind` (`ErrorKind::Io` once the
    /// request exists: the file was fine when it was given).
    pub(crate) fn open_as(path: &Path, kind: ErrorKind) -> Result<SendFile, Error> {
        let shown = path.display().to_string();
        let failed = |why: String| Error::new(kind, format!("file {shown}: {why}"));
        let file = File::open(path).map_err(|e| failed(describe(&e)))?;
        let metadata = file.metadata().map_err(|e| failed(describe(&e)))?;
        if metadata.is_dir() {
            return Err(failed("is a directory, not a file".into()));
        }
        if !metadata.is_file() {
            return Err(failed(
                "is not a regular file (a pipe or device has no length to send)".into(),
            ));
        }
        Ok(SendFile {
            file,
            shown,
            length: metadata.len(),
            modified_ns: modified_ns(&metadata),
        })
    }

    /// A reader of exactly the file's length at opening.
    pub(crate) fn reader(self) -> FileReader {
        FileReader {
            left: self.length,
            file: self,
        }
    }

    /// The file's bytes, read in chunks (for a JSON file, which is signed).
    pub(crate) fn read_each(self, mut take: impl FnMut(&[u8])) -> Result<(), Error> {
        let mut reader = self.reader();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = reader.read(&mut chunk).map_err(|e| {
                super::body::error_in(&e)
                    .unwrap_or_else(|| Error::new(ErrorKind::Io, e.to_string()))
            })?;
            if read == 0 {
                return Ok(());
            }
            take(&chunk[..read]);
        }
    }
}

fn modified_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime_nsec())
}

/// An I/O error in words, without Rust's `(os error N)` noise.
fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied (not readable)".into(),
        _ => error.to_string(),
    }
}

/// Reads exactly the length the file had when opened; a file that ends
/// early, grows or is rewritten is an error before its last byte is given
/// out.
pub(crate) struct FileReader {
    file: SendFile,
    left: u64,
}

impl FileReader {
    fn changed(&self, how: &str) -> std::io::Error {
        source_error(Error::new(
            ErrorKind::Io,
            format!(
                "file {} {how} while it was sent: the upload was stopped, nothing \
                 incomplete was accepted; send it again once it is no longer written to",
                self.file.shown
            ),
        ))
    }
}

impl Read for FileReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let wanted = buffer
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = loop {
            match self.file.file.read(&mut buffer[..wanted]) {
                Ok(read) => break read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(source_error(Error::new(
                        ErrorKind::Io,
                        format!("file {}: read failed: {e}", self.file.shown),
                    )));
                }
            }
        };
        if read == 0 {
            return Err(self.changed("shrank"));
        }
        self.left -= read as u64;
        if self.left == 0 {
            // Before the last bytes go out: the same size and time as at opening.
            let metadata = self.file.file.metadata()?;
            if metadata.len() != self.file.length {
                return Err(self.changed(if metadata.len() > self.file.length {
                    "grew"
                } else {
                    "shrank"
                }));
            }
            if modified_ns(&metadata) != self.file.modified_ns {
                return Err(self.changed("was rewritten"));
            }
        }
        Ok(read)
    }
}
