//! The request object (`Request`, `enos_request`): an API call described
//! piece by piece, each piece checked as it is set, so that a request that
//! exists can be sent. It is read-only while it is sent: one request may be
//! sent many times, from several threads at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::body::{Body, Part, PartSource, ReadFn};
use super::output::{Output, ProgressFn, WriteFn};
use crate::error::Error;

/// The content type of a body given without one: the common EnOS call.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";
/// The content type of a file given without one.
pub const BINARY_CONTENT_TYPE: &str = "application/octet-stream";

/// At most this many headers of the caller's on one request.
const MAX_HEADERS: usize = 100;
/// A header value, a part name or a file name is at most this long.
const MAX_TEXT_BYTES: usize = 8 * 1024;

/// An API call to make with [`crate::Client::send`]: method, path and
/// query, headers, a body (bytes, a file streamed as it is sent, or
/// `multipart/form-data` parts), where the answer goes (memory, a file
/// descriptor or a callback), progress reports and a time cap.
///
/// Every setter checks its arguments, with a message naming the argument
/// and the fix. `Send + Sync`: one request may be sent from several
/// threads at once (files are opened anew for each send).
#[derive(Clone)]
pub struct Request {
    pub(crate) method: String,
    /// Path and query, relative to the gateway URL.
    pub(crate) path: String,
    /// The caller's headers, in the order set (names as given).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Body,
    pub(crate) output: Output,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) timeout: Option<Duration>,
}

impl std::fmt::Debug for Request {
    // Not the header values or the body: they are the caller's data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &super::path_for_logs(&self.path))
            .field("headers", &self.headers.len())
            .field("body", &self.body)
            .field("output", &self.output)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `tchar` of RFC 9110: what a method or header name may hold.
pub(crate) fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Headers the library writes itself, or that would split or misframe the
/// request: never the caller's.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
    "expect",
];

