//! The token record in a shared file: its layout, its encoding, and the
//! checks a record read back must pass before its token is served.
//!
//! The checksum only tells a torn or foreign record from a whole one: anyone
//! who can write the file can compute it. What makes a record trusted is
//! that it passes the same checks as a gateway answer ([`check`]).

use super::{KEY_CHECK, MAGIC};
use crate::response::MAX_TOKEN_BYTES;

/// Offsets of the record's 8-byte little-endian words.
pub(super) const GENERATION: usize = 8;
const SENT_WALL_MS: usize = 24;
const EXPIRE_S: usize = 32;
/// Token length, and [`INVALIDATED`].
const LENGTH: usize = 40;
const PAUSE_UNTIL_WALL_MS: usize = 48;
const CHECKSUM: usize = 56;
pub(super) const TOKEN: usize = 64;
/// The largest record: header and the longest token.
pub(super) const RECORD_BYTES: usize = TOKEN + MAX_TOKEN_BYTES;
pub(super) const INVALIDATED: u64 = 1 << 63;

/// A token lifetime beyond this is not believed (the gateway's is 2 hours).
pub(super) const MAX_EXPIRE_S: i64 = 30 * 24 * 3600;
/// A record "sent" later than now plus this is not believed: every process
/// of a host reads the same wall clock.
pub(super) const FUTURE_SLACK_MS: i64 = 10_000;

/// The token in a shared file, checked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SharedToken {
    pub(crate) generation: u64,
    pub(crate) token: String,
    pub(crate) sent_wall_ms: i64,
    pub(crate) expire_s: i64,
    pub(crate) invalidated: bool,
    pub(crate) pause_until_wall_ms: i64,
}

impl std::fmt::Debug for SharedToken {
    // Never the token itself: a hint of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedToken")
            .field("generation", &self.generation)
            .field("token", &crate::log::token_hint(&self.token))
            .field("sent_wall_ms", &self.sent_wall_ms)
            .field("expire_s", &self.expire_s)
            .field("invalidated", &self.invalidated)
            .field("pause_until_wall_ms", &self.pause_until_wall_ms)
            .finish()
    }
}

impl Drop for SharedToken {
    fn drop(&mut self) {
        // SAFETY: zero bytes keep the text valid UTF-8.
        crate::secret::wipe(unsafe { self.token.as_bytes_mut() });
    }
}

/// What a record's bytes turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// Never written (a new or re-created file), or too short to hold one.
    Empty,
    /// Torn by a concurrent write, or damaged: the checksum does not match.
    Torn,
    /// Whole, but not believable; the reason, without the token.
    Refused(String),
    Token(SharedToken),
}

fn word(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// The record for `token`, ready for one `pwrite` at offset 0.
pub(super) fn encode(key_check: u64, generation: u64, token: &SharedToken) -> Vec<u8> {
    let bytes = token.token.as_bytes();
    let fields = fields_of(token);
    let mut record = vec![0u8; TOKEN + bytes.len()];
    let mut put = |offset: usize, value: u64| {
        record[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    };
    put(0, MAGIC);
    put(GENERATION, generation);
    put(KEY_CHECK, key_check);
    put(SENT_WALL_MS, fields[0]);
    put(EXPIRE_S, fields[1]);
    put(LENGTH, fields[2]);
    put(PAUSE_UNTIL_WALL_MS, fields[3]);
    put(CHECKSUM, checksum(key_check, generation, &fields, bytes));
    record[TOKEN..].copy_from_slice(bytes);
    record
}

fn fields_of(token: &SharedToken) -> [u64; 4] {
    let flags = if token.invalidated { INVALIDATED } else { 0 };
    [
        token.sent_wall_ms as u64,
        token.expire_s as u64,
        token.token.len() as u64 | flags,
        token.pause_until_wall_ms as u64,
    ]
}

/// Decodes and checks the record in `bytes` (what a `pread` of
/// [`RECORD_BYTES`] returned), as read when the wall clock shows `now_wall_ms`.
pub(super) fn decode(bytes: &[u8], key_check: u64, now_wall_ms: i64) -> Decoded {
    if bytes.len() < TOKEN || word(bytes, 0) == 0 {
        return Decoded::Empty;
    }
    if word(bytes, 0) != MAGIC || word(bytes, KEY_CHECK) != key_check {
        return Decoded::Refused("it was not written for this gateway and app key".into());
    }
    let length_and_flags = word(bytes, LENGTH);
    let length = (length_and_flags & !INVALIDATED) as usize;
    if length == 0 || length > MAX_TOKEN_BYTES || TOKEN + length > bytes.len() {
        return Decoded::Torn;
    }
    let generation = word(bytes, GENERATION);
    let fields = [
        word(bytes, SENT_WALL_MS),
        word(bytes, EXPIRE_S),
        length_and_flags,
        word(bytes, PAUSE_UNTIL_WALL_MS),
    ];
    let token_bytes = &bytes[TOKEN..TOKEN + length];
    if word(bytes, CHECKSUM) != checksum(key_check, generation, &fields, token_bytes) {
        return Decoded::Torn;
    }
    // The same rules as a gateway answer's token: it goes into headers.
    if !token_bytes.iter().all(u8::is_ascii_graphic) {
        return Decoded::Refused("its token holds spaces, control or non-ASCII characters".into());
    }
    let (sent_wall_ms, expire_s, pause_until_wall_ms) =
        (fields[0] as i64, fields[1] as i64, fields[3] as i64);
    if !(0..=MAX_EXPIRE_S).contains(&expire_s) {
        return Decoded::Refused(format!("its token lifetime {expire_s} s is out of range"));
    }
    let latest = now_wall_ms.saturating_add(FUTURE_SLACK_MS);
    if sent_wall_ms <= 0 || sent_wall_ms > latest {
        return Decoded::Refused(format!(
            "its token was sent {} ms from now, in the future",
            sent_wall_ms.saturating_sub(now_wall_ms)
        ));
    }
    let pause_limit = latest.saturating_add(super::PAUSE_AFTER_FAILED_REFRESH.as_millis() as i64);
    if pause_until_wall_ms < 0 || pause_until_wall_ms > pause_limit {
        return Decoded::Refused("its pause after a failed refresh is out of range".into());
    }
    Decoded::Token(SharedToken {
        generation,
        token: String::from_utf8(token_bytes.to_vec()).expect("checked ASCII"),
        sent_wall_ms,
        expire_s,
        invalidated: length_and_flags & INVALIDATED != 0,
        pause_until_wall_ms,
    })
}

/// FNV-1a over the record: catches a torn or damaged record (not a forged one).
fn checksum(key_check: u64, generation: u64, fields: &[u64; 4], token: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    key_check.to_le_bytes().into_iter().for_each(&mut eat);
    generation.to_le_bytes().into_iter().for_each(&mut eat);
    fields
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .for_each(&mut eat);
    token.iter().copied().for_each(&mut eat);
    hash
}
