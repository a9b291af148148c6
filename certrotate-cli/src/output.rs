//! Rendering results: human text, JSON, YAML, OpenMetrics.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use certrotate_core::evidence::{CaName, CaRole, Endpoint, ProbeFailure};
use certrotate_core::plan::{
    AnyRef, Next, NextRun, Note, NoteReason, SecretAction, SecretValue, Status, Step, Summary,
    WaitReason,
};
use certrotate_core::{BundleReport, CertSummary, CheckReport, RotationPlan};
use certrotate_kube::{Event, RunReport};
use serde::Serialize;

use crate::cli::Format;
use crate::escape::{Esc, escape_control};
use crate::target::Target;

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

/// A dry run: the plan, private keys redacted.
pub(crate) fn plan(plan: &RotationPlan, format: Format, target: &Target) -> Result<()> {
    if let Some(text) = targeted_data(target, plan, format)? {
        return print(&text);
    }
    let mut s = String::new();
    // The target holds a path or a kubeconfig context: text from outside.
    writeln!(s, "dry run on {}: nothing was changed", Esc(target))?;
    let target = escape_control(&target.place.to_string()).into_owned();
    let target = target.as_str();
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
    target: &Target,
) -> Result<()> {
    #[derive(Serialize)]
    struct Round<'a> {
        target: &'a Target,
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
        #[serde(flatten)]
        plan: &'a RotationPlan,
    }
    let rounds: Vec<Round<'_>> = plans
        .iter()
        .map(|(at, plan)| Round {
            target,
            at: *at,
            plan,
        })
        .collect();
    if let Some(text) = data(&rounds, format)? {
        return print(&text);
    }
    let mut s = String::new();
    writeln!(
        s,
        "dry run on {}: nothing was changed; the run would:",
        Esc(target)
    )?;
    let target = escape_control(&target.place.to_string()).into_owned();
    let target = target.as_str();
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
                        Some(SecretValue::Private(_)) => format!("{}=<redacted>", Esc(k)),
                        Some(SecretValue::Public(_)) => escape_control(k).into_owned(),
                        None => format!("-{}", Esc(k)),
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
pub(crate) fn run_report(report: &RunReport, format: Format, target: &Target) -> Result<()> {
    if let Some(text) = targeted_data(target, report, format)? {
        return print(&text);
    }
    let shown = Esc(target).to_string();
    let target = escape_control(&target.place.to_string()).into_owned();
    let target = target.as_str();
    let mut created = 0;
    let mut updated = 0;
    let mut restarted = 0;
    let mut notes = Vec::new();
    let mut at_risk = 0;
    let mut lagging = Vec::new();
    let mut undiscovered = Vec::new();
    for e in &report.events {
        match e {
            Event::EndpointsLagging { lagging: l } => lagging.clone_from(l),
            Event::EndpointsUndiscovered { undiscovered: u } => undiscovered.clone_from(u),
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
    writeln!(s, "target: {shown}")?;
    writeln!(s, "{}", describe_summary(&report.summary))?;
    writeln!(
        s,
        "{created} created, {updated} updated, {restarted} restarted; phase {}",
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
    // The Services whose pods gave no evidence, as last seen: the timers decided for them.
    for u in &undiscovered {
        writeln!(s, "note: {}", Esc(u))?;
    }
    // The servers the run waits for, as the last wait saw them (text from servers:
    // escaped).
    for l in &lagging {
        writeln!(s, "lagging: {}", Esc(l))?;
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
    endpoints: &Endpoints,
    now: time::OffsetDateTime,
    format: Format,
    target: &Target,
) -> Result<()> {
    #[derive(Serialize)]
    struct WithCertificates<'a> {
        target: &'a Target,
        #[serde(flatten)]
        status: &'a Status,
        certificates: &'a [StatusCertificate],
        #[serde(flatten)]
        endpoints: &'a Endpoints,
    }
    let document = WithCertificates {
        target,
        status,
        certificates,
        endpoints,
    };
    if let Some(text) = data(&document, format)? {
        return print(&text);
    }
    let ca_secret = &status.ca_secret;
    let mut s = String::new();
    writeln!(s, "target: {}", Esc(target))?;
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
    status_views(&mut s, status)?;
    endpoint_views(&mut s, endpoints)?;
    let next_run = match status.next_run {
        NextRun::Install => "install: a new CA and every Secret".to_owned(),
        NextRun::NotManaged => "nothing: the Secrets exist without a CA Secret; rotate with \
                                --adopt to adopt them with a new CA"
            .to_owned(),
        NextRun::CreateMissing => "create the missing Secrets".to_owned(),
        NextRun::UpToDate => "up to date".to_owned(),
        NextRun::Retire { at } if at <= now => {
            "retire the old CA from every bundle (staged: phase retire)".to_owned()
        }
        NextRun::Retire { at } => format!(
            "up to date; the old CA, which no leaf needs, leaves every bundle at {} {}",
            when(at),
            relative(at, now)
        ),
        NextRun::Repair => "restore the current CA in the trust stores that lack it".to_owned(),
        NextRun::RestoreTrust => "restore the next CA in the trust stores that lack it; trust \
                                  converges again before the leaves change"
            .to_owned(),
        NextRun::Advance { to } => format!("enter phase {to}"),
    };
    for hold in &status.holds {
        writeln!(s, "  held:     {hold}")?;
    }
    writeln!(s, "next run (without --overwrite): {next_run}")?;
    writeln!(s, "then: {}", describe_next(&status.next))?;
    print(&s)
}

/// What the probes of `check` and `status` showed: each endpoint, and the profile's
/// Services whose pods could not be found or reached.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Endpoints {
    #[serde(rename = "endpoints", skip_serializing_if = "Vec::is_empty")]
    pub(crate) views: Vec<EndpointView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) undiscovered: Vec<certrotate_kube::evidence::Undiscovered>,
}

/// What one `--endpoint` showed a probe: the CAs it asks client certificates from and the
/// issuer of the leaf it serves, each marked with its generation when the CA Secret holds
/// it; or why it showed nothing.
#[derive(Debug, Serialize)]
pub(crate) struct EndpointView {
    #[serde(flatten)]
    pub(crate) endpoint: Endpoint,
    /// `None`: no evidence (see `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_certificate_requested: Option<bool>,
    /// The CA names of its CertificateRequest, in its order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) trusts: Vec<NamedCa>,
    /// The issuer its leaf names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serves_leaf_of: Option<NamedCa>,
    /// Why the probe showed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ProbeFailure>,
}

/// A CA name and, when the CA Secret holds it, its generation.
#[derive(Debug, Serialize)]
pub(crate) struct NamedCa {
    pub(crate) name: CaName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<CaRole>,
}

impl std::fmt::Display for NamedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The name comes from a server: its control characters are made visible.
        write!(f, "[{}]", Esc(&self.name))?;
        match self.role {
            Some(role) => write!(f, " ({role})"),
            None => f.write_str(" (not in the CA Secret)"),
        }
    }
}