impl Request {
    /// A request for `method` on `path` (path and query relative to the
    /// gateway URL, starting with one `/`), with no body, its answer kept
    /// in memory.
    pub fn new(method: &str, path: &str) -> Result<Request, Error> {
        check_method(method)?;
        check_path(path)?;
        Ok(Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Body::Empty,
            output: Output::Memory,
            progress: None,
            timeout: None,
        })
    }

    /// Sets header `name` to `value`, replacing a value set before under
    /// that name (any case); `None` removes it. Refused: the `apim-*`
    /// headers, `Host`, `Content-Length`, `Transfer-Encoding`,
    /// `Connection`, `Expect`, `Content-Type` (it comes with the body),
    /// names that are not HTTP tokens, values with CR, LF or NUL.
    pub fn header(&mut self, name: &str, value: Option<&str>) -> Result<&mut Self, Error> {
        check_header(name, value)?;
        self.headers
            .retain(|(set, _)| !set.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            if self.headers.len() >= MAX_HEADERS {
                return Err(Error::invalid_argument(format!(
                    "header {name}: at most {MAX_HEADERS} headers per request"
                )));
            }
            self.headers.push((name.to_string(), value.to_string()));
        }
        Ok(self)
    }

    /// The body: these bytes (copied), of `content_type` (`None`: JSON,
    /// `application/json;charset=UTF-8`). Replaces an earlier body.
    pub fn body(
        &mut self,
        content_type: Option<&str>,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, Error> {
        let content_type = checked_content_type(content_type, JSON_CONTENT_TYPE)?;
        self.no_parts("the body")?;
        self.check_body_allowed()?;
        self.body = Body::Bytes {
            content_type,
            bytes: Arc::from(bytes.into()),
        };
        Ok(self)
    }

    /// The body: the file at `path`, streamed when the request is sent with
    /// its length as `Content-Length`, of `content_type` (`None`:
    /// `application/octet-stream`). A JSON file is signed (read once to
    /// sign, once to send). The file must be a readable regular file now
    /// and when the request is sent.
    pub fn body_file(
        &mut self,
        content_type: Option<&str>,
        path: impl AsRef<Path>,
    ) -> Result<&mut Self, Error> {
        let content_type = checked_content_type(content_type, BINARY_CONTENT_TYPE)?;
        self.no_parts("the body file")?;
        self.check_body_allowed()?;
        let path = checked_file(path.as_ref())?;
        self.body = Body::File { content_type, path };
        Ok(self)
    }

    /// Adds a `multipart/form-data` part holding `data` (copied); with a
    /// `content_type` it carries that `Content-Type`, without one it is a
    /// plain text field.
    pub fn part(
        &mut self,
        name: &str,
        content_type: Option<&str>,
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, Error> {
        let content_type = content_type
            .map(|c| checked_content_type(Some(c), ""))
            .transpose()?;
        self.add_part(Part {
            name: checked_part_text(name, "part name")?,
            file_name: None,
            content_type,
            source: PartSource::Bytes(Arc::from(data.into())),
        })
    }

    /// Adds a file part: the file at `path`, streamed when the request is
    /// sent, named `file_name` in its `Content-Disposition` (`None`: the
    /// path's last component), of `content_type` (`None`:
    /// `application/octet-stream`).
    pub fn file_part(
        &mut self,
        name: &str,
        file_name: Option<&str>,
        content_type: Option<&str>,
        path: impl AsRef<Path>,
    ) -> Result<&mut Self, Error> {
        let path = checked_file(path.as_ref())?;
        let file_name = match file_name {
            Some(file_name) => checked_part_text(file_name, "file name")?,
            None => checked_part_text(
                &path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                "file name",
            )?,
        };
        self.add_part(Part {
            name: checked_part_text(name, "part name")?,
            file_name: Some(file_name),
            content_type: Some(checked_content_type(content_type, BINARY_CONTENT_TYPE)?),
            source: PartSource::File(path),
        })
    }

    /// Adds a part of exactly `length` bytes pulled from `read` as the
    /// request is sent: `read(buffer)` fills the start of `buffer` and
    /// returns how many bytes it wrote, 0 at the end, or an error to stop
    /// the call (`ErrorKind::Cancelled`). Fewer or more than `length`
    /// bytes end the call with an error. Each send pulls the bytes anew;
    /// a request with such a part is never sent twice by the library (a
    /// refused token is returned as the answer instead of renewed).
    pub fn reader_part(
        &mut self,
        name: &str,
        file_name: Option<&str>,
        content_type: Option<&str>,
        length: u64,
        read: impl Fn(&mut [u8]) -> std::io::Result<usize> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        self.reader_part_from(name, file_name, content_type, length, Arc::new(read))
    }

    pub(crate) fn reader_part_from(
        &mut self,
        name: &str,
        file_name: Option<&str>,
        content_type: Option<&str>,
        length: u64,
        read: ReadFn,
    ) -> Result<&mut Self, Error> {
        let content_type = content_type
            .map(|c| checked_content_type(Some(c), ""))
            .transpose()?;
        self.add_part(Part {
            name: checked_part_text(name, "part name")?,
            file_name: file_name
                .map(|f| checked_part_text(f, "file name"))
                .transpose()?,
            content_type,
            source: PartSource::Reader { length, read },
        })
    }

    /// Writes the answer's body, whatever its status, to the open file
    /// descriptor `fd` as it arrives (the response's body is then empty and
    /// no size limit applies). The library never closes `fd`.
    pub fn output_fd(&mut self, fd: std::os::fd::RawFd) -> Result<&mut Self, Error> {
        // SAFETY: F_GETFD only asks whether `fd` is open.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::invalid_argument(format!(
                "output fd {fd} is not an open file descriptor"
            )));
        }
        self.output = Output::Fd(fd);
        Ok(self)
    }

    /// Hands the answer's body, whatever its status, to `write` as it
    /// arrives (the response's body is then empty and no size limit
    /// applies); an error from `write` stops the call
    /// (`ErrorKind::Cancelled`).
    pub fn output_callback(
        &mut self,
        write: impl Fn(&[u8]) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        self.output = Output::Callback(Arc::new(write));
        self
    }

    pub(crate) fn output_from(&mut self, write: WriteFn) -> &mut Self {
        self.output = Output::Callback(write);
        self
    }

    /// Keeps the answer's body in the response (the default), up to the
    /// client's `max_response_bytes`.
    pub fn output_memory(&mut self) -> &mut Self {
        self.output = Output::Memory;
        self
    }

    /// Reports progress to `report` at most every 100 ms and once at the
    /// end, on the thread that sends: bytes sent and to send, bytes
    /// received and to receive (`None` when unknown).
    pub fn progress(
        &mut self,
        report: impl Fn(super::Progress) + Send + Sync + 'static,
    ) -> &mut Self {
        self.progress = Some(Arc::new(report));
        self
    }

    pub(crate) fn progress_from(&mut self, report: Option<ProgressFn>) -> &mut Self {
        self.progress = report;
        self
    }

    /// Caps the whole call, a streamed body and answer included, at
    /// `timeout` (`None`, the default: a call is bounded by the client's
    /// timeouts, a streamed transfer by its progress).
    pub fn timeout(&mut self, timeout: Option<Duration>) -> Result<&mut Self, Error> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_argument(
                "timeout must be at least 1 ms (0 or None: no cap)",
            ));
        }
        self.timeout = timeout;
        Ok(self)
    }

    fn no_parts(&self, what: &str) -> Result<(), Error> {
        if matches!(self.body, Body::Parts(_)) {
            return Err(Error::invalid_argument(format!(
                "{what} and multipart parts are exclusive: this request already has parts \
                 (a body is either one body or parts)"
            )));
        }
        Ok(())
    }

    fn check_body_allowed(&self) -> Result<(), Error> {
        if self.method == "HEAD" {
            return Err(Error::invalid_argument("a HEAD request has no body"));
        }
        Ok(())
    }

    fn add_part(&mut self, part: Part) -> Result<&mut Self, Error> {
        self.check_body_allowed()?;
        match &mut self.body {
            Body::Parts(parts) => parts.push(part),
            Body::Empty => self.body = Body::Parts(vec![part]),
            Body::Bytes { .. } | Body::File { .. } => {
                return Err(Error::invalid_argument(format!(
                    "part \"{}\" and a body are exclusive: this request already has a body \
                     (a body is either one body or parts)",
                    part.name.escape_debug()
                )));
            }
        }
        Ok(self)
    }
}

