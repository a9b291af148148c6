//! Rendering results: human text, JSON, YAML, OpenMetrics.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use certrotate_core::plan::{
    AnyRef, Next, NextRun, Note, NoteReason, SecretAction, SecretValue, Status, Step, Summary,
    WaitReason,
};
use certrotate_core::{BundleReport, CertSummary, CheckReport, RotationPlan};
use certrotate_kube::{Event, RunReport};
use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::Format;

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

/// A dry run: the plan, private keys redacted.
pub(crate) fn plan(plan: &RotationPlan, format: Format, target: &str) -> Result<()> {
    if let Some(text) = data(plan, format)? {
        return print(&text);
    }
    let mut s = String::new();
    writeln!(s, "dry run on {target}: nothing was changed")?;
    writeln!(s, "phase: {} -> {}", plan.from, plan.to)?;
    writeln!(s, "plan: {}", describe_summary(&plan.summary))?;
    for step in &plan.steps {
        match step {
            Step::Secret(c) => {
                let what = match &c.action {
                    SecretAction::Create => "create",
                    SecretAction::Update { .. } => "update",
                    SecretAction::Unchanged => "unchanged",
                };
                let keys: Vec<String> = c
                    .data
                    .iter()
                    .map(|(k, v)| match v {
                        Some(SecretValue::Private(_)) => format!("{k}=<redacted>"),
                        Some(SecretValue::Public(_)) => k.clone(),
                        None => format!("-{k}"),
                    })
                    .collect();
                writeln!(
                    s,
                    "  {what:9} secret {} [{}] ({})",
                    c.secret,
                    keys.join(", "),
                    c.reason
                )?;
            }
            Step::Webhook(w) => writeln!(s, "  update    {} caBundle ({})", w.webhook, w.reason)?,
            Step::Restart(r) => writeln!(s, "  restart   {} ({})", r.workload, r.reason)?,
            Step::Note(note) => {
                writeln!(
                    s,
                    "  note      {}: {}",
                    note.object,
                    describe_note(note, target)
                )?;
            }
        }
    }
    writeln!(s, "then: {}", describe_next(&plan.next))?;
    print(&s)
}

