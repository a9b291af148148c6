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
}
