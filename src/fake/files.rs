//! The EnOS file APIs, as the fake serves them:
//!
//! * `POST …/connect-service/v2.1/integration?action=postMeasurepoint|postAttribute|postEvent`:
//!   `multipart/form-data` with one `enos-message` JSON part and `enos-file`
//!   parts (each with a file name); every part must carry its own
//!   `Content-Length` (EnOS 2.1.0). Streamed: any size, constant memory.
//! * `POST …/connect-service/v2.1/ota-firmwares?action=create`: a
//!   `metadata` JSON part and the firmware file.
//! * `GET …/connect-service/v2.1/files?action=download&fileUri=…`: a file
//!   of the size the URI's last segment names (`enos-connect://fake/52428800.bin`),
//!   generated as it is sent (no disk), with `ETag`, `Last-Modified`,
//!   `Accept-Ranges`, `Range` and `If-Range`.
//!
//! Uploads answer what arrived (each part's name, file name, content type,
//! size and SHA-256), so a test sees exactly what was sent.

use std::io::{self, BufRead, Read, Write};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{check_signature, refusal};
use super::http::{self, Answer, Request};
use super::{Shared, State};

/// The date every generated file was last modified.
const LAST_MODIFIED: &str = "Mon, 02 Nov 2026 08:00:00 GMT";
/// A JSON part (`enos-message`, `metadata`) is kept to be checked up to this size.
const MAX_JSON_PART: u64 = 1024 * 1024;
/// Bytes of a generated file written at a time.
const CHUNK: usize = 256 * 1024;

/// Which file API a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileApi {
    /// A measurement point, attribute or event upload.
    Integration,
    Firmware,
    Download,
}

fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The file API `request` is for, if any (under any path prefix).
pub(super) fn file_api(request: &Request) -> Option<FileApi> {
    let action = query_value(&request.query, "action").unwrap_or("");
    let path = request.path.as_str();
    if path.ends_with("/connect-service/v2.1/integration")
        && matches!(action, "postMeasurepoint" | "postAttribute" | "postEvent")
    {
        Some(FileApi::Integration)
    } else if path.ends_with("/connect-service/v2.1/ota-firmwares") && action == "create" {
        Some(FileApi::Firmware)
    } else if path.ends_with("/connect-service/v2.1/files") && action == "download" {
        Some(FileApi::Download)
    } else {
        None
    }
}

/// An EnOS answer envelope.
fn envelope(code: i32, msg: &str, data: Value) -> Value {
    json!({"code": code, "msg": msg, "requestId": format!("fake-{:016x}", crate::time::random_u64()), "data": data})
}

fn bad_request(msg: &str) -> Answer {
    Answer::json(400, &envelope(400, msg, Value::Null))
}

/// What arrived of one part.
struct PartSeen {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: u64,
    sha256: String,
    /// The part's bytes when it is small enough to check as JSON.
    kept: Option<Vec<u8>>,
}

/// Answers an upload: checks the call's signature (the multipart body is
/// not signed), then reads the body as it arrives. The body is always read
/// to its end, so the connection stays usable.
pub(super) fn upload<R: BufRead>(
    reader: &mut R,
    request: &Request,
    shared: &Shared,
    api: FileApi,
) -> io::Result<Answer> {
    let checked = {
        let mut state = shared.lock();
        check_signature(request, &mut state, &[]).map_err(|refused| refusal(refused, &state))
    };
    let mut body = reader.take(request.body_length);
    let answer = match checked {
        Err(refused) => refused,
        Ok(()) => match boundary_of(request) {
            None => bad_request("Content-Type must be multipart/form-data with a boundary"),
            Some(boundary) => match read_parts(&mut body, &boundary) {
                Ok(parts) => judge(api, &parts, shared),
                Err(why) => bad_request(&why),
            },
        },
    };
    http::discard(&mut body, request.body_length)
        .or_else(|e| if body.limit() == 0 { Ok(()) } else { Err(e) })?;
    shared.lock().stats.uploads += 1;
    Ok(answer)
}

