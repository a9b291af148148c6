//! Rendering results: human text, JSON, YAML, OpenMetrics. One file per command
//! (`plan`: rotate and renew, `status`, `check`, `inspect`, `bundle`); here the shared
//! helpers: data formats, times, summaries and notes for a person, aligned tables.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use certrotate_core::evidence::{CaName, Endpoint, ProbeFailure};
use certrotate_core::plan::{
    AnyRef, CaRole, Next, NextRun, Note, NoteReason, SecretAction, SecretValue, Status, Step,
    Summary, WaitReason,
};
use certrotate_core::{BundleReport, CertSummary, CheckReport, RotationPlan};
use certrotate_kube::{Event, RunReport};
use serde::Serialize;

use crate::cli::Format;
use crate::escape::{Esc, escape_control};
use crate::target::Target;

mod bundle;
mod check;
mod inspect;
mod plan;
mod status;

pub(crate) use bundle::*;
pub(crate) use check::*;
pub(crate) use inspect::*;
pub(crate) use plan::*;
pub(crate) use status::*;

/// `value` as JSON or YAML with the run's target first: `{"target": {...}, ...}`.
fn targeted_data<T: Serialize>(
    target: &Target,
    value: &T,
    format: Format,
) -> Result<Option<String>> {
    #[derive(Serialize)]
    struct Targeted<'a, T: Serialize> {
        target: &'a Target,
        #[serde(flatten)]
        value: &'a T,
    }
    data(&Targeted { target, value }, format)
}

pub(crate) fn data<T: Serialize>(value: &T, format: Format) -> Result<Option<String>> {
    Ok(match format {
        Format::Json => Some(serde_json::to_string_pretty(value)? + "\n"),
        Format::Yaml => Some(serde_saphyr::to_string(value)?),
        Format::Human | Format::Openmetrics => None,
    })
}

pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn paint(text: &str, ok: bool) -> String {
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        let code = if ok { "32" } else { "31" };
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A time for a person: RFC 3339 in UTC, to the second (`2026-11-29T14:09:05Z`).
pub(crate) fn when(t: time::OffsetDateTime) -> String {
    certrotate_core::rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}

/// `at` relative to `now` for a person: `in 1824 days`, `in 5 hours`, `expired 2 days ago`.
pub(crate) fn relative(at: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let (left, past) = if at >= now {
        (at - now, false)
    } else {
        (now - at, true)
    };
    let amount = if left.whole_days() >= 2 {
        format!("{} days", left.whole_days())
    } else if left.whole_hours() >= 2 {
        format!("{} hours", left.whole_hours())
    } else {
        format!("{} minutes", left.whole_minutes())
    };
    if past {
        format!("(expired {amount} ago)")
    } else {
        format!("(in {amount})")
    }
}

/// A plan's summary for a person, with the command-line hints the library leaves out.
pub(crate) fn describe_summary(summary: &Summary) -> String {
    match summary {
        Summary::NotManaged { .. } => {
            format!(
                "{summary}; run with --adopt to adopt them with a new CA (a schedule, \
                 --rotate-ca-before, adopts them once its window covers that CA's end)"
            )
        }
        Summary::TooSoon { .. } => format!("{summary}, or now with --force"),
        Summary::Installed { .. }
        | Summary::CaExpiresFirst { .. }
        | Summary::Adopting { .. }
        | Summary::Prepared { .. }
        | Summary::Renewed { .. }
        | Summary::CreatedMissing
        | Summary::UpToDate
        | Summary::Trust { .. }
        | Summary::Waiting { .. }
        | Summary::Repaired { .. }
        | Summary::TrustRestored { .. }
        | Summary::Leaves { .. }
        | Summary::Retire { .. }
        | Summary::Done { .. } => summary.to_string(),
    }
}

/// A note for a person: what it means for the kind of object and the store.
fn describe_note(note: &Note, target: &str) -> String {
    match (note.reason, &note.object) {
        (NoteReason::Absent, AnyRef::Workload(_)) => "absent: nothing to restart".into(),
        (NoteReason::Absent, AnyRef::Webhook(_)) => "absent: no caBundle to update".into(),
        (NoteReason::Absent, AnyRef::Secret(_)) => "absent".into(),
        (NoteReason::NotHeldByStore, _) => format!(
            "not applicable to {target}: no cluster objects in local mode (restart or update \
             it yourself if it exists)"
        ),
        (
            NoteReason::AlreadyRestarted
            | NoteReason::WithinRenewalWindow
            | NoteReason::NothingToRetire,
            _,
        ) => note.reason.to_string(),
    }
}

/// What `Next` means for a person.
pub(crate) fn describe_next(next: &Next) -> String {
    match next {
        Next::Done => "nothing more to do".into(),
        Next::Continue => "the next step may run now".into(),
        Next::WaitUntil { at, reason } => {
            let hint = match reason {
                WaitReason::TooSoon { .. } => "; run again then, --force now, or use --wait",
                WaitReason::Converging { .. } => "; run again then, or use --wait",
                WaitReason::Evidence { .. } => {
                    "; `check --endpoint …` shows what each server shows; run again then, or \
                     use --wait (--convergence-timeout bounds it)"
                }
            };
            format!("the next step may run at {} ({reason}){hint}", when(*at))
        }
        Next::WaitForRollout { workloads } => {
            let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
            format!(
                "waiting for the rollout of {}; run again when it finished, or use --wait",
                names.join(", ")
            )
        }
    }
}

/// `text` followed by spaces up to `width` characters (none if it is already as wide).
pub(crate) fn pad(text: &str, width: usize) -> String {
    let mut s = String::with_capacity(text.len().max(width));
    s.push_str(text);
    s.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(text.chars().count()),
    ));
    s
}

