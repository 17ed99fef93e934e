//! Known tokens kept out of messages, whatever their disguise.
//!
//! A client remembers a fingerprint of every token it sent, received or
//! took from a shared file (its last [`REMEMBERED`] tokens): the keyed
//! hashes of the 8-character runs of its letters and digits (lower case),
//! and of its 5-byte runs, never the tokens themselves. Text from the
//! network is scrubbed before it is cleaned or cut: it is read as its
//! letters and digits only, lower case, with `%XX` (also twice over:
//! `%252D`) and HTML character references (`&#45;`, `&#x2d;`) decoded and
//! named ones (`&nbsp;`) skipped, so that a known token is found whatever
//! separates its characters (white space, dashes, no-break spaces), its
//! case or its encoding; every such run of 8 is replaced where it stands.
//! Where a message is cut, a trailing word holding 5 bytes of a known token
//! is dropped. (Hex or base64 of a token is not looked for.)

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use crate::fork::ForkSafeMutex;

/// How many tokens a client remembers.
const REMEMBERED: usize = 32;
/// A run of this many bytes of a known token is never shown.
const RUN: usize = 8;
/// At a cut, a word holding this many bytes of a known token is dropped.
const TAIL_RUN: usize = 5;
/// What replaces a known token in a message.
pub(crate) const REDACTED: &str = "[token]";

/// One hasher for the process, with random keys: fingerprints are
/// comparable within the process and useless outside it.
fn hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new)
}

fn hash(bytes: &[u8]) -> u64 {
    hasher().hash_one(bytes)
}

/// The hashes of every run of `RUN` and of `TAIL_RUN` bytes of some tokens.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    runs: HashSet<u64>,
    tail_runs: HashSet<u64>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("runs", &self.runs.len())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor for `tokens` (shorter than 8 bytes: only whole, elsewhere).
    pub(crate) fn for_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Redactor::default();
        for token in tokens {
            redactor.add(token);
        }
        redactor
    }

    fn add(&mut self, token: &str) {
        let bytes = token.as_bytes();
        let letters_and_digits: Vec<u8> = bytes
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_lowercase)
            .collect();
        self.runs.extend(letters_and_digits.windows(RUN).map(hash));
        self.tail_runs.extend(bytes.windows(TAIL_RUN).map(hash));
    }

    fn merge(&mut self, other: &Redactor) {
        self.runs.extend(&other.runs);
        self.tail_runs.extend(&other.tail_runs);
    }

    /// `text` with every run of 8 bytes of a known token replaced by
    /// [`REDACTED`], also when white space splits it or `%XX` encodes it.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.runs.is_empty() {
            return text.to_string();
        }
        // What the text says in letters and digits (see the module), and
        // where each of them came from.
        let raw = text.as_bytes();
        let (mut view, mut origin) = (Vec::with_capacity(raw.len()), Vec::with_capacity(raw.len()));
        let mut at = 0;
        while at < raw.len() {
            let (value, width) = decoded_at(text, at);
            if let Some(value) = value.filter(u8::is_ascii_alphanumeric) {
                view.push(value.to_ascii_lowercase());
                origin.push((at, at + width));
            }
            at += width;
        }
        let mut hidden = vec![false; raw.len()];
        for (start, window) in view.windows(RUN).enumerate() {
            if self.runs.contains(&hash(window)) {
                let (from, to) = (origin[start].0, origin[start + RUN - 1].1);
                hidden[from..to].iter_mut().for_each(|h| *h = true);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut index = 0;
        while index < raw.len() {
            if hidden[index] {
                out.push_str(REDACTED);
                while index < raw.len() && hidden[index] {
                    index += 1;
                }
            } else {
                let c = text[index..].chars().next().expect("a char boundary");
                out.push(c);
                index += c.len_utf8();
            }
        }
        out
    }

    /// `cut` (text cut short) without a trailing word that holds 5 bytes of
    /// a known token.
    pub(crate) fn drop_cut_fragment<'a>(&self, cut: &'a str) -> &'a str {
        let word_start = cut
            .rfind(|c: char| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | ',' | ':' | '='))
            .map_or(0, |i| i + cut[i..].chars().next().map_or(1, char::len_utf8));
        let word = &cut.as_bytes()[word_start..];
        let holds_token = word
            .windows(TAIL_RUN)
            .any(|run| self.tail_runs.contains(&hash(run)));
        if holds_token { &cut[..word_start] } else { cut }
    }
}

