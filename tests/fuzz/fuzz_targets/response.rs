//! The response parser and our HTTP/1.1 reader on arbitrary bytes: neither
//! may panic; the HTTP reader's body is never longer than what follows the
//! head or than an announced length. And a token
//! it accepts must be what the C API promises (non-empty visible ASCII of at
//! most 8 KiB, a non-negative lifetime). The first two bytes choose the HTTP
//! status, so non-2xx paths are fuzzed too.
#![no_main]

use enos_token::fuzzing::{
    HttpAnswer, MAX_TOKEN_BYTES, parse_token_answer, read_whole_http_answer,
    sorted_query_parameters,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [high, low, rest @ ..] => (100 + u16::from_be_bytes([*high, *low]) % 500, rest),
        _ => (200, data),
    };
    let answer = HttpAnswer {
        status,
        body: body.to_vec(),
    };
    match parse_token_answer(&answer) {
        Ok(token) => {
            assert!((200..300).contains(&status));
            assert!(!token.access_token.is_empty());
            assert!(token.access_token.len() <= MAX_TOKEN_BYTES);
            assert!(token.access_token.bytes().all(|b| b.is_ascii_graphic()));
            assert!(token.expire_s >= 0);
        }
        Err(error) => assert!(!error.message().is_empty()),
    }
    // Our HTTP/1.1 reads the same bytes as a whole answer off the wire.
    read_whole_http_answer(data);
    // The query decoder sees arbitrary text too.
    if let Ok(query) = std::str::from_utf8(body) {
        let _ = sorted_query_parameters(query);
    }
});
