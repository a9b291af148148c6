//! Text from outside (a server's answer, a certificate's name) made safe for a terminal:
//! control characters are shown, not obeyed.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1: `char::is_control`) written as `\XX`,
/// its code point in two upper-case hex digits, as OpenSSL prints them (`\1B` for ESC).
/// Text without one is borrowed as it is.
pub(crate) fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            // Every control character is below U+00A0: two hex digits.
            let _ = write!(out, "\\{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