/// The byte the text at `at` stands for, if any, and how many bytes say
/// it: `%XX` (and `%25XX`), `&#N;` and `&#xH;` decoded; a named reference
/// (`&nbsp;`) and any non-ASCII character stand for none.
fn decoded_at(text: &str, at: usize) -> (Option<u8>, usize) {
    let raw = text.as_bytes();
    let hex_at = |from: usize| {
        raw.get(from..from + 2)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
    };
    match raw[at] {
        b'%' => match hex_at(at + 1) {
            Some(b'%') => match hex_at(at + 3) {
                Some(twice) => (Some(twice), 5),
                None => (Some(b'%'), 3),
            },
            Some(value) => (Some(value), 3),
            None => (Some(b'%'), 1),
        },
        b'&' => {
            let rest = &raw[at + 1..raw.len().min(at + 12)];
            let Some(end) = rest.iter().position(|&b| b == b';') else {
                return (Some(b'&'), 1);
            };
            let name = std::str::from_utf8(&rest[..end]).unwrap_or("");
            let number = match name.strip_prefix('#') {
                Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok(),
                Some(decimal) => decimal.parse::<u32>().ok(),
                None if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    return (None, end + 2); // a named reference: a separator
                }
                None => return (Some(b'&'), 1),
            };
            match number {
                Some(code) => (u8::try_from(code).ok().filter(u8::is_ascii), end + 2),
                None => (Some(b'&'), 1),
            }
        }
        byte if byte.is_ascii() => (Some(byte), 1),
        _ => (None, text[at..].chars().next().map_or(1, char::len_utf8)),
    }
}

/// The fingerprints of the tokens one client has seen, each with a keyed
/// hash of the whole token (to tell a token seen before without hashing
/// its runs again: a Get answers the same token many times).
#[derive(Default)]
pub(crate) struct KnownTokens {
    remembered: ForkSafeMutex<VecDeque<(u64, Redactor)>>,
}

impl std::fmt::Debug for KnownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnownTokens")
    }
}

impl KnownTokens {
    /// Remembers `token` (the oldest of more than [`REMEMBERED`] is forgotten).
    pub(crate) fn remember(&self, token: &str) {
        let whole = hash(token.as_bytes());
        let known = |remembered: &VecDeque<(u64, Redactor)>| {
            remembered.iter().any(|(seen, _)| *seen == whole)
        };
        if known(&self.remembered.lock()) {
            return;
        }
        let fingerprint = Redactor::for_tokens([token]);
        let mut remembered = self.remembered.lock();
        if known(&remembered) {
            return;
        }
        if remembered.len() == REMEMBERED {
            remembered.pop_front();
        }
        remembered.push_back((whole, fingerprint));
    }

