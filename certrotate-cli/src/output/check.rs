//! `check`: every pair, key and expiry, and what the probed servers show.

use super::*;

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
