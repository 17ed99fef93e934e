//! What may be said about a token in a message or a log: its first four
//! characters and its length, never the whole of it.

/// `"abcd…(28 bytes)"` for a 28-byte token starting with `abcd`.
pub fn token_hint(token: &str) -> String {
    let prefix: String = token.chars().take(4).collect();
    format!("{prefix}…({} bytes)", token.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hint_shows_only_a_prefix_and_length() {
        assert_eq!(super::token_hint("abcdefgh"), "abcd…(8 bytes)");
        assert_eq!(super::token_hint("ab"), "ab…(2 bytes)");
    }
}