/// The outcome of a run.
pub(crate) fn run_report(report: &RunReport, format: Format, target: &str) -> Result<()> {
    if let Some(text) = data(report, format)? {
        return print(&text);
    }
    let mut created = 0;
    let mut updated = 0;
    let mut restarted = 0;
    let mut notes = Vec::new();
    let mut at_risk = 0;
    for e in &report.events {
        match e {
            Event::TrustAtRisk { pairs } => at_risk += pairs.len(),
            Event::SecretCreated { .. } => created += 1,
            Event::SecretUpdated { .. } => updated += 1,
            Event::WorkloadRestarted { .. } => restarted += 1,
            Event::Note(note) => {
                notes.push(format!("{}: {}", note.object, describe_note(note, target)));
            }
            Event::Planned { .. }
            | Event::SecretUnchanged { .. }
            | Event::WebhookUpdated { .. }
            | Event::Conflict { .. }
            | Event::Waiting { .. }
            | Event::WaitingForRollout { .. } => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    let mut s = String::new();
    writeln!(s, "{}", describe_summary(&report.summary))?;
    writeln!(
        s,
        "{target}: {created} created, {updated} updated, {restarted} restarted; phase {}",
        report.phase
    )?;
    for n in notes {
        writeln!(s, "note: {n}")?;
    }
    if at_risk > 0 {
        writeln!(
            s,
            "warning: single-step put {at_risk} leaf/trust-store combinations at risk until \
             every component reloads (the staged strategy keeps them all)"
        )?;
    }
    writeln!(s, "next: {}", describe_next(&report.next))?;
    print(&s)
}

/// `status`: the persisted state and what the next run does, read-only.
pub(crate) fn status(status: &Status, format: Format) -> Result<()> {
    if let Some(text) = data(status, format)? {
        return print(&text);
    }
    let ca_secret = &status.ca_secret;
    let mut s = String::new();
    match &status.state {
        None => writeln!(
            s,
            "CA Secret {ca_secret}: absent (not installed, or not managed by certrotate)"
        )?,
        Some(st) => {
            writeln!(s, "CA Secret {ca_secret}")?;
            let since = st
                .since
                .map(|t| certrotate_core::rfc3339(t.replace_nanosecond(0).unwrap_or(t)))
                .unwrap_or_else(|| "install".into());
            writeln!(s, "  phase:    {} since {since}", st.phase)?;
            let fp = |f: Option<certrotate_core::Fingerprint>| {
                f.map_or_else(|| "-".into(), |f| f.to_string())
            };
            writeln!(s, "  current:  {}", fp(st.current))?;
            writeln!(s, "  next:     {}", fp(st.next))?;
            writeln!(s, "  previous: {}", fp(st.previous))?;
            if st.phase != certrotate_core::plan::Phase::Stable {
                writeln!(s, "  strategy: {}", st.strategy)?;
            }
        }
    }
    for m in &status.missing {
        writeln!(s, "  missing:  secret {m}")?;
    }
    let next_run = match status.next_run {
        NextRun::Install => "install: a new CA and every Secret".to_owned(),
        NextRun::NotManaged => "nothing: the Secrets exist without a CA Secret; rotate with \
                                --overwrite to adopt them with a new CA"
            .to_owned(),
        NextRun::CreateMissing => "create the missing Secrets".to_owned(),
        NextRun::UpToDate => "up to date".to_owned(),
        NextRun::Advance { to } => format!("enter phase {to}"),
    };
    writeln!(s, "next run (without --overwrite): {next_run}")?;
    writeln!(s, "then: {}", describe_next(&status.next))?;
    print(&s)
}

/// A plan's summary for a person, with the command-line hints the library leaves out.
pub(crate) fn describe_summary(summary: &Summary) -> String {
    match summary {
        Summary::NotManaged { .. } => {
            format!("{summary}; run with --overwrite to adopt them with a new CA")
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
        (NoteReason::AlreadyRestarted | NoteReason::WithinRenewalWindow, _) => {
            note.reason.to_string()
        }
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
            };
            format!(
                "the next step may run at {} ({reason}){hint}",
                certrotate_core::rfc3339(*at)
            )
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

pub(crate) fn certificates(rows: &[(String, CertSummary)], format: Format) -> Result<()> {
    #[derive(Serialize)]
    struct Row<'a> {
        source: &'a str,
        #[serde(flatten)]
        summary: &'a CertSummary,
        weaknesses: Vec<String>,
    }
    let values: Vec<Row<'_>> = rows
        .iter()
        .map(|(source, summary)| Row {
            source,
            summary,
            weaknesses: summary.weaknesses(),
        })
        .collect();
    if let Some(text) = data(&values, format)? {
        return print(&text);
    }
    let mut table = vec![[
        "SOURCE".to_owned(),
        "SUBJECT".into(),
        "ISSUER".into(),
        "FINGERPRINT".into(),
        "NOT AFTER".into(),
        "DAYS".into(),
        "CA".into(),
        "KEY".into(),
        "SANS".into(),
    ]];
    for (source, c) in rows {
        let key = match c.key_bits {
            Some(b) => format!("{}-{b}", c.key_algorithm),
            None => c.key_algorithm.clone(),
        };
        let mut sans: Vec<String> = c.dns_names.clone();
        sans.extend(c.ip_addresses.iter().map(ToString::to_string));
        table.push([
            format!("{source} #{}", c.block),
            c.subject.clone(),
            c.issuer.clone(),
            c.fingerprint.short(),
            certrotate_core::rfc3339(c.not_after),
            c.days_left.to_string(),
            if c.is_ca { "yes".into() } else { "no".into() },
            key,
            sans.join(","),
        ]);
    }
    let mut s = render_table(&table);
    for row in &values {
        for w in &row.weaknesses {
            writeln!(s, "warning: {} #{}: {w}", row.source, row.summary.block)?;
        }
    }
    print(&s)
}

fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

pub(crate) fn check(report: &CheckReport, format: Format, now: OffsetDateTime) -> Result<()> {
    if format == Format::Openmetrics {
        return print(&openmetrics(report, now));
    }
    if let Some(text) = data(report, format)? {
        return print(&text);
    }
    let mut s = String::new();
    let untrusted: Vec<_> = report.untrusted().collect();
    writeln!(
        s,
        "trust: {} of {} leaf/trust-store pairs trusted",
        report.pairs.len() - untrusted.len(),
        report.pairs.len()
    )?;
    for p in &untrusted {
        let reason = match &p.verdict {
            certrotate_core::ChainVerdict::Untrusted { reason } => reason.to_string(),
            certrotate_core::ChainVerdict::Trusted { .. } => String::new(),
        };
        writeln!(
            s,
            "  {} leaf of {} by {}: {reason}",
            paint("UNTRUSTED", false),
            p.leaf,
            p.trusted_by
        )?;
    }
    for p in &report.problems {
        writeln!(s, "  {} {p}", paint("MISSING", false))?;
    }
    for k in &report.keys {
        writeln!(
            s,
            "  {} secret {}: {}",
            paint("BAD KEY", false),
            k.secret,
            k.problem
        )?;
    }
    for e in &report.expiring {
        writeln!(
            s,
            "  {} {} ({}) expires {} ({} days)",
            paint("EXPIRING", false),
            e.location,
            e.subject,
            certrotate_core::rfc3339(e.not_after),
            e.days_left
        )?;
    }
    if report.all_trusted() && report.expiring.is_empty() {
        writeln!(s, "{}", paint("OK", true))?;
    }
    print(&s)
}

/// OpenMetrics text for a node-exporter textfile collector.
pub(crate) fn openmetrics(report: &CheckReport, now: OffsetDateTime) -> String {
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut s = String::new();
    s.push_str("# TYPE certrotate_certificate_expiry_timestamp_seconds gauge\n");
    s.push_str("# HELP certrotate_certificate_expiry_timestamp_seconds notAfter of each certificate, in Unix seconds.\n");
    for c in &report.certificates {
        let _ = writeln!(
            s,
            "certrotate_certificate_expiry_timestamp_seconds{{location=\"{}\",subject=\"{}\"}} {}",
            esc(&c.location),
            esc(&c.subject),
            c.not_after.unix_timestamp()
        );
    }
    s.push_str("# TYPE certrotate_trust_ok gauge\n");
    s.push_str("# HELP certrotate_trust_ok 1 if the leaf is trusted by the trust store, else 0.\n");
    for p in &report.pairs {
        let _ = writeln!(
            s,
            "certrotate_trust_ok{{leaf=\"{}\",trusted_by=\"{}\"}} {}",
            esc(&p.leaf),
            esc(&p.trusted_by),
            u8::from(p.verdict.is_trusted())
        );
    }
    s.push_str("# TYPE certrotate_check_problems gauge\n");
    s.push_str(
        "# HELP certrotate_check_problems Secrets or keys missing, unreadable or mismatched.\n",
    );
    let _ = writeln!(
        s,
        "certrotate_check_problems {}",
        report.problems.len() + report.keys.len()
    );
    s.push_str("# TYPE certrotate_check_timestamp_seconds gauge\n");
    s.push_str("# HELP certrotate_check_timestamp_seconds When the check ran.\n");
    let _ = writeln!(
        s,
        "certrotate_check_timestamp_seconds {}",
        now.unix_timestamp()
    );
    s.push_str("# EOF\n");
    s
}

/// The skipped blocks of a bundling, summarised: the first [`SkipSummary::SHOWN`] (all with
/// `-v`) kept for the report, every one counted by reason.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SkipSummary {
    #[serde(skip)]
    pub(crate) shown: Vec<certrotate_core::SkippedBlock>,
    #[serde(skip)]
    pub(crate) keep_all: bool,
    /// Every skipped block.
    pub(crate) skipped_total: usize,
    /// Skipped blocks by reason kind.
    pub(crate) skipped_by_reason: std::collections::BTreeMap<&'static str, usize>,
}

impl SkipSummary {
    /// Blocks listed without `-v`.
    pub(crate) const SHOWN: usize = 200;

    pub(crate) fn new(keep_all: bool) -> Self {
        Self {
            keep_all,
            ..Self::default()
        }
    }

    pub(crate) fn add(&mut self, block: certrotate_core::SkippedBlock) {
        self.skipped_total += 1;
        *self
            .skipped_by_reason
            .entry(block.reason.kind())
            .or_default() += 1;
        if self.keep_all || self.shown.len() < Self::SHOWN {
            self.shown.push(block);
        }
    }
}

pub(crate) fn bundle_report(
    report: &BundleReport,
    summary: &SkipSummary,
    format: Format,
) -> Result<()> {
    /// The report as written: `skipped` holds the listed blocks, and the totals say how
    /// many there were in all.
    #[derive(Serialize)]
    struct Written<'a> {
        new: &'a [certrotate_core::Fingerprint],
        carried: &'a [certrotate_core::CarriedCert],
        skipped: &'a [certrotate_core::SkippedBlock],
        #[serde(flatten)]
        summary: &'a SkipSummary,
    }
    let written = Written {
        new: &report.new,
        carried: &report.carried,
        skipped: &summary.shown,
        summary,
    };
    // Built whole, then written once: stderr is unbuffered, and a 10,000-block report
    // written piece by piece costs more than the bundling itself.
    let text = match data(&written, format)? {
        Some(text) => text,
        None => {
            let mut s = String::new();
            writeln!(s, "new: {} certificate(s)", report.new.len())?;
            for c in &report.carried {
                writeln!(
                    s,
                    "carried: old block {} ({}, not after {})",
                    c.block,
                    c.fingerprint.short(),
                    certrotate_core::rfc3339(c.not_after)
                )?;
            }
            // Runs of blocks past the carry limit become one line.
            let mut skipped = summary.shown.iter().peekable();
            while let Some(block) = skipped.next() {
                if let certrotate_core::SkipReason::BeyondLimit { limit } = block.reason {
                    let mut last = block.block;
                    while let Some(next) = skipped.peek() {
                        if matches!(next.reason, certrotate_core::SkipReason::BeyondLimit { .. })
                            && next.block == last + 1
                        {
                            last = next.block;
                            skipped.next();
                        } else {
                            break;
                        }
                    }
                    if last > block.block {
                        writeln!(
                            s,
                            "skipped: old blocks {}-{last}: beyond the carry limit of {limit}",
                            block.block
                        )?;
                        continue;
                    }
                }
                writeln!(s, "skipped: {block}")?;
            }
            let omitted = summary.skipped_total - summary.shown.len();
            if omitted > 0 {
                let counts: Vec<String> = summary
                    .skipped_by_reason
                    .iter()
                    .map(|(kind, n)| format!("{n} {kind}"))
                    .collect();
                writeln!(
                    s,
                    "skipped: {omitted} more blocks not listed; {} skipped in all: {} (-v lists every block)",
                    summary.skipped_total,
                    counts.join(", ")
                )?;
            }
            s
        }
    };
    std::io::stderr().lock().write_all(text.as_bytes())?;
    Ok(())
}
