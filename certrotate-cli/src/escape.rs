//! Text from outside made safe for a terminal. A certificate's subject, a SAN, a file
//! name found in a walk, a Secret's data key or an API server's message is chosen by
//! whoever wrote it: printed raw, a CN of `ESC[2J` clears the screen, a `\r` overwrites
//! the line with "ALL OK". Human output escapes every control character in such text
//! the way OpenSSL prints names (`\1B`); JSON and YAML encoders escape their own.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// `s` with each control character (C0, DEL, C1: Unicode's `Cc`, `\n` and `\t` included)
/// written as a backslash and two upper-case hex digits (`\1B`, `\0D`, `\9B`), as
/// OpenSSL's `-nameopt esc_ctrl` does. A backslash stays as it is. Borrowed when there
/// is nothing to escape.
pub(crate) fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value from outside, displayed through [`escape_control`]:
/// `format!("subject {}", Esc(&c.subject))`.
pub(crate) struct Esc<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for Esc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_control(&self.0.to_string()))
    }
}

/// The first `max_bytes` bytes of `text` (cut at a character boundary, `…` appended when
/// something was cut), escaped by [`escape_control`]: for quoting a peer's text in an
/// error without letting it fill the terminal.
pub(crate) fn escape_prefix(text: &str, max_bytes: usize) -> String {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = escape_control(&text[..end]).into_owned();
    if end < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_as_openssl_does() {
        assert_eq!(escape_control("plain: é ✓ \\"), "plain: é ✓ \\");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("\x1b[2J\rALL OK\n\t\0\x7f\u{9b}"),
            "\\1B[2J\\0DALL OK\\0A\\09\\00\\7F\\9B"
        );
        // Printable characters past the C1 block stay.
        assert_eq!(escape_control("\u{a0}\u{ff}"), "\u{a0}\u{ff}");
        assert_eq!(Esc("a\x1bb").to_string(), "a\\1Bb");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_control("push rejected: bad metric, é ✓"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn c0_del_and_c1_are_hex_escaped() {
        assert_eq!(
            escape_control("a\x1b[2Jb\r\n\t\0\x7f\u{9b}c\u{85}"),
            "a\\1B[2Jb\\0D\\0A\\09\\00\\7F\\9Bc\\85"
        );
        // U+00A0 (no-break space) is the first character past C1: kept.
        assert_eq!(escape_control("\u{a0}"), "\u{a0}");
    }

    #[test]
    fn a_prefix_is_cut_at_a_character_boundary_then_escaped() {
        assert_eq!(escape_prefix("abc", 10), "abc");
        assert_eq!(escape_prefix("abcdef", 3), "abc…");
        // "é" is two bytes: a cut inside it keeps the character out.
        assert_eq!(escape_prefix("aé", 2), "a…");
        // The limit counts the raw bytes, before escaping.
        assert_eq!(escape_prefix("\x1b\x1b\x1b", 2), "\\1B\\1B…");
    }
}
