//! What a profile's errors may quote: a value taken from a file appears only if it is
//! short, on one line, with no PEM armour and no long base64-like run; otherwise only its
//! length does. A profile given by mistake may be a private key.

/// Whether a value taken from a file may appear in an error message: a short single line
/// with no PEM armour and no long base64-like run (so no part of a key worth having).
pub(super) fn shown(value: &str) -> bool {
    value.chars().count() <= 64 && !value.contains(['\n', '\r']) && shown_text(value)
}

pub(super) fn shown_text(text: &str) -> bool {
    let base64ish = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    let mut run = 0;
    for c in text.chars() {
        run = if base64ish(c) { run + 1 } else { 0 };
        if run >= 24 {
            return false;
        }
    }
    !text.contains("-----")
}

/// A value that is not [`shown`]: its length only.
pub(super) fn withheld(value: &str) -> String {
    format!("<{} characters withheld>", value.chars().count())
}

/// A value for a validation message: quoted if [`shown`], else its length only.
pub(super) fn quoted(value: &str) -> String {
    if shown(value) {
        format!("{value:?}")
    } else {
        withheld(value)
    }
}