/// The `--endpoint` section of `check` and `status`.
fn endpoint_views(s: &mut String, probed: &Endpoints) -> std::fmt::Result {
    for u in &probed.undiscovered {
        writeln!(s, "{} {}", paint("NO EVIDENCE", false), Esc(u))?;
    }
    let endpoints = &probed.views;
    if endpoints.is_empty() {
        return Ok(());
    }
    writeln!(
        s,
        "endpoints: what each server shows a handshake without a client certificate \
         (what TLS clients trust cannot be probed)"
    )?;
    for e in endpoints {
        writeln!(s, "    {}", Esc(&e.endpoint))?;
        if let Some(failure) = &e.error {
            writeln!(
                s,
                "        {} {}",
                paint("NO EVIDENCE", false),
                Esc(failure)
            )?;
            continue;
        }
        match e.client_certificate_requested {
            Some(true) if e.trusts.is_empty() => {
                writeln!(
                    s,
                    "        trusts: asks for a client certificate, lists no CA"
                )?;
            }
            Some(true) => {
                let names: Vec<String> = e.trusts.iter().map(ToString::to_string).collect();
                writeln!(s, "        trusts: {}", names.join(", "))?;
            }
            Some(false) | None => writeln!(
                s,
                "        trusts: not shown (asks for no client certificate)"
            )?,
        }
        match &e.serves_leaf_of {
            Some(issuer) => writeln!(s, "        serves: a leaf issued by {issuer}")?,
            None => writeln!(s, "        serves: a leaf that does not parse")?,
        }
    }
    Ok(())
}