/// The widest a column is padded to. A longer cell (3,000 SANs, a 70,000-character
/// subject) is written whole and pushes the rest of its row right, instead of padding
/// every other row to its width.
const MAX_COLUMN_WIDTH: usize = 80;

/// Rows as aligned columns, two spaces apart; every cell escaped ([`escape_control`]).
/// Total for cells of any size: the padding is counted here, not by a `{:width$}`
/// format (whose width stops at 65,535 and panics past it).
fn render_table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let rows: Vec<Vec<std::borrow::Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.as_ref().iter().map(|c| escape_control(c)).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        if widths.len() < row.len() {
            widths.resize(row.len(), 0);
        }
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count().min(MAX_COLUMN_WIDTH));
        }
    }
    let mut s = String::new();
    for row in &rows {
        let start = s.len();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&pad(cell, *width));
        }
        let end = s[start..].trim_end().len() + start;
        s.truncate(end);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use proptest::prelude::*;

    use super::*;

    /// Issue 19 finding 5: a cell wider than 65,535 characters (3,000 SANs) panicked the
    /// `{:<w$}` format. It is written whole; the other rows are padded to the column's
    /// capped width, not to it.
    #[test]
    fn a_cell_past_65535_characters_is_written_whole() {
        let wide = "x".repeat(70_000);
        let table = [
            ["SOURCE".to_owned(), "SANS".into(), "END".into()],
            ["a".into(), wide.clone(), "b".into()],
            ["c".into(), "d".into(), "e".into()],
        ];
        let text = render_table(&table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], format!("a       {wide}  b"));
        assert_eq!(
            lines[2],
            format!("c       d{}e", " ".repeat(MAX_COLUMN_WIDTH + 1))
        );
    }

    /// A cell of any size and content: a string of `len` copies of one character, with
    /// arbitrary characters (controls included) around it.
    fn cell() -> impl Strategy<Value = String> {
        (
            prop_oneof![0usize..40, 0usize..100_000],
            any::<char>(),
            ".{0,4}",
            ".{0,4}",
        )
            .prop_map(|(len, c, head, tail)| {
                let mut s = head;
                s.extend(std::iter::repeat_n(c, len));
                s.push_str(&tail);
                s
            })
    }

    /// A self-signed certificate (rcgen) with these names, SANs and `extensions` custom
    /// extensions.
    fn certificate(cn: &str, org: &str, sans: Vec<String>, extensions: u64) -> String {
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        for i in 0..extensions {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 99999, i],
                    vec![0x04, 0x01, 0x00],
                ));
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn inspected(pem: &str, source: &str) -> String {
        let now = time::macros::datetime!(2026-06-01 0:00 UTC);
        let origin = certrotate_core::Origin::new(source);
        let rows: Vec<(String, CertSummary)> =
            certrotate_core::inspect_pem(pem.as_bytes(), &origin, now)
                .unwrap()
                .into_iter()
                .map(|c| (source.to_owned(), c))
                .collect();
        certificates_text(&rows)
    }

    /// Issue 19 finding 9: a CN, O and SAN of `ESC[2J` and `\r` (and a file name with
    /// `ESC`) reached the terminal raw, so a certificate could clear the screen and print
    /// "ALL OK". Every one is escaped as OpenSSL prints it.
    #[test]
    fn names_from_a_certificate_are_escaped() {
        let pem = certificate(
            "\x1b[2J\rALL OK",
            "evil\x1b]0;title\x07",
            vec!["a\x1b[2J.example".into()],
            0,
        );
        let text = inspected(&pem, "cert\x1b[31m.pem");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        for shown in [
            "\\1B[2J\\0DALL OK",
            "evil\\1B]0;title\\07",
            "a\\1B[2J.example",
            "cert\\1B[31m.pem",
        ] {
            assert!(text.contains(shown), "{shown} not in {text}");
        }
    }

    /// Issue 19 finding 5: 3,000 SANs made a cell past 65,535 characters.
    #[test]
    fn a_certificate_with_3000_sans_is_inspected() {
        let sans: Vec<String> = (0..3000).map(|i| format!("san-{i}.example")).collect();
        let text = inspected(&certificate("many", "o", sans, 0), "many.pem");
        assert!(text.contains("san-0.example,san-1.example"), "{text}");
        assert!(text.contains("san-2999.example"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Certificates with up to 4,000 SANs of any ASCII (controls included) and up to
        /// 300 extensions: inspected and rendered, every SAN shown, no control character
        /// but the line ends.
        #[test]
        fn any_certificate_renders(
            sans in prop::collection::vec("[\\x00-\\x7f]{0,24}", 0..4000),
            extensions in 0u64..300,
            cn in "[\\x00-\\x7f]{1,64}",
        ) {
            let pem = certificate(&cn, "o", sans.clone(), extensions);
            let text = inspected(&pem, "any.pem");
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
            for san in sans.iter().filter(|s| s.parse::<std::net::IpAddr>().is_err()) {
                // The last SAN ends its line, whose trailing spaces are cut.
                let escaped = escape_control(san);
                prop_assert!(text.contains(escaped.trim_end()), "{escaped}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any table (0 to 5 rows of 1 to 12 columns, cells of 0 to 100,000 characters):
        /// one line a row, each cell escaped and in order, no control character but the
        /// line ends.
        #[test]
        fn any_table_renders(
            rows in prop::collection::vec(prop::collection::vec(cell(), 1..12), 0..5)
        ) {
            let text = render_table(&rows);
            prop_assert_eq!(text.lines().count(), rows.len());
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
            for (line, row) in text.lines().zip(&rows) {
                let mut rest = line;
                for cell in row {
                    let cell = escape_control(cell);
                    let cell = cell.trim_end();
                    let at = rest.find(cell);
                    prop_assert!(at.is_some(), "{cell:?} not in {line:?}");
                    rest = &rest[at.unwrap_or(0) + cell.len()..];
                }
            }
        }
    }
}
