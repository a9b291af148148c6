//! What an error may quote of a value read from a file or a Secret: only a short, plain
//! value (a typo, a phase, a name); otherwise only its length. A profile given by mistake
//! may be a private key, `/etc/shadow` may sit behind a link, and anyone who can write a
//! Secret's annotations chooses what they hold.

/// Whether `value` is plain: at most `max` characters, all of them letters, digits or
/// `-_.:+/* ` (no `$`, quotes, newlines or PEM armour), and no base64-like run long enough
/// to be part of a key.
pub(crate) fn plain(value: &str, max: usize) -> bool {
    value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/* ".contains(&b))
        && shown_text(value)
}

/// Whether a value taken from a profile may appear in an error message: [`plain`], up to
/// 64 characters (a DNS name, a field name).
pub(crate) fn shown(value: &str) -> bool {
    plain(value, 64)
}

pub(crate) fn shown_text(text: &str) -> bool {
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
pub(crate) fn withheld(value: &str) -> String {
    format!("<{} characters withheld>", value.chars().count())
}

/// A value for a validation message: quoted if [`shown`], else its length only.
pub(crate) fn quoted(value: &str) -> String {
    if shown(value) {
        format!("{value:?}")
    } else {
        withheld(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::error::Origin;
    use crate::profile::Profile;

    /// Red-team N7: a YAML profile linked to a file in `/etc/shadow` format printed its
    /// first line, password hash included, as the "unknown field" of the error.
    #[test]
    fn an_unknown_field_that_is_not_plain_is_withheld() {
        let origin = Origin::new("p.yaml");
        for line in [
            "root:$6$SALTsalt$SECRETHASHSECRETHASH:19000:0:99999:7::",
            "daemon:\"quoted\":1",
        ] {
            let error = Profile::from_yaml(line, &origin).unwrap_err().to_string();
            assert!(
                !error.contains("SECRETHASH") && !error.contains("quoted"),
                "{error}"
            );
            assert!(
                error.contains("p.yaml") && error.contains("line 1"),
                "{error}"
            );
        }
        // A plain typo is still shown: it is what the user needs to see.
        let error = Profile::from_yaml("namspace: ns\n", &origin)
            .unwrap_err()
            .to_string();
        assert!(error.contains("namspace"), "{error}");
    }

    #[test]
    fn plain_values_only() {
        assert!(super::plain("envoy-gateway", 32));
        assert!(super::plain("2026-06-01T00:00:00Z", 32));
        assert!(super::plain("*.envoy-gateway-system", 32));
        assert!(!super::plain("a$b", 32));
        assert!(!super::plain("a\nb", 32));
        assert!(!super::plain(&"a".repeat(33), 32));
        assert!(!super::plain("MIGHAgEAMBMGByqGSM49AgEGCCqG", 64));
    }
}
