//! Files both ways (`Client::send`, `enos_client_send`) against the fake
//! gateway's EnOS file APIs and raw servers: multipart uploads with every
//! part's own `Content-Length`, signed by the content-type rule; streamed
//! downloads to a file descriptor and a callback, exact to the byte; a
//! broken download resumed through one `Range` request; files that change
//! while sent; callbacks that stop the call; a refused token renewed with
//! the files read again.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use enos_token::fake::{FakeGateway, Fault, TokenRefusal};
use enos_token::{ErrorKind, Request};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::*;

const MEASUREPOINTS: &str = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1";

fn download_path(bytes: u64) -> String {
    format!(
        "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/{bytes}.bin&category=ota"
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file of `bytes` pseudo-random bytes in a fresh temporary folder.
fn temporary_file(name: &str, bytes: usize) -> (TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = TempDir::new();
    let path = dir.path.join(name);
    let content: Vec<u8> = (0..bytes).map(|i| (i * 131 % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    (dir, path, content)
}

struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "enos-files-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn parts_seen(response: &enos_token::Response) -> Vec<Value> {
    let value: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(value["code"], 0, "{value}");
    value["data"]["parts"].as_array().unwrap().clone()
}

#[test]
fn a_measurement_point_upload_arrives_intact_with_every_parts_length() {
    let fake = fake();
    let client = client(&fake.url());
    let (_dir, first, first_content) = temporary_file("reading-1.csv", 300_000);
    let (_dir2, second, second_content) = temporary_file("photo.jpg", 1_234_567);
    let message = br#"{"orgId":"o1","modelId":"m","payload":[{"measurepoints":{"temp":21.5}}]}"#;
    let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
    request
        .part("enos-message", Some("application/json"), message.to_vec())
        .unwrap()
        .file_part("enos-file", None, Some("text/csv"), &first)
        .unwrap()
        .file_part("enos-file", Some("camera.jpg"), None, &second)
        .unwrap();
    let response = client.send(&request).unwrap();
    assert_eq!(response.status(), 200);
    let parts = parts_seen(&response);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(parts[0]["name"], "enos-message");
    assert_eq!(parts[0]["bytes"], message.len());
    assert_eq!(parts[0]["sha256"], sha256_hex(message));
    assert_eq!(
        parts[1]["filename"], "reading-1.csv",
        "the path's last component"
    );
    assert_eq!(parts[1]["contentType"], "text/csv");
    assert_eq!(parts[1]["sha256"], sha256_hex(&first_content));
    assert_eq!(parts[2]["filename"], "camera.jpg");
    assert_eq!(parts[2]["contentType"], "application/octet-stream");
    assert_eq!(parts[2]["bytes"], second_content.len());
    assert_eq!(parts[2]["sha256"], sha256_hex(&second_content));
    // The fake refuses a part without its own Content-Length: every one had it.
    let stats = fake.stats();
    assert_eq!((stats.uploads, stats.echo_accepted), (1, 1));
    // The same request object, sent again: the files are read anew.
    assert_eq!(client.send(&request).unwrap().status(), 200);
}

#[test]
fn a_firmware_upload_takes_its_metadata_part_and_the_file() {
    let fake = fake();
    let client = client(&fake.url());
    let (_dir, firmware, content) = temporary_file("fw-2.1.bin", 2 * 1024 * 1024 + 3);
    let mut request = Request::new(
        "POST",
        "/connect-service/v2.1/ota-firmwares?action=create&orgId=o1",
    )
    .unwrap();
    request
        .part(
            "metadata",
            Some("application/json"),
            br#"{"name":"fw","version":"2.1"}"#.to_vec(),
        )
        .unwrap()
        .file_part("file", None, None, &firmware)
        .unwrap();
    let response = client.send(&request).unwrap();
    let parts = parts_seen(&response);
    assert_eq!(parts[1]["sha256"], sha256_hex(&content));
    // Without the metadata part, the fake answers as EnOS would: 400.
    let mut bare = Request::new(
        "POST",
        "/connect-service/v2.1/ota-firmwares?action=create&orgId=o1",
    )
    .unwrap();
    bare.file_part("file", None, None, &firmware).unwrap();
    let response = client.send(&bare).unwrap();
    assert_eq!(response.status(), 400);
    assert!(String::from_utf8_lossy(response.body()).contains("metadata"));
}

/// Sends `body` as `content_type` to `path` over a raw socket, signed over
/// the query and `signed_body` with `client`'s token.
fn send_signed_by_hand(
    fake: &FakeGateway,
    client: &enos_token::Client,
    path: &str,
    content_type: &str,
    body: &[u8],
    signed_body: &[u8],
) -> String {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let headers = client.auth_headers(query, signed_body).unwrap();
    let mut stream = std::net::TcpStream::connect(fake.address()).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: fake\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_signature_over_a_multipart_body_is_refused_as_the_gateway_would() {
    let fake = fake();
    let client = client(&fake.url());
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"enos-message\"\r\nContent-Length: 2\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    // Signed the old way, body included: refused.
    let answer = send_signed_by_hand(
        &fake,
        &client,
        MEASUREPOINTS,
        &content_type,
        body.as_bytes(),
        body.as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("signature mismatch"), "{answer}");
    // Over the query only: accepted.
    let answer = send_signed_by_hand(
        &fake,
        &client,
        MEASUREPOINTS,
        &content_type,
        body.as_bytes(),
        b"",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A JSON body is signed: over the query only, it is refused.
    let answer = send_signed_by_hand(
        &fake,
        &client,
        "/fake/v1/echo?a=1",
        "application/json",
        b"{\"x\":1}",
        b"",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[test]
fn a_json_body_from_a_file_is_signed_and_a_binary_one_is_not() {
    let fake = fake();
    let client = client(&fake.url());
    let dir = TempDir::new();
    let json = dir.path.join("body.json");
    std::fs::write(&json, br#"{"assetIds":["a1"]}"#).unwrap();
    let mut request = Request::new("POST", "/fake/v1/echo?orgId=o1").unwrap();
    request.body_file(Some("application/json"), &json).unwrap();
    let response = client.send(&request).unwrap();
    let echoed: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(echoed["msg"], "signature ok", "{echoed}");
    assert_eq!(echoed["data"]["body"], r#"{"assetIds":["a1"]}"#);
    request.body_file(None, &json).unwrap();
    let response = client.send(&request).unwrap();
    let echoed: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(echoed["data"]["contentType"], "application/octet-stream");
    assert_eq!(
        echoed["msg"], "signature ok",
        "unsigned body, accepted: {echoed}"
    );
}

#[test]
fn a_50_mib_download_to_a_file_and_through_a_callback_is_exact() {
    let fake = fake();
    let client = client(&fake.url());
    let size = 50 * 1024 * 1024;
    let path = download_path(size);
    let uri = format!("enos-connect://fake/{size}.bin");
    let (bytes, expected) = fake.file_digest(&uri).unwrap();
    assert_eq!(bytes, size);

    let dir = TempDir::new();
    let file = std::fs::File::create(dir.path.join("out.bin")).unwrap();
    let mut request = Request::new("GET", &path).unwrap();
    request.output_fd(file.as_raw_fd()).unwrap();
    let response = client.send(&request).unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.body().is_empty(), "streamed, not kept");
    assert_eq!(response.header("content-length"), Some("52428800"));
    drop(file);
    let written = std::fs::read(dir.path.join("out.bin")).unwrap();
    assert_eq!(written.len() as u64, size);
    assert_eq!(sha256_hex(&written), expected);

    let hasher = Arc::new(Mutex::new((Sha256::new(), 0u64, 0usize)));
    let seen = hasher.clone();
    let mut request = Request::new("GET", &path).unwrap();
    request.output_callback(move |chunk| {
        let mut state = seen.lock().unwrap();
        state.0.update(chunk);
        state.1 += chunk.len() as u64;
        state.2 += 1;
        Ok(())
    });
    client.send(&request).unwrap();
    drop(request);
    let (digest, total, calls) = Arc::try_unwrap(hasher).ok().unwrap().into_inner().unwrap();
    assert_eq!(total, size);
    assert_eq!(hex::encode(digest.finalize()), expected);
    assert!(calls > 1, "delivered as it arrived, in chunks");
    // Larger than the client's limit for answers kept in memory, and fine.
    let mut small = builder(&fake.url());
    small.max_response_bytes(1024).unwrap();
    let small = small.build().unwrap();
    let mut request = Request::new("GET", &download_path(4096)).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    request.output_callback(move |chunk| {
        counted.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok(())
    });
    small.send(&request).unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        4096,
        "no size limit on an output"
    );
}

#[test]
fn a_download_cut_after_1_mib_completes_through_one_range_request() {
    let fake = fake();
    let client = client(&fake.url());
    let size = 5 * 1024 * 1024 + 17;
    let uri = format!("enos-connect://fake/{size}.bin");
    let (_, expected) = fake.file_digest(&uri).unwrap();
    fake.inject(Fault::CutDownload(1024 * 1024));
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let mut request = Request::new("GET", &download_path(size)).unwrap();
    request.output_callback(move |chunk| {
        sink.lock().unwrap().extend_from_slice(chunk);
        Ok(())
    });
    let response = client.send(&request).unwrap();
    assert_eq!(response.status(), 200, "the first answer's status");
    assert_eq!(response.attempts(), 2, "one resume");
    let received = received.lock().unwrap();
    assert_eq!(received.len() as u64, size, "every byte exactly once");
    assert_eq!(sha256_hex(&received), expected);
    let stats = fake.stats();
    assert_eq!((stats.downloads, stats.range_requests), (2, 1));
}

#[test]
fn a_file_changed_on_the_server_mid_download_ends_the_call() {
    let fake = Arc::new(fake());
    let client = client(&fake.url());
    fake.inject(Fault::CutDownload(256 * 1024));
    let changer = fake.clone();
    let mut request = Request::new("GET", &download_path(2 * 1024 * 1024)).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let count = written.clone();
    request.output_callback(move |chunk| {
        // The file changes while the first answer is being read.
        changer.set_file_version(7);
        count.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok(())
    });
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse);
    assert!(error.message().contains("changed on the server"), "{error}");
    assert_eq!(
        written.load(Ordering::SeqCst),
        256 * 1024,
        "nothing of the new file"
    );
}

#[test]
fn a_download_without_ranges_is_not_resumed() {
    // A server that cuts its answer and offers no ranges.
    let server = RawServer::start(|mut stream| {
        let request = read_request(&mut stream);
        if request.contains("/token/get") {
            let _ = stream.write_all(&http_answer(
                "200 OK",
                "application/json",
                token_json("tok-for-files-0001", 7200).as_bytes(),
            ));
            return;
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n");
        let _ = stream.write_all(&[7u8; 400]);
    });
    let client = client(&server.url());
    let mut request = Request::new("GET", "/files/x").unwrap();
    request.output_callback(|_| Ok(()));
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadResponse, "{error}");
    assert!(error.message().contains("truncated"), "{error}");
}

#[test]
fn an_output_callback_that_stops_cancels_the_call_and_the_client_goes_on() {
    let fake = fake();
    let client = client(&fake.url());
    let mut request = Request::new("GET", &download_path(10 * 1024 * 1024)).unwrap();
    request.output_callback(|_| Err(std::io::Error::other("enough")));
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert!(
        error.message().contains("output callback stopped"),
        "{error}"
    );
    assert_eq!(
        client
            .request("GET", "/fake/v1/echo", None, b"")
            .unwrap()
            .status(),
        200,
        "the next call works"
    );
}

#[test]
fn a_full_disk_is_an_io_error_naming_the_descriptor() {
    let fake = fake();
    let client = client(&fake.url());
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut request = Request::new("GET", &download_path(100_000)).unwrap();
    request.output_fd(full.as_raw_fd()).unwrap();
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io);
    assert!(
        error
            .message()
            .contains(&format!("file descriptor {}", full.as_raw_fd()))
            && error.message().contains("No space left"),
        "{error}"
    );
}

#[test]
fn a_non_2xx_answer_goes_to_the_output_too() {
    let fake = fake();
    let client = client(&fake.url());
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let mut request = Request::new(
        "GET",
        "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/missing.bin",
    )
    .unwrap();
    request.output_callback(move |chunk| {
        sink.lock().unwrap().extend_from_slice(chunk);
        Ok(())
    });
    let response = client.send(&request).unwrap();
    assert_eq!(response.status(), 404);
    assert!(String::from_utf8_lossy(&received.lock().unwrap()).contains("file not found"));
}

#[test]
fn a_refused_token_renews_and_resends_an_upload_reading_the_files_again() {
    for refusal in [TokenRefusal::Http401, TokenRefusal::Status1203] {
        let fake = fake();
        fake.set_token_refusal(refusal);
        let client = client(&fake.url());
        let old = support::client(&fake.url()).access_token().unwrap();
        client.access_token().unwrap();
        support::client(&fake.url()).refresh_token(&old).unwrap(); // retires it
        let (_dir, file, content) = temporary_file("data.bin", 200_000);
        let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
        request
            .part("enos-message", Some("application/json"), b"{}".to_vec())
            .unwrap()
            .file_part("enos-file", None, None, &file)
            .unwrap();
        let response = client.send(&request).unwrap();
        assert_eq!(response.status(), 200, "{refusal:?}");
        assert_eq!(response.attempts(), 2, "{refusal:?}");
        assert_eq!(parts_seen(&response)[1]["sha256"], sha256_hex(&content));
        assert_eq!(client.counters().token_renewals, 1);
    }
}

#[test]
fn a_refused_token_on_a_streamed_download_is_renewed_before_a_byte_is_written() {
    let fake = fake();
    fake.set_token_refusal(TokenRefusal::Status1203);
    let client = client(&fake.url());
    let old = client.access_token().unwrap();
    support::client(&fake.url()).refresh_token(&old).unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let mut request = Request::new("GET", &download_path(3000)).unwrap();
    request.output_callback(move |chunk| {
        sink.lock().unwrap().extend_from_slice(chunk);
        Ok(())
    });
    let response = client.send(&request).unwrap();
    assert_eq!((response.status(), response.attempts()), (200, 2));
    let (_, expected) = fake.file_digest("enos-connect://fake/3000.bin").unwrap();
    assert_eq!(
        sha256_hex(&received.lock().unwrap()),
        expected,
        "only the file"
    );
}

#[test]
fn a_callback_part_is_pulled_to_its_exact_length_and_never_replayed() {
    let fake = fake();
    let client = client(&fake.url());
    let data: Arc<Vec<u8>> = Arc::new((0..100_000u32).map(|i| i as u8).collect());
    let make = |declared: u64, actual: usize| {
        let data = data.clone();
        let position = Arc::new(AtomicUsize::new(0));
        let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
        request
            .part("enos-message", Some("application/json"), b"{}".to_vec())
            .unwrap()
            .reader_part(
                "enos-file",
                Some("stream.bin"),
                None,
                declared,
                move |buffer| {
                    let at = position.load(Ordering::SeqCst);
                    let n = (actual - at).min(buffer.len()).min(7000);
                    buffer[..n].copy_from_slice(&data[at..at + n]);
                    position.fetch_add(n, Ordering::SeqCst);
                    Ok(n)
                },
            )
            .unwrap();
        request
    };
    let response = client.send(&make(100_000, 100_000)).unwrap();
    assert_eq!(parts_seen(&response)[1]["sha256"], sha256_hex(&data));
    let short = client.send(&make(100_000, 60_000)).unwrap_err();
    assert!(
        short
            .message()
            .contains("ended after 60000 of the 100000 bytes"),
        "{short}"
    );
    let long = client.send(&make(60_000, 100_000)).unwrap_err();
    assert!(
        long.message().contains("more than the 60000 bytes"),
        "{long}"
    );
    assert_eq!(
        fake.stats().uploads,
        1,
        "the fake never got a wrong body to judge"
    );

    // A refused token: the refusal is the answer, the part is not pulled twice.
    let old = client.access_token().unwrap();
    support::client(&fake.url()).refresh_token(&old).unwrap();
    let response = client.send(&make(100_000, 100_000)).unwrap();
    assert_eq!((response.status(), response.attempts()), (401, 1));
}

#[test]
fn a_read_callback_that_stops_cancels_the_upload() {
    let fake = fake();
    let client = client(&fake.url());
    let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
    request
        .part("enos-message", Some("application/json"), b"{}".to_vec())
        .unwrap()
        .reader_part("enos-file", Some("x.bin"), None, 1000, |_| {
            Err(std::io::Error::other("user pressed stop"))
        })
        .unwrap();
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
    assert!(error.message().contains("user pressed stop"), "{error}");
}

/// A request whose first part, when it is sent, does `change` to `path`,
/// the file of the second part: the file was opened and measured already.
fn upload_changing(
    path: &std::path::Path,
    change: impl Fn(&std::path::Path) + Send + Sync + 'static,
) -> Request {
    let target = path.to_path_buf();
    let done = Arc::new(AtomicUsize::new(0));
    let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
    request
        .reader_part(
            "enos-message",
            None,
            Some("application/json"),
            2,
            move |buffer| {
                if done.fetch_add(1, Ordering::SeqCst) == 0 {
                    change(&target);
                    buffer[..2].copy_from_slice(b"{}");
                    return Ok(2);
                }
                Ok(0)
            },
        )
        .unwrap()
        .file_part("enos-file", None, None, path)
        .unwrap();
    request
}

#[test]
fn a_file_that_changes_while_sent_ends_the_call_without_a_short_upload() {
    let fake = fake();
    let client = client(&fake.url());
    type Change = fn(&std::path::Path);
    let cases: [(&str, Change); 3] = [
        ("grew", |path| {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            file.write_all(b"one more line\n").unwrap();
        }),
        ("shrank", |path| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(1000)
                .unwrap();
        }),
        ("was rewritten", |path| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let content = std::fs::read(path).unwrap();
            std::fs::write(path, content).unwrap();
        }),
    ];
    for (how, change) in cases {
        let (_dir, path, _) = temporary_file("growing.log", 4 * 1024 * 1024);
        let error = client.send(&upload_changing(&path, change)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Io, "{error}");
        assert!(
            error
                .message()
                .contains(&format!("growing.log {how} while it was sent")),
            "{error}"
        );
    }
    assert_eq!(
        fake.stats().uploads,
        0,
        "the fake never got a whole body to judge"
    );

    let (_dir, path, _) = temporary_file("vanishing.log", 100);
    let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
    request.file_part("enos-file", None, None, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io);
    assert!(
        error.message().contains("vanishing.log: no such file"),
        "{error}"
    );
}

#[test]
fn progress_is_reported_at_most_every_100_ms_and_once_at_the_end() {
    let fake = fake();
    let client = client(&fake.url());
    let (_dir, path, content) = temporary_file("up.bin", 3 * 1024 * 1024);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let mut request = Request::new("POST", MEASUREPOINTS).unwrap();
    request
        .part("enos-message", Some("application/json"), b"{}".to_vec())
        .unwrap()
        .file_part("enos-file", None, None, &path)
        .unwrap()
        .progress(move |progress| {
            seen.lock()
                .unwrap()
                .push((std::time::Instant::now(), progress))
        });
    client.send(&request).unwrap();
    let reports = reports.lock().unwrap();
    let last = reports.last().unwrap().1;
    assert!(
        last.send_total > content.len() as u64,
        "the whole multipart body"
    );
    assert_eq!(last.sent, last.send_total);
    assert!(last.received > 0 && last.receive_total == Some(last.received));
    for pair in reports[..reports.len() - 1].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_time_cap_ends_a_streamed_call() {
    let fake = fake();
    let client = client(&fake.url());
    client.access_token().unwrap();
    fake.inject(Fault::Delay(std::time::Duration::from_secs(3)));
    let mut request = Request::new("GET", &download_path(1000)).unwrap();
    request.output_callback(|_| Ok(()));
    request
        .timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let started = std::time::Instant::now();
    let error = client.send(&request).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
