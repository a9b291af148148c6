//! `inspect`: certificates as a table, every text taken from a certificate escaped.

use super::*;

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
pub(super) fn certificates_text(rows: &[(String, CertSummary)]) -> String {
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
pub(super) fn key_name(algorithm: &str, bits: Option<usize>) -> String {
    match (algorithm, bits) {
        ("ecdsa", Some(bits)) => format!("ecdsa-p{bits}"),
        (algorithm, Some(bits)) if algorithm != "ed25519" => format!("{algorithm}-{bits}"),
        (algorithm, _) => algorithm.to_owned(),
    }
}