/// Checks a method name; the error names it and the fix.
pub(crate) fn check_method(method: &str) -> Result<(), Error> {
    if method.is_empty() || method.len() > 32 || !method.bytes().all(is_token_char) {
        return Err(Error::invalid_argument(format!(
            "method \"{}\" is not an HTTP method name (letters, such as GET or POST)",
            method.escape_debug().take(40).collect::<String>()
        )));
    }
    if matches!(method, "CONNECT" | "TRACE") {
        return Err(Error::invalid_argument(format!(
            "method {method} is not for API calls"
        )));
    }
    Ok(())
}

/// Checks a path and query: nothing in it may send the token elsewhere or
/// split the request.
pub(crate) fn check_path(path: &str) -> Result<(), Error> {
    let shown_path = || path.escape_debug().take(80).collect::<String>();
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(Error::invalid_argument(format!(
            "path \"{}\" must start with one / (a path and query relative to the gateway \
             URL, such as /asset-service/v2.1/assets?orgId=o1): absolute and \
             scheme-relative URLs are refused",
            shown_path()
        )));
    }
    if let Some(bad) = path.bytes().find(|b| !b.is_ascii_graphic() || *b == b'#') {
        let what = match bad {
            b'#' => "a fragment (#)",
            b' ' => "a space (percent-encode it as %20)",
            b if b.is_ascii_control() => "a control character (CR, LF, ...)",
            _ => "a non-ASCII character (percent-encode it)",
        };
        return Err(Error::invalid_argument(format!(
            "path \"{}\" holds {what}",
            shown_path()
        )));
    }
    // `.` and `..` segments (also percent-encoded) would be resolved by the
    // server or a proxy, out of the gateway URL's path prefix.
    let path_part = path.split('?').next().unwrap_or(path);
    if path_part.split('/').any(is_dot_segment) {
        return Err(Error::invalid_argument(format!(
            "path \"{}\" holds a . or .. segment (also as %2e), which would leave the gateway \
             URL's path: write the path it means",
            shown_path()
        )));
    }
    Ok(())
}

