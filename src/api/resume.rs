//! A streamed answer delivered to its output, and a GET whose connection
//! breaks mid-body resumed where it broke: `Range: bytes=N-` with
//! `If-Range`, when the first answer offered ranges (`Accept-Ranges:
//! bytes`) and a validator (a strong `ETag`, or `Last-Modified`). The output
//! receives each byte of the file exactly once; a file that changed on the
//! server in between ends the call instead.

use std::time::Duration;

use super::attempt::Opened;
use super::call::{Call, CallSpec};
use super::output::Sink;
use crate::error::{Error, ErrorKind};
use crate::log::LogLevel;
use crate::transport::Delivery;

/// Bytes of a streamed answer read at a time.
const CHUNK_BYTES: usize = 128 * 1024;
/// The longest wait between two resumes.
const MAX_RESUME_WAIT: Duration = Duration::from_secs(5);

/// What a broken download needs to go on where it broke.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Resumable {
    /// The `If-Range` value: a strong ETag, else the `Last-Modified` date.
    validator: String,
    /// Where the first answer's body starts in the file (the caller's own
    /// `Range`), and where it ends, if the caller's range said.
    first_byte: u64,
    last_byte: Option<u64>,
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// `bytes=A-` or `bytes=A-B`: a single range with a known start.
fn single_range(range: &str) -> Option<(u64, Option<u64>)> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        last => Some(last.parse().ok()?),
    };
    Some((first, last))
}

/// The first byte position of `Content-Range: bytes A-B/T`.
fn content_range_start(value: &str) -> Option<u64> {
    let spec = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, _) = spec.split_once('/')?;
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

impl Resumable {
    /// Whether (and how) the answer to `spec` can be resumed.
    pub(super) fn of(
        spec: &CallSpec<'_>,
        status: u16,
        headers: &[(String, String)],
    ) -> Option<Resumable> {
        if spec.method != "GET" {
            return None;
        }
        let (first_byte, last_byte) = match header(spec.headers, "range") {
            None if status == 200 => (0, None),
            Some(range) if status == 206 => single_range(range)?,
            _ => return None,
        };
        if !header(headers, "accept-ranges")?.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let strong_etag = header(headers, "etag").filter(|etag| etag.starts_with('"'));
        let validator = strong_etag.or_else(|| header(headers, "last-modified"))?;
        Some(Resumable {
            validator: validator.to_string(),
            first_byte,
            last_byte,
        })
    }

    /// The caller's headers with the range that goes on after `delivered`
    /// bytes, and its `If-Range`.
    fn headers(&self, spec: &CallSpec<'_>, delivered: u64) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = spec
            .headers
            .iter()
            .filter(|(name, _)| {
                !name.eq_ignore_ascii_case("range") && !name.eq_ignore_ascii_case("if-range")
            })
            .cloned()
            .collect();
        let from = self.first_byte + delivered;
        let range = match self.last_byte {
            Some(last) => format!("bytes={from}-{last}"),
            None => format!("bytes={from}-"),
        };
        headers.push(("Range".into(), range));
        headers.push(("If-Range".into(), self.validator.clone()));
        headers
    }
}

/// How copying a body to the sink stopped.
enum Copy {
    /// The body's end: every byte delivered.
    Done,
    /// The connection broke (the error says how).
    Broken(Error),
}

/// Delivers `opened`'s body (what was read of it, then the rest) to
/// `sink`, resuming a broken download when `resumable` says how; the
/// sink's own failures end the call.
pub(super) fn stream(
    call: &Call<'_>,
    opened: Opened<'_>,
    resumable: Option<Resumable>,
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let result = stream_with(call, opened, resumable, sink, &mut chunk);
    crate::secret::wipe(&mut chunk);
    result
}

fn stream_with(
    call: &Call<'_>,
    opened: Opened<'_>,
    resumable: Option<Resumable>,
    sink: &mut Sink<'_>,
    chunk: &mut [u8],
) -> Result<(), Error> {
    let mut delivered = 0u64;
    let mut failures_in_a_row = 0u32;
    let mut current = opened;
    loop {
        let before = delivered;
        let Copy::Broken(mut error) = copy(&mut current, sink, chunk, &mut delivered)? else {
            return Ok(());
        };
        let Some(resumable) = &resumable else {
            return Err(error);
        };
        if delivered > before {
            failures_in_a_row = 0;
        }
        current = loop {
            failures_in_a_row += 1;
            let out_of_time = call.time_left().is_err() || crate::transport::is_cancelled();
            if failures_in_a_row > call.context.max_retries || out_of_time {
                return Err(error);
            }
            log_resume(call, delivered, &error);
            wait_before_resume(call, failures_in_a_row);
            match reopen(call, resumable, delivered) {
                Ok(next) => break next,
                Err(e) if e.is_transient() => error = e,
                Err(e) => return Err(e),
            }
        };
    }
}

