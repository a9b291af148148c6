//! `bundle`: what a bundling kept and skipped, summarised.

use super::*;

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