/// `.` or `..`, each dot possibly percent-encoded (`%2e`, `%2E`); no
/// allocation (this runs on every call).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// Checks a header the caller sets.
fn check_header(name: &str, value: Option<&str>) -> Result<(), Error> {
    let shown = name.escape_debug().take(60).collect::<String>();
    if name.is_empty() || name.len() > 256 || !name.bytes().all(is_token_char) {
        return Err(Error::invalid_argument(format!(
            "header name \"{shown}\" is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("apim-") {
        return Err(Error::invalid_argument(format!(
            "header {shown} is the library's own: the call is signed for you"
        )));
    }
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        let why = if lower == "content-type" {
            "it comes with the body (give it to the body or part setter)"
        } else {
            "the library writes it from the request itself"
        };
        return Err(Error::invalid_argument(format!(
            "header {shown} cannot be set: {why}"
        )));
    }
    if let Some(value) = value {
        if value.len() > MAX_TEXT_BYTES {
            return Err(Error::invalid_argument(format!(
                "header {shown}: value over {MAX_TEXT_BYTES} bytes"
            )));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Error::invalid_argument(format!(
                "header {shown}: value holds CR, LF or NUL, which would split the request"
            )));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Error::invalid_argument(format!(
                "header {shown}: value holds a control character"
            )));
        }
    }
    Ok(())
}

/// A content type as given, or `default` for `None`.
pub(crate) fn checked_content_type(
    content_type: Option<&str>,
    default: &str,
) -> Result<String, Error> {
    let Some(content_type) = content_type else {
        return Ok(default.to_string());
    };
    let visible = |b: u8| b == b' ' || b == b'\t' || b.is_ascii_graphic();
    if content_type.is_empty() || content_type.len() > 256 || !content_type.bytes().all(visible) {
        return Err(Error::invalid_argument(
            "content_type must be 1-256 visible ASCII characters (no CR or LF)",
        ));
    }
    Ok(content_type.to_string())
}

/// A part's name or file name: quoted in `Content-Disposition`, so no CR,
/// LF or NUL (a `"` is sent as `%22`, as browsers do).
fn checked_part_text(text: &str, what: &str) -> Result<String, Error> {
    if text.is_empty() {
        return Err(Error::invalid_argument(format!("{what} is empty")));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::invalid_argument(format!(
            "{what} is over {MAX_TEXT_BYTES} bytes"
        )));
    }
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::invalid_argument(format!(
            "{what} \"{}\" holds CR, LF or NUL",
            text.escape_debug().take(60).collect::<String>()
        )));
    }
    Ok(text.to_string())
}