/// What each trust store holds (role and short fingerprint of each CA, in order) and which
/// CA issued each leaf: the mid-rotation views of `status`.
fn status_views(s: &mut String, status: &Status) -> std::fmt::Result {
    let ca = |c: &certrotate_core::plan::CaView| match c.role {
        Some(role) => format!("{role} {}", c.fingerprint.short()),
        None => format!("other {}", c.fingerprint.short()),
    };
    if !status.trust_stores.is_empty() {
        let mut table = vec![["TRUST STORE".to_owned(), "HOLDS (in order)".into()]];
        for store in &status.trust_stores {
            let holds: Vec<String> = store.cas.iter().map(ca).collect();
            table.push([
                Esc(&store.store).to_string(),
                if holds.is_empty() {
                    "nothing".into()
                } else {
                    holds.join(", ")
                },
            ]);
        }
        for line in render_table(&table).lines() {
            writeln!(s, "  {line}")?;
        }
    }
    if !status.leaves.is_empty() {
        let mut table = vec![["LEAF".to_owned(), "ISSUED BY".into()]];
        for leaf in &status.leaves {
            table.push([
                format!(
                    "{} {}",
                    Esc(&leaf.secret),
                    certrotate_core::plan::wire::KEY_TLS_CRT
                ),
                match &leaf.issued_by {
                    Some(by) => format!("{} ({})", ca(by), Esc(&by.subject)),
                    None => format!("no CA of the rotation (issuer {})", Esc(&leaf.issuer)),
                },
            ]);
        }
        for line in render_table(&table).lines() {
            writeln!(s, "  {line}")?;
        }
    }
    Ok(())
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
    print(&certificates_text(rows))
}

/// `inspect`'s table for a person, then a warning line for each weakness: every text
/// taken from a certificate or a file name escaped.
fn certificates_text(rows: &[(String, CertSummary)]) -> String {
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
    for (source, c) in rows {
        for w in c.weaknesses() {
            // Writing to a String cannot fail.
            let _ = writeln!(s, "warning: {} #{}: {}", Esc(source), c.block, Esc(w));
        }
    }
    s
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

pub(crate) fn check(
    report: &CheckReport,
    endpoints: &Endpoints,
    format: Format,
    target: &Target,
) -> Result<()> {
    #[derive(Serialize)]
    struct WithEndpoints<'a> {
        #[serde(flatten)]
        report: &'a CheckReport,
        #[serde(flatten)]
        endpoints: &'a Endpoints,
    }
    if let Some(text) = targeted_data(target, &WithEndpoints { report, endpoints }, format)? {
        return print(&text);
    }
    // Each check on a line of its own, passed or not, its findings beneath it (as `linkerd
    // check` lists its checks): what was checked is visible, not only what failed.
    let mark = |ok: bool| paint(if ok { "√" } else { "×" }, ok);
    let mut s = String::new();
    writeln!(s, "target: {}", Esc(target))?;
    writeln!(
        s,
        "{} secrets: every Secret and key of the profile present and readable",
        mark(report.problems.is_empty())
    )?;
    for p in &report.problems {
        writeln!(s, "    {} {}", paint("MISSING", false), Esc(p))?;
    }
    let untrusted: Vec<_> = report.untrusted().collect();
    writeln!(
        s,
        "{} trust: {} of {} leaf/trust-store pairs trusted",
        mark(untrusted.is_empty() && !report.pairs.is_empty()),
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
            "    {} leaf of {} by {}: {reason}",
            paint("UNTRUSTED", false),
            Esc(&p.leaf),
            Esc(&p.trusted_by),
            reason = Esc(reason)
        )?;
    }
    writeln!(
        s,
        "{} keys: every tls.key is the key of its tls.crt",
        mark(report.keys.is_empty())
    )?;
    for k in &report.keys {
        writeln!(
            s,
            "    {} secret {}: {}",
            paint("BAD KEY", false),
            k.secret,
            Esc(&k.problem)
        )?;
    }
    // Expiry warns (exit 4) rather than fails: linkerd's "‼".
    writeln!(
        s,
        "{} expiry: {} certificates, {} expiring within the warning window",
        if report.expiring.is_empty() {
            mark(true)
        } else {
            paint("‼", false)
        },
        report.certificates.len(),
        report.expiring.len()
    )?;
    for e in &report.expiring {
        writeln!(
            s,
            "    {} {} ({}) expires {} ({} days)",
            paint("EXPIRING", false),
            Esc(&e.location),
            Esc(&e.subject),
            when(e.not_after),
            e.days_left
        )?;
    }
    for e in &report.carried {
        writeln!(
            s,
            "    {} {} ({}) expires {} ({} days): carried, no current leaf needs it (rotate \
             retires it)",
            paint("INFO", true),
            Esc(&e.location),
            Esc(&e.subject),
            when(e.not_after),
            e.days_left
        )?;
    }
    endpoint_views(&mut s, endpoints)?;
    let verdict = match (report.all_trusted(), report.expiring.is_empty()) {
        (true, true) => paint("OK", true),
        (true, false) => paint("WARNING: certificates expire soon", false),
        (false, _) => paint("FAILED", false),
    };
    writeln!(s, "{verdict}")?;
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
                writeln!(s, "skipped: {}", Esc(block))?;
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