fn boundary_of(request: &Request) -> Option<String> {
    let content_type = request.header("content-type")?;
    let (media_type, parameters) = content_type.split_once(';')?;
    if !media_type
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parameters
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim_matches('"').to_string())
}

fn read_line<R: BufRead>(reader: &mut R) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .take(16 * 1024)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("body unreadable: {e}"))?;
    if !line.ends_with(b"\r\n") {
        return Err("multipart body ended early or has a line without CRLF".into());
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| "multipart head is not UTF-8".into())
}

/// `name="…"` from a `Content-Disposition` value.
fn disposition_parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Reads every part, checking each one's `Content-Length`.
fn read_parts<R: BufRead>(reader: &mut R, boundary: &str) -> Result<Vec<PartSeen>, String> {
    let delimiter = format!("--{boundary}");
    let closing = format!("--{boundary}--");
    if read_line(reader)? != delimiter {
        return Err("multipart body does not start with its boundary".into());
    }
    let mut parts = Vec::new();
    loop {
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or("a part header line without ':'")?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let disposition =
            header("content-disposition").ok_or("a part has no Content-Disposition")?;
        let name = disposition_parameter(&disposition, "name").ok_or("a part has no name")?;
        let length: u64 = header("content-length")
            .ok_or(format!(
                "part \"{name}\" has no Content-Length (every part needs one since EnOS 2.1.0)"
            ))?
            .parse()
            .map_err(|_| format!("part \"{name}\": Content-Length is not a number"))?;
        let keep = length <= MAX_JSON_PART;
        let mut kept = Vec::new();
        let mut hasher = Sha256::new();
        let mut data = reader.take(length);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = data
                .read(&mut chunk)
                .map_err(|e| format!("body unreadable: {e}"))?;
            if read == 0 {
                break;
            }
            hasher.update(&chunk[..read]);
            if keep {
                kept.extend_from_slice(&chunk[..read]);
            }
        }
        if data.limit() > 0 {
            return Err(format!(
                "part \"{name}\" is shorter than its Content-Length"
            ));
        }
        if !read_line(reader)?.is_empty() {
            return Err(format!(
                "part \"{name}\" is longer than its Content-Length {length}"
            ));
        }
        parts.push(PartSeen {
            file_name: disposition_parameter(&disposition, "filename"),
            content_type: header("content-type"),
            bytes: length,
            sha256: hex::encode(hasher.finalize()),
            kept: keep.then_some(kept),
            name,
        });
        let next = read_line(reader)?;
        if next == closing {
            return Ok(parts);
        }
        if next != delimiter {
            return Err(format!(
                "part \"{}\" is not followed by the boundary",
                parts.last().map_or("", |p| p.name.as_str())
            ));
        }
    }
}

/// EnOS's checks of an upload's parts, and the answer.
fn judge(api: FileApi, parts: &[PartSeen], _shared: &Shared) -> Answer {
    let (json_part, file_part) = match api {
        FileApi::Integration => ("enos-message", "enos-file"),
        _ => ("metadata", "file"),
    };
    let Some(message) = parts.iter().find(|p| p.name == json_part) else {
        return bad_request(&format!("the \"{json_part}\" part is missing"));
    };
    let is_json = message
        .kept
        .as_ref()
        .is_some_and(|bytes| serde_json::from_slice::<Value>(bytes).is_ok());
    if !is_json {
        return bad_request(&format!("the \"{json_part}\" part is not JSON"));
    }
    if let Some(unnamed) = parts
        .iter()
        .find(|p| p.name == file_part && p.file_name.is_none())
    {
        return bad_request(&format!("a \"{}\" part has no filename", unnamed.name));
    }
    if api == FileApi::Firmware && !parts.iter().any(|p| p.name == file_part) {
        return bad_request("the firmware \"file\" part is missing");
    }
    let seen: Vec<Value> = parts
        .iter()
        .map(|p| {
            json!({"name": p.name, "filename": p.file_name, "contentType": p.content_type,
                   "bytes": p.bytes, "sha256": p.sha256})
        })
        .collect();
    Answer::json(200, &envelope(0, "OK", json!({"parts": seen})))
}

