//! The two SHA-256 rules of the EnOS gateway (`token-service.md`):
//!
//! * `encryption` for Get and Refresh:
//!   `hex(sha256(appKey + timestamp + appSecret))`;
//! * `apim-signature` for API calls:
//!   `hex(sha256(accessToken + paramsData + timestamp + appSecret))`, where
//!   `paramsData` is the sorted, decoded query as `name1value1name2value2…`
//!   followed by the request body exactly as sent **when it is a JSON body**
//!   ([`signs_body`] owns that rule; a multipart, binary or form body is not
//!   signed, as the docs' words "if the request has a JSON body" say).
//!
//! Both hash the parts in sequence, so the secret is never copied into a
//! concatenated buffer.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::secret::AppSecret;

/// The `encryption` field of a Get or Refresh request.
pub fn encryption(app_key: &str, timestamp_ms: i64, app_secret: &AppSecret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(app_key.as_bytes());
    hasher.update(decimal(timestamp_ms).as_bytes());
    hasher.update(app_secret.expose().as_bytes());
    lowercase_hex(&hasher.finalize())
}

/// Whether a body of this `Content-Type` is part of `apim-signature`: a
/// JSON body (`application/json`, or any `type/subtype+json`; case and
/// parameters such as `charset` ignored). Every other body (multipart,
/// binary, form) is not: the signature then covers the query only. The
/// docs say "if the request has a JSON body"; EnOS's own SDKs never sign
/// file parts. The library signs, and the fake gateway checks, by this
/// one function.
pub fn signs_body(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = media_type.split_once('/') else {
        return false;
    };
    let (kind, subtype) = (kind.trim(), subtype.trim().as_bytes());
    let application_json =
        kind.eq_ignore_ascii_case("application") && subtype.eq_ignore_ascii_case(b"json");
    let structured_json =
        subtype.len() >= 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json");
    !kind.is_empty() && (application_json || structured_json)
}

/// The `apim-signature` header of an API call.
///
/// `query` is the raw query string without the leading `?` (empty for none);
/// `body` the exact bytes of the request body when it is signed (see
/// [`signs_body`]), else empty.
pub fn api_signature(
    access_token: &str,
    query: &str,
    body: &[u8],
    timestamp_ms: i64,
    app_secret: &AppSecret,
) -> String {
    api_signature_streaming(access_token, query, timestamp_ms, app_secret, |hasher| {
        hasher.update(body);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {})
}

/// [`api_signature`] with the body fed to the hash by `feed_body` (a file
/// read as it is hashed); its error ends the signing.
pub(crate) fn api_signature_streaming<E>(
    access_token: &str,
    query: &str,
    timestamp_ms: i64,
    app_secret: &AppSecret,
    feed_body: impl FnOnce(&mut Sha256) -> Result<(), E>,
) -> Result<String, E> {
    let mut hasher = Sha256::new();
    hasher.update(access_token.as_bytes());
    for (name, value) in sorted_parameters(query) {
        hasher.update(name.as_bytes());
        hasher.update(value.as_bytes());
    }
    feed_body(&mut hasher)?;
    hasher.update(decimal(timestamp_ms).as_bytes());
    hasher.update(app_secret.expose().as_bytes());
    Ok(lowercase_hex(&hasher.finalize()))
}

/// A SHA-256 digest as 64 lowercase hex digits, in one allocation
/// (`hex::encode` collects characters one by one: this runs on every call).
fn lowercase_hex(digest: &[u8]) -> String {
    let mut text = [0u8; 64];
    hex::encode_to_slice(digest, &mut text).expect("a SHA-256 digest is 32 bytes");
    String::from_utf8(text.to_vec()).expect("hex digits are ASCII")
}

/// The query's parameters, decoded, in the order the signature uses.
///
/// * A leading `?` is ignored. Parameters are separated by `&`; empty
///   segments (`a=1&&b=2`) are skipped.
/// * A segment without `=` is a parameter with an empty value (`flag` signs as `flag`).
/// * `+` means a space; `%XX` escapes are decoded; a `%` not followed by two hex
///   digits stays as it is; decoded bytes that are not UTF-8 become U+FFFD.
/// * Sorted by name in byte order; parameters with the same name keep their order.
pub fn sorted_query_parameters(query: &str) -> Vec<(String, String)> {
    sorted_parameters(query)
        .into_iter()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// [`sorted_query_parameters`], borrowing what needs no decoding (most
/// names and values): this runs on every call.
fn sorted_parameters(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut parameters: Vec<(Cow<'_, str>, Cow<'_, str>)> = query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (decode_query_component(name), decode_query_component(value))
        })
        .collect();
    // `sort_by` is stable: equal names keep their order in the query.
    parameters.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    parameters
}

/// `timestamp_ms` in decimal, without an allocation.
fn decimal(timestamp_ms: i64) -> DecimalText {
    let mut text = DecimalText {
        digits: [0; 20],
        start: 20,
    };
    let negative = timestamp_ms < 0;
    let mut left = timestamp_ms.unsigned_abs();
    loop {
        text.start -= 1;
        text.digits[text.start] = b'0' + (left % 10) as u8;
        left /= 10;
        if left == 0 {
            break;
        }
    }
    if negative {
        text.start -= 1;
        text.digits[text.start] = b'-';
    }
    text
}

/// An `i64` as decimal text (at most 20 bytes with its sign).
struct DecimalText {
    digits: [u8; 20],
    start: usize,
}

impl DecimalText {
    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

fn decode_query_component(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(byte) => {
                    decoded.push(byte);
                    i += 3;
                }
                None => {
                    decoded.push(b'%');
                    i += 1;
                }
            },
            other => {
                decoded.push(other);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_hashed_as_their_decimal_text() {
        for value in [0, 7, 1572574909697, -1, -1572574909697, i64::MAX, i64::MIN] {
            assert_eq!(decimal(value).as_bytes(), value.to_string().as_bytes());
        }
    }

    #[test]
    fn only_json_bodies_are_signed() {
        for json in [
            "application/json",
            "application/json;charset=UTF-8",
            "Application/JSON; charset=utf-8",
            " application/json ",
            "application/problem+json",
            "application/vnd.enos.v2+JSON;q=1",
        ] {
            assert!(signs_body(json), "{json}");
        }
        for other in [
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "text/plain",
            "text/json",
            "application/jsonp",
            "json",
            "",
            "/json",
            "application/json-seq",
        ] {
            assert!(!signs_body(other), "{other}");
        }
    }

    #[test]
    fn query_decoding_rules() {
        assert_eq!(
            sorted_query_parameters("k3=v3&k1=v1&k2=v2"),
            vec![
                ("k1".into(), "v1".into()),
                ("k2".into(), "v2".into()),
                ("k3".into(), "v3".into())
            ]
        );
        assert_eq!(
            sorted_query_parameters("b=2&a=x+y%20z&&flag&a=first%2Bplus"),
            vec![
                ("a".into(), "x y z".into()),
                ("a".into(), "first+plus".into()),
                ("b".into(), "2".into()),
                ("flag".into(), "".into()),
            ]
        );
        assert_eq!(
            sorted_query_parameters("p=100%&q=%zz&r=%4"),
            vec![
                ("p".into(), "100%".into()),
                ("q".into(), "%zz".into()),
                ("r".into(), "%4".into())
            ]
        );
        assert_eq!(
            sorted_query_parameters("n=%E4%B8%AD&bad=%FF"),
            vec![("bad".into(), "\u{FFFD}".into()), ("n".into(), "中".into())]
        );
        assert!(sorted_query_parameters("").is_empty());
    }
}