/// A file to send: it must exist and be a readable regular file.
fn checked_file(path: &Path) -> Result<PathBuf, Error> {
    super::file::SendFile::open(path)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_could_send_the_token_elsewhere_or_split_the_request_is_refused() {
        assert!(Request::new("GET", "/a/b?orgId=o1&x=%20").is_ok());
        assert!(Request::new("PROPFIND", "/").is_ok());
        for (method, path) in [
            ("GET", "http://evil.example/a"),
            ("GET", "//evil.example/a"),
            ("GET", "a/b"),
            ("GET", ""),
            ("GET", "/a\r\nX-Injected: 1"),
            ("GET", "/a b"),
            ("GET", "/caf\u{e9}"),
            ("GET", "/a#frag"),
            ("GE T", "/a"),
            ("GET\r\n", "/a"),
            ("", "/a"),
            ("CONNECT", "/a"),
        ] {
            let error = Request::new(method, path).unwrap_err();
            assert_eq!(
                error.kind(),
                crate::ErrorKind::InvalidArgument,
                "{method} {path}"
            );
        }
        let mut head = Request::new("HEAD", "/a").unwrap();
        assert!(head.body(None, b"x".to_vec()).is_err());
    }

    #[test]
    fn dot_segments_that_would_leave_the_gateway_prefix_are_refused() {
        for path in [
            "/../ok",
            "/pfx/../../ok",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a/%2E./b",
            "/a/.%2e",
            "/a/%2e?x=1",
            "/a/..",
        ] {
            let error = Request::new("GET", path).unwrap_err();
            assert!(
                error.message().contains(". or .. segment") && error.message().contains(path),
                "{path}: {error}"
            );
        }
        for path in [
            "/a/..b/c",
            "/a/.hidden",
            "/a/b?up=..&x=%2e%2e",
            "/a...",
            "/a/%2e%2e%2e",
        ] {
            assert!(Request::new("GET", path).is_ok(), "{path}");
        }
    }

    #[test]
    fn headers_that_would_misframe_or_unsign_the_request_are_refused() {
        let mut request = Request::new("GET", "/a").unwrap();
        for name in [
            "apim-accesstoken",
            "APIM-Signature",
            "apim-timestamp",
            "Host",
            "content-length",
            "Transfer-Encoding",
            "Connection",
            "Content-Type",
            "Expect",
            "bad name",
            "bad:name",
            "",
            "caf\u{e9}",
        ] {
            let error = request.header(name, Some("v")).unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument, "{name}");
        }
        for value in ["a\r\nX-Injected: 1", "a\nb", "a\0b"] {
            let error = request.header("X-Ok", Some(value)).unwrap_err();
            assert!(error.message().contains("CR, LF or NUL"), "{error}");
        }
        request.header("Range", Some("bytes=0-9")).unwrap();
        request.header("range", Some("bytes=10-")).unwrap();
        request.header("Accept", Some("*/*")).unwrap();
        assert_eq!(
            request.headers,
            vec![
                ("range".to_string(), "bytes=10-".to_string()),
                ("Accept".to_string(), "*/*".to_string())
            ],
            "a name set again replaces its value"
        );
        request.header("RANGE", None).unwrap();
        assert_eq!(request.headers.len(), 1, "None removes");
    }

    #[test]
    fn a_body_and_parts_are_exclusive_and_the_message_names_both() {
        let mut request = Request::new("POST", "/a").unwrap();
        request.part("enos-message", None, b"{}".to_vec()).unwrap();
        let error = request.body(None, b"{}".to_vec()).unwrap_err();
        assert!(
            error.message().contains("body") && error.message().contains("parts"),
            "{error}"
        );
        let mut request = Request::new("POST", "/a").unwrap();
        request.body(None, b"{}".to_vec()).unwrap();
        let error = request
            .part("enos-message", None, b"{}".to_vec())
            .unwrap_err();
        assert!(
            error.message().contains("enos-message") && error.message().contains("body"),
            "{error}"
        );
    }

    #[test]
    fn missing_unreadable_and_directory_files_are_named() {
        let mut request = Request::new("POST", "/a").unwrap();
        let error = request
            .body_file(None, "/nonexistent/firmware.bin")
            .unwrap_err();
        assert!(
            error.message().contains("/nonexistent/firmware.bin"),
            "{error}"
        );
        let error = request
            .file_part("enos-file", None, None, std::env::temp_dir())
            .unwrap_err();
        assert!(error.message().contains("directory"), "{error}");
        let error = request.part("a\r\nb", None, b"x".to_vec()).unwrap_err();
        assert!(error.message().contains("CR, LF or NUL"), "{error}");
    }
}
