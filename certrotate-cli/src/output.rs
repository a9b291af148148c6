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
    write_steps(&mut s, plan, target)?;
    writeln!(s, "then: {}", describe_next(&plan.next))?;
    print(&s)
}

/// A whole dry run: every plan the run would apply, in order, each with the time it
/// would run at and the wait before the next.
pub(crate) fn plans(
    plans: &[(time::OffsetDateTime, RotationPlan)],
    format: Format,
    target: &str,
) -> Result<()> {
    #[derive(Serialize)]
    struct Round<'a> {
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
        #[serde(flatten)]
        plan: &'a RotationPlan,
    }
    let rounds: Vec<Round<'_>> = plans
        .iter()
        .map(|(at, plan)| Round { at: *at, plan })
        .collect();
    if let Some(text) = data(&rounds, format)? {
        return print(&text);
    }
    let mut s = String::new();
    writeln!(
        s,
        "dry run on {target}: nothing was changed; the run would:"
    )?;
    let start = plans.first().map(|(at, _)| *at);
    for (i, (at, plan)) in plans.iter().enumerate() {
        let moment = match start {
            Some(start) if *at > start => format!("at {}", when(*at)),
            _ => "now".to_owned(),
        };
        writeln!(
            s,
            "{}. {moment}: phase {} -> {}: {}",
            i + 1,
            plan.from,
            plan.to,
            describe_summary(&plan.summary)
        )?;
        write_steps(&mut s, plan, target)?;
        if i + 1 < plans.len() {
            match &plan.next {
                Next::WaitUntil { at, reason } => {
                    writeln!(s, "  wait      until {}: {reason}", when(*at))?
                }
                Next::WaitForRollout { workloads } => {
                    let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
                    writeln!(s, "  wait      for the rollout of {}", names.join(", "))?;
                }
                Next::Continue | Next::Done => {}
            }
        }
    }
    if let Some((_, last)) = plans.last() {
        writeln!(s, "then: {}", describe_next(&last.next))?;
    }
    print(&s)
}

/// The steps of one plan, one line each, private values redacted.
fn write_steps(s: &mut String, plan: &RotationPlan, target: &str) -> Result<()> {
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
    Ok(())
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
/// A certificate `status` lists with its end of validity.
#[derive(Serialize)]
pub(crate) struct StatusCertificate {
    pub(crate) secret: certrotate_core::plan::ObjectRef,
    pub(crate) key: String,
    pub(crate) block: usize,
    pub(crate) fingerprint: certrotate_core::Fingerprint,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) not_after: time::OffsetDateTime,
}

pub(crate) fn status(
    status: &Status,
    certificates: &[StatusCertificate],
    now: time::OffsetDateTime,
    format: Format,
) -> Result<()> {
    #[derive(Serialize)]
    struct WithCertificates<'a> {
        #[serde(flatten)]
        status: &'a Status,
        certificates: &'a [StatusCertificate],
    }
    let document = WithCertificates {
        status,
        certificates,
    };
    if let Some(text) = data(&document, format)? {
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
            let since = st.since.map(when).unwrap_or_else(|| "install".into());
            writeln!(s, "  phase:    {} since {since}", st.phase)?;
            let fp = |f: Option<certrotate_core::Fingerprint>| {
                f.map_or_else(|| "-".into(), |f| f.short())
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
    if !certificates.is_empty() {
        let mut table = vec![[
            "SECRET".to_owned(),
            "KEY".into(),
            "FINGERPRINT".into(),
            "NOT AFTER".into(),
            "".into(),
        ]];
        for c in certificates {
            table.push([
                c.secret.to_string(),
                if c.block > 1 {
                    format!("{} #{}", c.key, c.block)
                } else {
                    c.key.clone()
                },
                c.fingerprint.short(),
                when(c.not_after),
                relative(c.not_after, now),
            ]);
        }
        for line in render_table(&table).lines() {
            writeln!(s, "  {line}")?;
        }
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
        let key = key_name(&c.key_algorithm, c.key_bits);
        let mut sans: Vec<String> = c.dns_names.clone();
        sans.extend(c.ip_addresses.iter().map(ToString::to_string));
        table.push([
            format!("{source} #{}", c.block),
            c.subject.clone(),
            c.issuer.clone(),
            c.fingerprint.short(),
            when(c.not_after),
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

/// A key as `--key-algorithm` spells it (`ecdsa-p256`, `rsa-2048`, `ed25519`); other
/// keys as the algorithm and size.
fn key_name(algorithm: &str, bits: Option<usize>) -> String {
    match (algorithm, bits) {
        ("ecdsa", Some(bits)) => format!("ecdsa-p{bits}"),
        (algorithm, Some(bits)) if algorithm != "ed25519" => format!("{algorithm}-{bits}"),
        (algorithm, _) => algorithm.to_owned(),
    }
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

pub(crate) fn check(report: &CheckReport, format: Format) -> Result<()> {
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
            when(e.not_after),
            e.days_left
        )?;
    }
    if report.all_trusted() && report.expiring.is_empty() {
        writeln!(s, "{}", paint("OK", true))?;
    }
    print(&s)
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

/// A bundling's report as written: `skipped` holds the listed blocks, and the totals say
/// how many there were in all.
#[derive(Serialize)]
pub(crate) struct WrittenReport<'a> {
    new: &'a [certrotate_core::Fingerprint],
    carried: &'a [certrotate_core::CarriedCert],
    skipped: &'a [certrotate_core::SkippedBlock],
    #[serde(flatten)]
    summary: &'a SkipSummary,
}

impl<'a> WrittenReport<'a> {
    pub(crate) fn new(report: &'a BundleReport, summary: &'a SkipSummary) -> Self {
        Self {
            new: &report.new,
            carried: &report.carried,
            skipped: &summary.shown,
            summary,
        }
    }
}

pub(crate) fn bundle_report(
    report: &BundleReport,
    summary: &SkipSummary,
    format: Format,
) -> Result<()> {
    let written = WrittenReport::new(report, summary);
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
                    when(c.not_after)
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