/// A generated file: its size (from the URI's last segment) and the seed
/// of its content.
pub(super) struct GeneratedFile {
    pub(super) size: u64,
    seed: u64,
}

impl GeneratedFile {
    /// The file `file_uri` names, at content `version`.
    pub(super) fn of(file_uri: &str, version: u64) -> Option<GeneratedFile> {
        let decoded = crate::signing::sorted_query_parameters(&format!("u={file_uri}"))
            .pop()
            .map(|(_, value)| value)?;
        let last = decoded.rsplit('/').next()?;
        let digits: String = last.chars().take_while(char::is_ascii_digit).collect();
        let size = digits.parse().ok()?;
        let digest = Sha256::digest(format!("{decoded}#{version}").as_bytes());
        let seed = u64::from_le_bytes(digest[..8].try_into().ok()?);
        Some(GeneratedFile { size, seed })
    }

    /// The content's bytes from `offset`, into `buffer`.
    pub(super) fn fill(&self, offset: u64, buffer: &mut [u8]) {
        let mut position = offset;
        let mut out = buffer;
        while !out.is_empty() {
            let word = splitmix(self.seed ^ (position / 8)).to_le_bytes();
            let within = (position % 8) as usize;
            let n = (8 - within).min(out.len());
            out[..n].copy_from_slice(&word[within..within + n]);
            out = &mut out[n..];
            position += n as u64;
        }
    }

    fn etag(&self) -> String {
        format!("\"{:016x}-{}\"", self.seed, self.size)
    }

    /// The SHA-256 of the whole content.
    pub(super) fn sha256(&self) -> String {
        let mut hasher = Sha256::new();
        let mut chunk = vec![0u8; CHUNK];
        let mut offset = 0;
        while offset < self.size {
            let length = (self.size - offset).min(CHUNK as u64) as usize;
            self.fill(offset, &mut chunk[..length]);
            hasher.update(&chunk[..length]);
            offset += length as u64;
        }
        hex::encode(hasher.finalize())
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The byte range a `Range` header asks of `size` bytes: `Ok(None)` for
/// the whole file, `Err(())` for a range that cannot be served.
fn requested_range(request: &Request, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(range) = request.header("range") else {
        return Ok(None);
    };
    let spec = range.trim().strip_prefix("bytes=").ok_or(())?;
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().map_err(|_| ())?;
            (size.saturating_sub(suffix), size.checked_sub(1).ok_or(())?)
        }
        (first, "") => (
            first.parse().map_err(|_| ())?,
            size.checked_sub(1).ok_or(())?,
        ),
        (first, last) => (
            first.parse().map_err(|_| ())?,
            last.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1)),
        ),
    };
    if first > last || first >= size {
        return Err(());
    }
    Ok(Some((first, last)))
}

