//! `status`: the persisted state, what each trust store holds and who issued each leaf,
//! and what the probed servers show (shared with `check`).

use super::*;

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
pub(super) fn endpoint_views(s: &mut String, probed: &Endpoints) -> std::fmt::Result {
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
pub(super) fn status_views(s: &mut String, status: &Status) -> std::fmt::Result {
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
