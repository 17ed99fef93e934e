//! HTTP/1.1 on the wire, without I/O: the request head we write, the
//! response head we parse, and how the response body is delimited
//! (RFC 9112). Every function works on byte slices, so that a hostile
//! answer (lying lengths, endless headers, malformed chunks) is tested
//! without a socket.

use std::fmt::Write as _;

mod chunked;
pub(crate) use chunked::Chunked;

/// A response head, parsed.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// In the order received, names lower case; each string has room for
    /// one more byte (a NUL the C side appends).
    pub(crate) headers: Vec<(String, String)>,
    /// HTTP/1.0: the connection closes after the answer unless it says
    /// `keep-alive`.
    pub(crate) http10: bool,
}

/// More header lines than this are refused (each is two allocations).
pub(crate) const MAX_HEADERS: usize = 256;

/// Why an answer cannot be read as HTTP/1.1.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The head is not HTTP (the message says what was wrong).
    Head(&'static str),
    /// The head is larger than the limit.
    HeadTooLarge,
    /// The body's framing is broken (the message says how).
    Body(&'static str),
}

/// The request head: request line, `Host`, then `headers` in order, then
/// `Content-Length` when `content_length` is given. Names and values were
/// checked by the caller (no CR, LF or NUL).
pub(crate) fn write_head<'h>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: impl Iterator<Item = (&'h str, &'h str)>,
    content_length: Option<u64>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(length) = content_length {
        let mut digits = String::with_capacity(20);
        let _ = write!(digits, "{length}");
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(digits.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A copy of `text` (invalid UTF-8 replaced) with room for one more byte:
/// the C side turns it into a C string (a NUL appended) without
/// reallocating.
pub(crate) fn c_ready(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut copy = String::with_capacity(text.len() + 1);
    copy.push_str(&text);
    copy
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Splits off the next line (without its `\r\n` or `\n`), or `None` when
/// `input` holds no complete line.
fn next_line(input: &[u8]) -> Option<(&[u8], usize)> {
    let end = input.iter().position(|&b| b == b'\n')?;
    let line = &input[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, end + 1))
}

/// Parses a response head at the start of `input`: `Ok(None)` while it is
/// incomplete (and within `max_bytes`), else the head and the bytes it took.
pub(crate) fn parse_head(
    input: &[u8],
    max_bytes: usize,
) -> Result<Option<(Head, usize)>, Malformed> {
    let window = &input[..input.len().min(max_bytes)];
    let Some((status_line, mut used)) = next_line(window) else {
        return incomplete(input, max_bytes);
    };
    let (status, http10) = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    loop {
        let Some((line, length)) = next_line(&window[used..]) else {
            return incomplete(input, max_bytes);
        };
        used += length;
        if line.is_empty() {
            return Ok(Some((
                Head {
                    status,
                    headers,
                    http10,
                },
                used,
            )));
        }
        if headers.len() == MAX_HEADERS {
            return Err(Malformed::Head("too many headers (over 256)"));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(Malformed::Head("a folded header line"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Malformed::Head("a header line without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(Malformed::Head("a header name that is not a token"));
        }
        if value.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(Malformed::Head("a header value with a control character"));
        }
        let value = value.trim_ascii();
        let mut name = c_ready(name);
        name.make_ascii_lowercase();
        headers.push((name, c_ready(value)));
    }
}

fn incomplete(input: &[u8], max_bytes: usize) -> Result<Option<(Head, usize)>, Malformed> {
    if input.len() >= max_bytes {
        Err(Malformed::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// `HTTP/1.x NNN reason`: the status, and whether it is HTTP/1.0.
fn parse_status_line(line: &[u8]) -> Result<(u16, bool), Malformed> {
    let http10 = match line.get(..9) {
        Some(b"HTTP/1.1 ") => false,
        Some(b"HTTP/1.0 ") => true,
        _ => return Err(Malformed::Head("not an HTTP/1.x status line")),
    };
    let digits = line
        .get(9..12)
        .filter(|digits| digits.iter().all(u8::is_ascii_digit))
        .ok_or(Malformed::Head("a status that is not three digits"))?;
    if line.len() > 12 && line[12] != b' ' {
        return Err(Malformed::Head("a status that is not three digits"));
    }
    let status = digits
        .iter()
        .fold(0u16, |status, digit| status * 10 + u16::from(digit - b'0'));
    if status < 100 {
        return Err(Malformed::Head("a status below 100"));
    }
    Ok((status, http10))
}

impl Head {
    /// The values of header `name` (lower case), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether a `Connection` header lists `option`.
    fn connection_has(&self, option: &str) -> bool {
        self.values("connection")
            .flat_map(|value| value.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(option))
    }

    /// How the body is delimited, for an answer to `method`, and whether
    /// the connection can carry another request after it.
    pub(crate) fn framing(&self, method: &str) -> Result<(Framing, bool), Malformed> {
        let mut reusable = if self.http10 {
            self.connection_has("keep-alive")
        } else {
            !self.connection_has("close")
        };
        if method.eq_ignore_ascii_case("HEAD") || matches!(self.status, 204 | 304) {
            return Ok((Framing::Length(0), reusable));
        }
        let codings: Vec<&str> = self
            .values("transfer-encoding")
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|coding| !coding.is_empty())
            .collect();
        if let Some(last) = codings.last() {
            if !last.eq_ignore_ascii_case("chunked") || codings.len() > 1 {
                // Not ours to decode: the caller refuses it with its name.
                return Err(Malformed::Body("a transfer coding other than chunked"));
            }
            // With a Content-Length as well, the chunks decide, and the
            // connection is not trusted with another request (RFC 9112 6.3).
            let both = self.values("content-length").next().is_some();
            return Ok((Framing::Chunked(Chunked::default()), reusable && !both));
        }
        let mut length = None;
        for value in self.values("content-length").flat_map(|v| v.split(',')) {
            let value = value.trim();
            if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Malformed::Body("a Content-Length that is not a number"));
            }
            let parsed: u64 = value
                .parse()
                .map_err(|_| Malformed::Body("a Content-Length that is not a number"))?;
            if length.is_some_and(|known| known != parsed) {
                return Err(Malformed::Body("two different Content-Length values"));
            }
            length = Some(parsed);
        }
        match length {
            Some(length) => Ok((Framing::Length(length), reusable)),
            None => {
                reusable = false;
                Ok((Framing::UntilClose, reusable))
            }
        }
    }
}

/// How a response body ends.
#[derive(Debug)]
pub(crate) enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// With the last chunk (and its trailers).
    Chunked(Chunked),
    /// When the server closes the connection.
    UntilClose,
}

impl Framing {
    /// Whether the body has ended.
    pub(crate) fn is_done(&self) -> bool {
        match self {
            Framing::Length(left) => *left == 0,
            Framing::Chunked(chunked) => chunked.is_done(),
            Framing::UntilClose => false,
        }
    }

    /// Takes body bytes from `input` into `output`: (bytes of `input`
    /// used, bytes written to `output`). Bytes after the body's end are
    /// left in `input`.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), Malformed> {
        match self {
            Framing::Length(left) => {
                let take = input
                    .len()
                    .min(output.len())
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                output[..take].copy_from_slice(&input[..take]);
                *left -= take as u64;
                Ok((take, take))
            }
            Framing::UntilClose => {
                let take = input.len().min(output.len());
                output[..take].copy_from_slice(&input[..take]);
                Ok((take, take))
            }
            Framing::Chunked(chunked) => chunked.decode(input, output),
        }
    }

    /// How many of `available` input bytes are body (a length or until
    /// the connection closes; not chunks, which are decoded), counted as
    /// taken.
    pub(crate) fn take(&mut self, available: usize) -> usize {
        match self {
            Framing::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(available);
                *left -= take as u64;
                take
            }
            Framing::UntilClose => available,
            Framing::Chunked(_) => 0,
        }
    }

    /// The connection ended (no more input): fine only for a body that
    /// ends with it, or one that has ended.
    pub(crate) fn at_end_of_input(&self) -> Result<(), Malformed> {
        match self {
            Framing::UntilClose => Ok(()),
            _ if self.is_done() => Ok(()),
            Framing::Length(_) => Err(Malformed::Body(
                "the connection closed before the end of the body its Content-Length announced",
            )),
            Framing::Chunked(_) => Err(Malformed::Body(
                "the connection closed before the last chunk",
            )),
        }
    }
}

/// For the fuzz target: reads `wire` as a whole answer to a GET (its head,
/// then its body fed in pieces of 1 to 7 bytes into outputs of 1 to 5),
/// checking what callers rely on: nothing panics, the body is never longer
/// than the bytes after the head, nor than an announced length.
#[cfg(feature = "fuzzing")]
pub fn read_whole_answer(wire: &[u8]) {
    let Ok(Some((head, used))) = parse_head(wire, 4096) else {
        return;
    };
    assert!(used <= wire.len() && head.status >= 100);
    let Ok((mut framing, _reusable)) = head.framing("GET") else {
        return;
    };
    let announced = match framing {
        Framing::Length(length) => Some(length),
        _ => None,
    };
    let (mut at, mut body, mut piece) = (used, 0u64, 0usize);
    let mut output = [0u8; 5];
    while at < wire.len() && !framing.is_done() {
        piece += 1;
        let end = (at + 1 + piece % 7).min(wire.len());
        let room = 1 + piece % 5;
        match framing.decode(&wire[at..end], &mut output[..room]) {
            Ok((0, 0)) => break,
            Ok((taken, written)) => {
                assert!(taken <= end - at && written <= room);
                (at, body) = (at + taken, body + written as u64);
            }
            Err(_) => return,
        }
    }
    assert!(body <= (wire.len() - used) as u64);
    if let Some(length) = announced {
        assert!(body <= length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        let (head, used) = parse_head(text.as_bytes(), 65536).unwrap().unwrap();
        assert_eq!(used, text.len());
        head
    }

    #[test]
    fn the_request_head_has_host_headers_and_length_in_order() {
        let mut out = Vec::new();
        let headers = [("apim-accesstoken", "t"), ("accept", "application/json")];
        write_head(
            &mut out,
            "POST",
            "/a?b=1",
            "gw:8080",
            headers.into_iter(),
            Some(12),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: gw:8080\r\napim-accesstoken: t\r\n\
             accept: application/json\r\ncontent-length: 12\r\n\r\n"
        );
    }

    #[test]
    fn a_head_is_parsed_in_order_with_names_lower_case() {
        let parsed =
            head("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A:  1 \r\nx-a: 2\r\n\r\n");
        assert_eq!(parsed.status, 200);
        assert!(!parsed.http10);
        let names: Vec<_> = parsed
            .headers
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        assert_eq!(names, ["content-type=application/json", "x-a=1", "x-a=2"]);
        assert!(
            parsed
                .headers
                .iter()
                .all(|(n, v)| n.capacity() > n.len() && v.capacity() > v.len())
        );
        // Bare LF line ends, no reason phrase.
        assert_eq!(head("HTTP/1.0 404\nA: b\n\n").status, 404);
    }

    #[test]
    fn an_incomplete_head_waits_and_an_endless_one_is_refused() {
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
        assert!(parse_head(partial, 65536).unwrap().is_none());
        assert!(parse_head(b"", 65536).unwrap().is_none());
        let endless = format!("HTTP/1.1 200 OK\r\n{}", "X: y\r\n".repeat(100));
        assert_eq!(
            parse_head(endless.as_bytes(), 64).unwrap_err(),
            Malformed::HeadTooLarge
        );
        // The body's bytes after the head are not the head's.
        let (_, used) = parse_head(b"HTTP/1.1 204 No\r\n\r\nrest", 65536)
            .unwrap()
            .unwrap();
        assert_eq!(used, 19);
    }

    #[test]
    fn at_most_256_headers_are_taken() {
        let head = |count: usize| format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(count));
        assert_eq!(
            parse_head(head(256).as_bytes(), 65536)
                .unwrap()
                .unwrap()
                .0
                .headers
                .len(),
            256
        );
        assert_eq!(
            parse_head(head(257).as_bytes(), 65536).unwrap_err(),
            Malformed::Head("too many headers (over 256)")
        );
    }

    #[test]
    fn malformed_heads_are_refused_with_what_was_wrong() {
        for (text, what) in [
            ("HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
            (
                "\x16\x03\x01\x02\x00\r\n\r\n",
                "not an HTTP/1.x status line",
            ),
            (
                "HTTP/1.1 2x0 OK\r\n\r\n",
                "a status that is not three digits",
            ),
            (
                "HTTP/1.1 2000 OK\r\n\r\n",
                "a status that is not three digits",
            ),
            ("HTTP/1.1 099 OK\r\n\r\n", "a status below 100"),
            (
                "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n",
                "a header name that is not a token",
            ),
            (
                "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
                "a header line without a colon",
            ),
            (
                "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
                "a folded header line",
            ),
            (
                "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n",
                "a header value with a control character",
            ),
        ] {
            assert_eq!(
                parse_head(text.as_bytes(), 65536).unwrap_err(),
                Malformed::Head(what),
                "{text:?}"
            );
        }
    }

    fn framing(text: &str, method: &str) -> Result<(Framing, bool), Malformed> {
        head(text).framing(method)
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (length, reusable) =
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET").unwrap();
        assert!(matches!(length, Framing::Length(5)) && reusable);
        let (none, reusable) =
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD").unwrap();
        assert!(none.is_done() && reusable);
        assert!(
            framing("HTTP/1.1 204 No Content\r\n\r\n", "GET")
                .unwrap()
                .0
                .is_done()
        );
        assert!(
            framing(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                "GET"
            )
            .unwrap()
            .0
            .is_done()
        );
        let (until_close, reusable) = framing("HTTP/1.1 200 OK\r\n\r\n", "GET").unwrap();
        assert!(matches!(until_close, Framing::UntilClose) && !reusable);
        let (chunked, reusable) = framing(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
            "GET",
        )
        .unwrap();
        assert!(matches!(chunked, Framing::Chunked(_)) && reusable);
        let (chunked, reusable) = framing(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "GET",
        )
        .unwrap();
        assert!(
            matches!(chunked, Framing::Chunked(_)) && !reusable,
            "a smuggling attempt is not trusted"
        );
        assert!(
            !framing(
                "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
                "GET"
            )
            .unwrap()
            .1
        );
        assert!(
            !framing("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET")
                .unwrap()
                .1
        );
        assert!(
            framing(
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                "GET"
            )
            .unwrap()
            .1
        );
        // Equal repeated lengths are one length; different ones are a lie.
        assert!(matches!(
            framing(
                "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n",
                "GET"
            )
            .unwrap()
            .0,
            Framing::Length(3)
        ));
        for lie in [
            "3\r\nContent-Length: 4",
            "-1",
            "+3",
            "0x10",
            "",
            "99999999999999999999",
        ] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {lie}\r\n\r\n");
            assert!(
                matches!(framing(&text, "GET"), Err(Malformed::Body(_))),
                "{lie}"
            );
        }
        assert!(matches!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET"),
            Err(Malformed::Body(_))
        ));
    }

    /// Decodes `input` fed in pieces of `piece` bytes into an output of
    /// `room` bytes at a time.
    fn decode_all(
        framing: &mut Framing,
        input: &[u8],
        piece: usize,
        room: usize,
    ) -> Result<(Vec<u8>, usize), Malformed> {
        let (mut body, mut offered, mut used) = (Vec::new(), 0, 0);
        let mut output = vec![0; room];
        while !framing.is_done() {
            offered = (offered + piece).min(input.len());
            let (took, wrote) = framing.decode(&input[used..offered], &mut output)?;
            body.extend_from_slice(&output[..wrote]);
            used += took;
            if took == 0 && wrote == 0 && offered == input.len() {
                break;
            }
        }
        Ok((body, used))
    }

    #[test]
    fn chunks_decode_whatever_the_pieces_and_leave_what_follows() {
        let wire =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 100] {
            for room in [1, 4, 64] {
                let mut framing = Framing::Chunked(Chunked::default());
                let (body, used) = decode_all(&mut framing, wire, piece, room).unwrap();
                assert_eq!(
                    body, b"helloabcdefghijklmnopqrstuvwxyz",
                    "piece {piece} room {room}"
                );
                assert_eq!(&wire[used..], b"NEXT");
                assert!(framing.at_end_of_input().is_ok());
            }
        }
    }

    #[test]
    fn broken_chunks_are_refused() {
        for wire in [
            &b"5\r\nhello!\r\n0\r\n\r\n"[..],
            b"g\r\n",
            b"5\rX",
            b"11111111111111111\r\n",
            b"0\r\nA: b\rX",
        ] {
            let mut framing = Framing::Chunked(Chunked::default());
            assert!(
                matches!(
                    decode_all(&mut framing, wire, 100, 100),
                    Err(Malformed::Body(_))
                ),
                "{wire:?}"
            );
        }
        let mut framing = Framing::Chunked(Chunked::default());
        let endless = [b"1;".as_slice(), &[b'x'; 5000]].concat();
        assert!(decode_all(&mut framing, &endless, 100, 100).is_err());
        let mut cut = Framing::Chunked(Chunked::default());
        decode_all(&mut cut, b"5\r\nhel", 100, 100).unwrap();
        assert!(
            cut.at_end_of_input().is_err(),
            "a body cut short is an error"
        );
    }

    #[test]
    fn a_length_is_exact_and_a_short_body_is_an_error() {
        let mut framing = Framing::Length(5);
        let (body, used) = decode_all(&mut framing, b"helloNEXT", 3, 2).unwrap();
        assert_eq!((body.as_slice(), used), (&b"hello"[..], 5));
        let mut taken = Framing::Length(5);
        assert_eq!((taken.take(3), taken.take(9), taken.take(1)), (3, 2, 0));
        assert!(taken.is_done());
        assert_eq!(Framing::UntilClose.take(7), 7);
        let mut short = Framing::Length(5);
        decode_all(&mut short, b"hel", 3, 2).unwrap();
        assert!(short.at_end_of_input().is_err());
        assert!(Framing::UntilClose.at_end_of_input().is_ok());
    }
}