/// Copies what was read and the rest of the body to the sink.
fn copy(
    opened: &mut Opened<'_>,
    sink: &mut Sink<'_>,
    chunk: &mut [u8],
    delivered: &mut u64,
) -> Result<Copy, Error> {
    if !opened.prefix.is_empty() {
        let prefix = std::mem::take(&mut opened.prefix);
        sink.write(&prefix)?;
        *delivered += prefix.len() as u64;
    }
    if opened.complete {
        return Ok(Copy::Done);
    }
    let mut write = |bytes: &[u8]| sink.write(bytes);
    loop {
        match opened.body.deliver_next(chunk, &mut write) {
            Ok(0) => return Ok(Copy::Done),
            Ok(read) => *delivered += read as u64,
            Err(Delivery::Read(e)) => return Ok(Copy::Broken(e)),
            Err(Delivery::Output(e)) => return Err(e),
        }
    }
}

fn log_resume(call: &Call<'_>, delivered: u64, error: &Error) {
    call.log(
        LogLevel::Info,
        &format!(
            "{} {}: the download broke after {delivered} bytes ({}); resuming from there",
            call.spec.method,
            super::path_for_logs(call.spec.path),
            error.message()
        ),
    );
}

/// Exponential backoff with full jitter from the client's base backoff,
/// at most 5 s, never past the call's time cap.
fn wait_before_resume(call: &Call<'_>, failures_in_a_row: u32) {
    let exponent = failures_in_a_row.saturating_sub(1).min(16);
    let ceiling = call
        .context
        .base_backoff
        .saturating_mul(1 << exponent)
        .min(MAX_RESUME_WAIT);
    let wait = ceiling.mul_f64(crate::time::random_fraction());
    let wait = match call.time_left() {
        Ok(left) => wait.min(left),
        Err(_) => Duration::ZERO,
    };
    crate::transport::sleep_unless_cancelled(wait);
}

/// Asks for the rest of the file after `delivered` bytes.
fn reopen<'c>(call: &Call<'c>, resumable: &Resumable, delivered: u64) -> Result<Opened<'c>, Error> {
    let headers = resumable.headers(call.spec, delivered);
    let mut token = call.token()?;
    let opened = call.send_attempt(&token, &headers);
    super::call::wipe_string(&mut token);
    let opened = opened?;
    let expected = resumable.first_byte + delivered;
    match opened.status {
        206 => {
            let start = opened.header("content-range").and_then(content_range_start);
            if start != Some(expected) {
                return Err(Error::bad_response(format!(
                    "resuming the download at byte {expected}: the server answered a range \
                     starting at {} instead",
                    start.map_or("an unknown byte".to_string(), |s| s.to_string())
                ))
                .with_http_status(206));
            }
            Ok(opened)
        }
        200 => Err(Error::bad_response(format!(
            "the file changed on the server during the download (its ETag or Last-Modified no \
             longer matches, so the server sent it whole): {delivered} bytes were already \
             written to the output; download it again"
        ))
        .with_http_status(200)),
        status => Err(Error::new(
            ErrorKind::HttpStatus,
            format!("resuming the download at byte {expected}: the server answered HTTP {status}"),
        )
        .with_http_status(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_content_ranges_are_read_strictly() {
        assert_eq!(single_range("bytes=0-"), Some((0, None)));
        assert_eq!(single_range("bytes=100-199"), Some((100, Some(199))));
        assert_eq!(
            single_range("bytes=-500"),
            None,
            "a suffix range has no start"
        );
        assert_eq!(single_range("bytes=0-1,5-6"), None, "one range only");
        assert_eq!(single_range("items=0-1"), None);
        assert_eq!(
            content_range_start("bytes 1048576-52428799/52428800"),
            Some(1048576)
        );
        assert_eq!(content_range_start("bytes 5-9/*"), Some(5));
        assert_eq!(content_range_start("bytes */100"), None);
    }
}