/// Serves a download: checks the call's signature, then writes the head
/// and the generated bytes (cut after the bytes a `cut-download` fault
/// says, closing the connection). Returns whether the connection may serve
/// another request, and the status answered.
pub(super) fn download<W: Write>(
    stream: &mut W,
    request: &Request,
    shared: &Shared,
    keep_alive: bool,
) -> io::Result<(bool, u16)> {
    let (file, cut) = {
        let mut state = shared.lock();
        if let Err(refused) = check_signature(request, &mut state, &request.body) {
            let answer = refusal(refused, &state);
            return http::write_answer(stream, &answer, keep_alive)
                .map(|()| (keep_alive, answer.status));
        }
        let uri = query_value(&request.query, "fileUri").unwrap_or("");
        let Some(file) = GeneratedFile::of(uri, state.file_version) else {
            drop(state);
            let answer = Answer::json(
                404,
                &envelope(
                    404,
                    "file not found (the fake serves enos-connect://…/<size>)",
                    Value::Null,
                ),
            );
            return http::write_answer(stream, &answer, keep_alive).map(|()| (keep_alive, 404));
        };
        state.stats.downloads += 1;
        (file, state.download_cuts.pop_front())
    };
    let etag = file.etag();
    let if_range_matches = request
        .header("if-range")
        .is_none_or(|validator| validator == etag || validator == LAST_MODIFIED);
    let range = if if_range_matches {
        requested_range(request, file.size)
    } else {
        Ok(None)
    };
    let mut answer = Answer::text(200, "application/octet-stream", Vec::new());
    answer.extra_headers = vec![
        ("ETag".into(), etag),
        ("Last-Modified".into(), LAST_MODIFIED.into()),
        ("Accept-Ranges".into(), "bytes".into()),
    ];
    let (first, last) = match range {
        Err(()) => {
            let mut refused = Answer::text(416, "text/plain", "range not satisfiable");
            refused
                .extra_headers
                .push(("Content-Range".into(), format!("bytes */{}", file.size)));
            return http::write_answer(stream, &refused, keep_alive).map(|()| (keep_alive, 416));
        }
        Ok(Some((first, last))) => {
            shared.lock().stats.range_requests += 1;
            answer.status = 206;
            answer.extra_headers.push((
                "Content-Range".into(),
                format!("bytes {first}-{last}/{}", file.size),
            ));
            (first, last + 1)
        }
        Ok(None) => (0, file.size),
    };
    let length = last - first;
    let keep_alive = keep_alive && cut.is_none();
    stream.write_all(&http::head_bytes(&answer, length, keep_alive))?;
    let end = cut.map_or(last, |cut| (first + cut).min(last));
    let mut chunk = vec![0u8; CHUNK];
    let mut offset = first;
    while offset < end {
        let n = (end - offset).min(CHUNK as u64) as usize;
        file.fill(offset, &mut chunk[..n]);
        stream.write_all(&chunk[..n])?;
        offset += n as u64;
    }
    stream.flush()?;
    if cut.is_some() {
        return Err(io::Error::other("fault: download cut"));
    }
    Ok((keep_alive, answer.status))
}

/// `GET /fake/control/file-digest?fileUri=…`: the size and SHA-256 of a
/// generated file, for tests in any language.
pub(super) fn digest(request: &Request, state: &State) -> Answer {
    let uri = query_value(&request.query, "fileUri").unwrap_or("");
    match GeneratedFile::of(uri, state.file_version) {
        Some(file) if file.size <= 1 << 30 => Answer::json(
            200,
            &json!({"status": 0, "bytes": file.size, "sha256": file.sha256()}),
        ),
        Some(_) => Answer::json(400, &json!({"status": 400, "msg": "at most 1 GiB"})),
        None => Answer::json(
            404,
            &json!({"status": 404, "msg": "no such generated file"}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_offset_addressable_and_versioned() {
        let file = GeneratedFile::of("enos-connect://fake/1000.bin", 0).unwrap();
        assert_eq!(file.size, 1000);
        let mut whole = vec![0u8; 1000];
        file.fill(0, &mut whole);
        let mut tail = vec![0u8; 13];
        file.fill(987, &mut tail);
        assert_eq!(&whole[987..], &tail[..]);
        let changed = GeneratedFile::of("enos-connect://fake/1000.bin", 1).unwrap();
        assert_ne!(file.etag(), changed.etag());
        assert!(GeneratedFile::of("enos-connect://fake/none.bin", 0).is_none());
        let encoded = GeneratedFile::of("enos-connect%3A%2F%2Ffake%2F1000.bin", 0).unwrap();
        assert_eq!(
            encoded.etag(),
            file.etag(),
            "the URI may come percent-encoded"
        );
    }
}
