//! Loading a profile from TOML or YAML: the checks made before parsing (no PEM data, at
//! most [`MAX_PROFILE_BYTES`]), and parse errors that say where and what, never what the
//! file holds.

use super::Profile;
use crate::error::{Error, Origin};
use crate::redact::{shown, shown_text, withheld};

/// The most bytes read from a profile file.
pub(crate) const MAX_PROFILE_BYTES: usize = 1 << 20;

impl Profile {
    /// Parses and validates a profile in TOML.
    pub fn from_toml(text: &str, origin: &Origin) -> Result<Self, Error> {
        check_input(text, origin)?;
        // Not `Display`: toml's message quotes the offending lines of the file.
        let profile: Self = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |span| span.start);
            let (line, column) = line_column(text, at);
            parse_error(origin, line, column, e.message())
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// Parses and validates a profile in YAML.
    pub fn from_yaml(text: &str, origin: &Origin) -> Result<Self, Error> {
        check_input(text, origin)?;
        // Not `Display`: serde-saphyr's message quotes the offending lines of the file.
        let profile: Self = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
            let message = e.without_snippet().to_string();
            // The bare error still ends with its location, which we give first.
            let message = match message.rsplit_once(" at line ") {
                Some((message, _)) => message.to_owned(),
                None => message,
            };
            parse_error(origin, line, column, &message)
        })?;
        profile.validate()?;
        Ok(profile)
    }
}

/// A parse error of a profile: where (1-based line and column; 0 when the parser gave
/// none) and what was expected, with every value quoted from the file withheld but short
/// words (see [`shown`]). A profile given by mistake may be a private key: its content must
/// never reach an error message.
fn parse_error(origin: &Origin, line: usize, column: usize, message: &str) -> Error {
    let mut reason = String::new();
    let mut rest = message.trim();
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        reason.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        // A `"` string may hold escaped quotes (serde prints strings with `{:?}`).
        let mut escaped = false;
        let close = after.char_indices().find_map(|(i, c)| {
            let found = c as u32 == u32::from(quote) && !escaped;
            escaped = !escaped && c == '\\' && quote == b'"';
            found.then_some(i)
        });
        let Some(close) = close else {
            reason.push_str(&withheld(after));
            rest = "";
            break;
        };
        let quoted = &after[..close];
        if shown(quoted) {
            reason.push_str(quoted);
        } else {
            reason.push_str(&withheld(quoted));
        }
        reason.push(quote as char);
        rest = &after[close + 1..];
    }
    reason.push_str(rest);
    if !shown_text(&reason) {
        reason = "not a profile (the parser's message is withheld: it quotes the file)".into();
    }
    let reason = if line == 0 {
        reason
    } else {
        format!("line {line}, column {column}: {reason}")
    };
    Error::ParseProfile {
        origin: origin.clone(),
        reason,
    }
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Refuses what cannot be a profile before parsing: PEM data, or more than the size limit.
fn check_input(text: &str, origin: &Origin) -> Result<(), Error> {
    // The easy slip: a key or certificate file given as the profile.
    if text.trim_start().starts_with("-----BEGIN ") {
        let line = text[..text.len() - text.trim_start().len()]
            .matches('\n')
            .count()
            + 1;
        return Err(parse_error(
            origin,
            line,
            1,
            "PEM data (a certificate or a private key?), expected a profile",
        ));
    }
    if text.len() > MAX_PROFILE_BYTES {
        return Err(Error::TooLarge {
            origin: origin.clone(),
            size: text.len(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    Ok(())
}