    /// A redactor for every remembered token and `also`.
    pub(crate) fn redactor(&self, also: Option<&str>) -> Redactor {
        let mut redactor = Redactor::for_tokens(also);
        for (_, known) in self.remembered.lock().iter() {
            redactor.merge(known);
        }
        redactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "fk-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d";

    /// No run of 8 of `TOKEN`'s letters and digits in `shown`, whatever
    /// separates, encodes or cases them.
    fn assert_hidden(shown: &str) {
        let mut view = Vec::new();
        let mut at = 0;
        while at < shown.len() {
            let (value, width) = decoded_at(shown, at);
            view.extend(
                value
                    .filter(u8::is_ascii_alphanumeric)
                    .map(|v| v.to_ascii_lowercase()),
            );
            at += width;
        }
        let view = String::from_utf8(view).unwrap();
        let token: String = TOKEN.chars().filter(char::is_ascii_alphanumeric).collect();
        for run in token.as_bytes().windows(8) {
            let run = std::str::from_utf8(run).unwrap();
            assert!(!view.contains(run), "{run} in {shown:?}");
        }
    }

    #[test]
    fn every_disguise_is_scrubbed() {
        let redactor = Redactor::for_tokens([TOKEN]);
        let split = format!("token {}\r\n{} expired", &TOKEN[..17], &TOKEN[17..]);
        let encoded: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
        let partly_encoded = TOKEN.replace('-', "%2d");
        let spaced: String = TOKEN.chars().flat_map(|c| [c, ' ']).collect();
        let part = &TOKEN[5..25];
        let dashed: String = TOKEN
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect::<Vec<_>>()
            .join("-");
        let no_break_spaced: String = TOKEN.chars().flat_map(|c| [c, '\u{a0}']).collect();
        let twice_encoded: String = TOKEN.bytes().map(|b| format!("%25{b:02X}")).collect();
        let entities: String = TOKEN.bytes().map(|b| format!("&#{b};")).collect();
        let hex_entities: String = TOKEN.bytes().map(|b| format!("&#x{b:x};")).collect();
        let named_separators = TOKEN.replace('-', "&nbsp;").replace('c', "c&shy;");
        for text in [
            format!("token {TOKEN} expired"),
            split,
            format!("bad token {encoded}"),
            format!("bad token {partly_encoded}."),
            spaced,
            format!("has {part} in it"),
            format!("upper {}", TOKEN.to_uppercase()),
            format!("dashed {dashed}"),
            no_break_spaced,
            format!("q={twice_encoded}"),
            format!("<p>{entities}</p>"),
            format!("<p>{hex_entities}</p>"),
            named_separators,
        ] {
            let scrubbed = redactor.scrub(&text);
            assert_hidden(&scrubbed);
            assert!(scrubbed.contains(REDACTED), "{scrubbed}");
        }
        assert_eq!(
            redactor.scrub("nothing to hide, caf\u{e9} 100%"),
            "nothing to hide, caf\u{e9} 100%"
        );
    }

    #[test]
    fn a_cut_never_leaves_five_bytes_of_a_token() {
        let redactor = Redactor::for_tokens([TOKEN]);
        let cut = format!("the token is {}", &TOKEN[..6]);
        assert_eq!(redactor.drop_cut_fragment(&cut), "the token is ");
        assert_eq!(
            redactor.drop_cut_fragment("the token is fk-1"),
            "the token is fk-1"
        );
        assert_eq!(
            redactor.drop_cut_fragment("unrelated words"),
            "unrelated words"
        );
    }

    #[test]
    fn a_client_remembers_its_recent_tokens_only() {
        let known = KnownTokens::default();
        known.remember(TOKEN);
        for n in 0..REMEMBERED {
            known.remember(&format!("other-token-number-{n:04}"));
        }
        assert!(
            known.redactor(None).scrub(TOKEN).contains(TOKEN),
            "forgotten"
        );
        known.remember(TOKEN);
        assert_hidden(&known.redactor(None).scrub(TOKEN));
        assert_hidden(&KnownTokens::default().redactor(Some(TOKEN)).scrub(TOKEN));
    }

    #[test]
    fn a_token_answered_again_is_remembered_once() {
        let known = KnownTokens::default();
        for _ in 0..REMEMBERED {
            known.remember(TOKEN); // a Get answers the current token each time
        }
        for n in 0..REMEMBERED - 1 {
            known.remember(&format!("other-token-number-{n:04}"));
        }
        assert_hidden(&known.redactor(None).scrub(TOKEN));
        assert_eq!(known.remembered.lock().len(), REMEMBERED);
    }
}
