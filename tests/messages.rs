//! What reaches people: error messages and log lines quote a hostile
//! gateway's text without its tokens and without characters that forge or
//! reorder log lines, over real sockets against the fake gateway.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enos_token::ErrorKind;
use enos_token::Logger;
use enos_token::fake::Fault;
use support::*;

fn raw(status: u16, body: String) -> Fault {
    Fault::Raw {
        status,
        content_type: "application/json",
        body: body.into_bytes(),
    }
}

#[test]
fn a_gateway_quoting_tokens_never_gets_them_into_messages() {
    let fake = fake();
    let client = client(&fake.url());
    let token = client.get_token().unwrap().access_token.clone();

    // The envelope's msg quotes the token the request sent.
    fake.inject(raw(
        200,
        format!(r#"{{"status":1204,"msg":"refresh failed for {token}"}}"#),
    ));
    let e = client.refresh_token(&token).unwrap_err();
    assert_eq!(e.service_status(), 1204);
    assert!(!e.message().contains(&token), "{}", e.message());
    assert!(e.message().contains("[token]"), "{}", e.message());

    // A body that is not the envelope, quoting some token.
    let other = "tok-0123456789abcdef0123456789";
    fake.inject(raw(
        999,
        format!(r#"{{"error":"nope","data":{{"accessToken":"{other}"}}}}"#),
    ));
    let e = client.get_token().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus);
    assert!(!e.message().contains(other), "{}", e.message());

    // A message in prose.
    fake.inject(raw(
        500,
        format!(r#"{{"status":1005,"msg":"busy; accessToken {other} kept"}}"#),
    ));
    let e = client.get_token().unwrap_err();
    assert!(!e.message().contains(other), "{}", e.message());
}

#[test]
fn the_managed_path_keeps_the_cached_token_out_of_its_log() {
    let fake = fake_with(|config| config.token_lifetime = Duration::from_secs(3));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut builder = builder(&fake.url());
    builder.refresh_margin(Duration::from_secs(2));
    builder.logger(Some(Logger::new(move |_, line| {
        sink.lock().unwrap().push(line.to_string())
    })));
    let client = builder.build().unwrap();
    let token = client.access_token().unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // due
    fake.inject(raw(
        200,
        format!(r#"{{"status":1204,"msg":"cannot refresh {token}"}}"#),
    ));
    let refreshed = client.access_token().unwrap();
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("refresh refused")),
        "{lines:?}"
    );
    for line in lines.iter() {
        assert!(
            !line.contains(&token) && !line.contains(&refreshed),
            "{line}"
        );
    }
}

#[test]
fn quoted_text_cannot_forge_or_reorder_log_lines() {
    let fake = fake();
    let client = client(&fake.url());
    let msg = "denied\u{2028}2026-11-26 INFO all good\u{2029}\u{202E}txt.exe\u{200B}\u{0085}";
    fake.inject(raw(
        200,
        serde_json::json!({"status": 1004, "msg": msg}).to_string(),
    ));
    let e = client.get_token().unwrap_err();
    let shown = e.message();
    assert!(
        !shown.contains(['\u{2028}', '\u{2029}', '\u{202E}', '\u{200B}', '\u{0085}']),
        "{shown:?}"
    );
    assert!(shown.contains("denied 2026-11-26 INFO all good"), "{shown}");
}

/// `text` as its letters and digits, lower case, once `%XX` is decoded (as
/// often as it was applied), HTML character references too, and every
/// other character dropped: what a reader could still make out.
fn letters_and_digits(text: &str) -> String {
    let mut text = text.to_string();
    loop {
        let mut decoded = String::new();
        let mut rest = text.as_str();
        while let Some(c) = rest.chars().next() {
            let hex = rest
                .get(1..3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| c == '%');
            let entity = rest.strip_prefix("&#").and_then(|r| {
                let (number, _) = r.split_once(';')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                Some((char::from_u32(code)?, number.len() + 3))
            });
            if let Some(byte) = hex {
                decoded.push(byte as char);
                rest = &rest[3..];
            } else if let Some((c, width)) = entity {
                decoded.push(c);
                rest = &rest[width..];
            } else {
                decoded.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if decoded == text {
            break;
        }
        text = decoded;
    }
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// No run of 8 of `token`'s letters and digits in what a reader of
/// `shown` could make out (see [`letters_and_digits`]).
fn assert_no_run_of(token: &str, shown: &str) {
    let seen = letters_and_digits(shown);
    let token = letters_and_digits(token);
    for run in token.as_bytes().windows(8) {
        let run = std::str::from_utf8(run).unwrap();
        assert!(!seen.contains(run), "{run:?} of the token in {shown:?}");
    }
}

#[test]
fn a_token_in_disguise_never_reaches_a_message_or_a_log_line() {
    let fake = fake();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut builder = builder(&fake.url());
    let seen = lines.clone();
    builder.logger(Some(Logger::new(move |_, line| {
        seen.lock().unwrap().push(line.to_string())
    })));
    let client = builder.build().unwrap();
    // Handed out by a raw Get, then quoted in later failures.
    let token = client.get_token().unwrap().access_token.clone();
    let (head, tail) = token.split_at(token.len() / 2);
    let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let dashed: String = token
        .as_bytes()
        .chunks(4)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    let twice: String = token.bytes().map(|b| format!("%25{b:02X}")).collect();
    let entities: String = token.bytes().map(|b| format!("&#{b};")).collect();
    let disguises = [
        format!("token {head}\\r\\n{tail} is retired"), // split by a line break
        format!("token {head} {tail} is retired"),      // split by a space
        format!("token {encoded} is retired"),          // URL-encoded
        format!("token {} is retired", token.to_uppercase()), // another case
        format!("token {dashed} is retired"),           // a dash every 4
        format!("token {head}\u{a0}{tail} is retired"), // a no-break space
        format!("token {twice} is retired"),            // URL-encoded twice
        format!("token {entities} is retired"),         // HTML references
        // The 200-character cut falls inside the token.
        format!("{}{token}", "x".repeat(200 - 20)),
    ];
    for disguise in disguises {
        fake.inject(raw(200, format!(r#"{{"status":1204,"msg":"{disguise}"}}"#)));
        let e = client.refresh_token("some-other-token-0000").unwrap_err();
        assert_eq!(e.service_status(), 1204, "{e}");
        assert_no_run_of(&token, e.message());
        // The same disguises in a body that is not an envelope.
        fake.inject(raw(502, disguise.clone()));
        let e = client.get_token().unwrap_err();
        assert_no_run_of(&token, e.message());
    }
    let lines = lines.lock().unwrap();
    assert!(lines.len() >= 8, "{lines:?}");
    for line in lines.iter() {
        assert_no_run_of(&token, line);
    }
}

#[test]
fn a_malformed_url_is_never_echoed_with_its_password() {
    for url in [
        "http//user:pw-s3cret@host",
        "user:pw-s3cret@host:80",
        "http:/user:pw-s3cret@h",
    ] {
        let e = enos_token::ClientBuilder::new(url, "k", "s").unwrap_err();
        assert!(!e.message().contains("pw-s3cret"), "{url}: {e}");
        let e = enos_token::get_access_token(url, "k", "s").unwrap_err();
        assert!(!e.message().contains("pw-s3cret"), "{url}: {e}");
    }
}
