//! A small HTTP/1.1 server for the fake gateway: keep-alive, `Content-Length`
//! bodies, one thread per connection, plain TCP or TLS. Small enough to
//! misbehave on purpose (see [`super::Fault`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

/// Request heads larger than this are refused with 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Request bodies larger than this are refused with 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query after `?`, or empty.
    pub query: String,
    pub version: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, read whole (empty while `body_unread` is set).
    pub body: Vec<u8>,
    /// The body's declared length.
    pub body_length: u64,
    /// The body is still on the connection, to be streamed by the endpoint
    /// (a file upload).
    pub body_unread: bool,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection should stay open after the answer.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (or went idle) between requests.
    Closed,
    /// The request was malformed or too large: answer with this status.
    Reject(u16, &'static str),
    /// The connection failed while reading.
    Broken,
}

/// Reads one request from `reader`, its body whole.
#[cfg(test)]
pub fn read_request<R: BufRead>(reader: &mut R) -> Result<Request, ReadError> {
    let mut request = read_head(reader)?;
    read_body(reader, &mut request)?;
    Ok(request)
}

/// Reads the body of `request` whole (at most 1 MiB).
pub fn read_body<R: BufRead>(reader: &mut R, request: &mut Request) -> Result<(), ReadError> {
    if request.body_length > MAX_BODY_BYTES as u64 {
        return Err(ReadError::Reject(413, "request body too large"));
    }
    request.body = vec![0; request.body_length as usize];
    reader
        .read_exact(&mut request.body)
        .map_err(|_| ReadError::Broken)?;
    request.body_unread = false;
    Ok(())
}

/// Reads one request's head from `reader`, leaving its body unread.
pub fn read_head<R: BufRead>(reader: &mut R) -> Result<Request, ReadError> {
    // A TLS ClientHello on this plain port: answer 400 at once, as web
    // servers do, instead of waiting for a line that never ends.
    if reader
        .fill_buf()
        .is_ok_and(|bytes| bytes.first() == Some(&0x16))
    {
        return Err(ReadError::Reject(400, "TLS handshake on a plain HTTP port"));
    }
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .take((MAX_HEAD_BYTES + 1 - head.len().min(MAX_HEAD_BYTES)) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if head.is_empty() => {
                    ReadError::Closed
                }
                _ => ReadError::Broken,
            })?;
        if n == 0 {
            return Err(if head.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Reject(400, "incomplete request head")
            });
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Reject(431, "request head too large"));
        }
        if line == b"\r\n" || line == b"\n" {
            if head.len() == line.len() {
                head.clear(); // tolerate empty lines before a request
                continue;
            }
            break;
        }
    }
    let head = String::from_utf8(head).map_err(|_| ReadError::Reject(400, "head is not UTF-8"))?;
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Reject(400, "bad request line"));
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Reject(400, "bad header line"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
        body_length: 0,
        body_unread: true,
    };
    if request.header("transfer-encoding").is_some() {
        return Err(ReadError::Reject(
            501,
            "chunked request bodies are not supported",
        ));
    }
    request.body_length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ReadError::Reject(400, "bad content-length"))?,
    };
    Ok(request)
}

/// Reads and drops `length` bytes of a body nobody wants.
pub fn discard<R: Read>(reader: &mut R, length: u64) -> io::Result<()> {
    let copied = io::copy(&mut reader.take(length), &mut io::sink())?;
    if copied < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// An answer to write.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub extra_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Answer {
            status,
            content_type: "application/json;charset=UTF-8",
            extra_headers: Vec::new(),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Answer {
            status,
            content_type,
            extra_headers: Vec::new(),
            body: body.into(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        429 => "Too Many Requests",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The status line and headers of `answer`, announcing `content_length`.
pub fn head_bytes(answer: &Answer, content_length: u64, keep_alive: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        answer.status,
        reason(answer.status),
        answer.content_type,
        content_length,
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &answer.extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes `answer` in one write.
pub fn write_answer<W: Write>(writer: &mut W, answer: &Answer, keep_alive: bool) -> io::Result<()> {
    let mut bytes = head_bytes(answer, answer.body.len() as u64, keep_alive);
    bytes.extend_from_slice(&answer.body);
    writer.write_all(&bytes)?;
    writer.flush()
}

/// Wraps a stream for request reading with a per-read idle timeout.
pub fn buffered<S: Read>(stream: S) -> BufReader<S> {
    BufReader::with_capacity(16 * 1024, stream)
}

/// Idle time after which a kept-alive connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_with_body_and_query() {
        let raw =
            b"POST /gw/x?b=2&a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: v\r\n\r\nabcGET";
        let mut reader = io::Cursor::new(&raw[..]);
        let request = read_request(&mut reader).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/gw/x");
        assert_eq!(request.query, "b=2&a=1");
        assert_eq!(request.header("x-a"), Some("v"));
        assert_eq!(request.body, b"abc");
        assert!(request.keep_alive());
        assert!(matches!(
            read_request(&mut io::Cursor::new(&b"GET"[..])),
            Err(ReadError::Reject(400, _))
        ));
        assert!(matches!(
            read_request(&mut io::Cursor::new(&b""[..])),
            Err(ReadError::Closed)
        ));
    }
}
