//! `rotate` and `renew`: a dry run's plans (private values redacted) and a run's report.

use super::*;

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
pub(super) fn write_steps(s: &mut String, plan: &RotationPlan, target: &str) -> Result<()> {
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
