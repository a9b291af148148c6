//! Convergence on evidence: what a TLS server shows in a handshake, and whether every
//! server of a rotation shows what the next phase needs.
//!
//! A TLS server that verifies client certificates lists, in its CertificateRequest, the
//! subject names of the CAs it trusts (TLS 1.3 `certificate_authorities`, RFC 8446
//! §4.2.4; TLS 1.2 `certificate_authorities`, RFC 5246 §7.4.4), before any certificate is
//! sent; and every server presents its chain. A probe (in `certrotate-kube`, which does the
//! I/O) opens a handshake to each [`Endpoint`] without a client certificate and records
//! both facts as an [`Evidence`]. The rules here judge them, pure:
//!
//! - [`judge_trust`]: trust has converged when every endpoint that requests client
//!   certificates lists the next CA's subject (an exact match of DER names; CA subjects
//!   carry a serial number, so generations differ).
//! - [`judge_leaves`]: the leaves have converged when every endpoint presents a leaf issued
//!   by the new CA, verified with the crate's one chain verifier against that CA alone.
//!
//! A failed probe is evidence of nothing: its endpoint is [`Lagging`], never converged,
//! with its reason ([`Shows::Nothing`]).
//!
//! What no probe sees: the trust of a TLS *client* (a workload that dials with a start-only
//! `tls.Config`, Envoy's static `trusted_ca`) is never shown to a server's probe; those keep
//! restarts, rollouts and the convergence interval.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::error::{Error, Origin};
use crate::plan::{CaRole, ObjectRef};
use crate::profile::{EndpointTarget, Profile};
use crate::trust::{self, Outcome, TrustFailure};

/// A TLS server that serves a component Secret's leaf and, if it verifies clients, trusts
/// the Secret's `ca.crt`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    /// The component Secret whose files the server loads.
    pub secret: ObjectRef,
    /// Where to connect, `HOST:PORT` as given (`[::1]:PORT` for IPv6).
    pub address: String,
    /// The name sent as SNI: a DNS name of the component's leaf (see
    /// [`Endpoint::for_component`]), or an IP address (then no SNI is sent).
    pub server_name: String,
    /// The pod serving at `address`, when the address was found through a Service's
    /// EndpointSlices (their `targetRef`): named so a lagging one can be acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl Endpoint {
    /// An endpoint with every field given.
    pub fn new(
        secret: ObjectRef,
        address: impl Into<String>,
        server_name: impl Into<String>,
    ) -> Self {
        Self {
            secret,
            address: address.into(),
            server_name: server_name.into(),
            pod: None,
        }
    }

    /// With the pod that serves at its address.
    pub fn with_pod(mut self, pod: impl Into<String>) -> Self {
        self.pod = Some(pod.into());
        self
    }

    /// The endpoint at `address` serving the component Secret `secret` of `profile`, its
    /// server name the component's first DNS name, rendered. A wildcard (`*.NAMESPACE`,
    /// which no SNI may carry) becomes a name it covers, the Secret's name in its place
    /// (`envoy.NAMESPACE`); a component without DNS names uses its first IP address.
    ///
    /// Errors when the profile has no such component, or the component no name at all.
    pub fn for_component(
        profile: &Profile,
        secret: &str,
        address: impl Into<String>,
    ) -> Result<Self, Error> {
        let field = || format!("endpoint for secret {secret}");
        let component = profile
            .component(secret)
            .map_err(|reason| Error::InvalidParameter {
                field: field(),
                reason,
            })?;
        let server_name = match component.dns_names.first() {
            Some(dns) => {
                let dns = profile.render(dns);
                match dns.strip_prefix("*.") {
                    Some(rest) => format!("{secret}.{rest}"),
                    None => dns,
                }
            }
            None => match component.ip_addresses.first() {
                Some(ip) => ip.to_string(),
                None => {
                    return Err(Error::InvalidParameter {
                        field: field(),
                        reason: "the component's leaf has no DNS name or IP address to send".into(),
                    });
                }
            },
        };
        Ok(Self::new(
            ObjectRef::new(&profile.namespace, secret),
            address,
            server_name,
        ))
    }
}

/// A Service whose ready pods serve a component Secret, at a port: a profile's endpoint in
/// Kubernetes mode, resolved by the caller (through the Service's EndpointSlices) to one
/// [`Endpoint`] per ready pod address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServicePort {
    /// The component Secret the pods load.
    pub secret: ObjectRef,
    /// The Service, in the profile's namespace.
    pub service: ObjectRef,
    /// The port the pods serve on.
    pub port: u16,
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} port {} (secret {})",
            self.service, self.port, self.secret
        )
    }
}

impl ServicePort {
    /// The endpoint of one pod address of this Service (`[IPv6]:PORT` for IPv6), its
    /// server name the component's ([`Endpoint::for_component`]).
    pub fn endpoint(
        &self,
        profile: &Profile,
        ip: std::net::IpAddr,
        pod: Option<&str>,
    ) -> Result<Endpoint, Error> {
        let address = std::net::SocketAddr::new(ip, self.port).to_string();
        let endpoint = Endpoint::for_component(profile, &self.secret.name, address)?;
        Ok(match pod {
            Some(pod) => endpoint.with_pod(pod),
            None => endpoint,
        })
    }
}

/// The profile's endpoints for Kubernetes mode: each component's Services and ports.
pub fn service_ports(profile: &Profile) -> Vec<ServicePort> {
    let mut out = Vec::new();
    for c in &profile.components {
        for e in &c.endpoints {
            if let Ok(EndpointTarget::Service { name, port }) = e.target() {
                out.push(ServicePort {
                    secret: ObjectRef::new(&profile.namespace, &c.secret),
                    service: ObjectRef::new(&profile.namespace, name),
                    port,
                });
            }
        }
    }
    out
}

/// The profile's endpoints for local and standalone mode: each component's literal
/// addresses. Errors as [`Endpoint::for_component`] (a validated profile has none).
pub fn address_endpoints(profile: &Profile) -> Result<Vec<Endpoint>, Error> {
    let mut out = Vec::new();
    for c in &profile.components {
        for e in &c.endpoints {
            if let Ok(EndpointTarget::Address(address)) = e.target() {
                out.push(Endpoint::for_component(profile, &c.secret, address)?);
            }
        }
    }
    Ok(out)
}

/// Whether probes of the pods found through one Service reached none of them: each failed
/// to connect (refused, unreachable, timed out), or what answered showed nothing of the
/// profile's CAs (`generations`: neither a leaf one of them issued nor one of them among
/// the CAs it lists; a proxy between the prober and the pods, another server at the
/// address). Then the prober has no path to the pods (a NetworkPolicy, a Job outside the
/// pod network, a mesh sidecar), which says nothing about them: the caller falls back to
/// the timers for that Service and says so. A pod reached that shows anything of ours, or
/// a handshake that fails after connecting, counts; and once one pod is reached every pod
/// of the Service counts (those not reached lag). False for no probes.
pub fn none_reached<E: AsRef<ProbeFailure>>(
    probes: &[(Endpoint, Result<Evidence, E>)],
    generations: &CaGenerations,
) -> bool {
    !probes.is_empty()
        && probes.iter().all(|(_, outcome)| match outcome {
            Ok(evidence) => !shows_ours(evidence, generations),
            Err(e) => matches!(
                e.as_ref().kind,
                ProbeFailureKind::Connect | ProbeFailureKind::ConnectTimeout
            ),
        })
}

/// Whether a server shows anything of the profile's CAs: a leaf one of them issued (by
/// name), or one of them among the CAs it lists.
fn shows_ours(evidence: &Evidence, generations: &CaGenerations) -> bool {
    let ours = |name: &CaName| generations.role(name).is_some();
    evidence.leaf_issuer().is_some_and(|issuer| ours(&issuer))
        || match &evidence.client_auth {
            ClientAuth::Requested { ca_names } => ca_names.iter().any(ours),
            ClientAuth::NotRequested => false,
        }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "pod {pod} ({}, secret {})", self.address, self.secret),
            None => write!(f, "{} (secret {})", self.address, self.secret),
        }
    }
}

/// An X.500 distinguished name in DER, as a CertificateRequest lists a CA and as a
/// certificate names its subject and issuer. Compared byte for byte; shown for people as
/// x509-parser renders it (`CN=envoy-gateway, serialNumber=…`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaName(Vec<u8>);

impl CaName {
    /// A name from its DER encoding, as received.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        Self(der.into())
    }

    /// The subject of a DER certificate (a CA's, to compare with what servers list).
    pub fn subject_of(cert: &[u8]) -> Result<Self, Error> {
        let cert = parse(cert)?;
        Ok(Self(cert.tbs_certificate.subject.as_raw().to_vec()))
    }

    /// The subjects of the certificates of a PEM bundle (a `ca.crt`), in its order.
    pub fn subjects_of_pem(pem: &[u8], origin: &Origin) -> Result<Vec<Self>, Error> {
        crate::pem_blocks::certificates(pem, origin)?
            .iter()
            .enumerate()
            .map(|(i, der)| {
                crate::inspect::parse(der, origin, i + 1)
                    .map(|c| Self(c.tbs_certificate.subject.as_raw().to_vec()))
            })
            .collect()
    }

    /// The DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for CaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match X509Name::from_der(&self.0) {
            Ok(([], name)) => write!(f, "{name}"),
            // Received from a server: not a name x509-parser reads, so say its size only.
            _ => write!(f, "<unreadable name of {} bytes>", self.0.len()),
        }
    }
}

impl fmt::Debug for CaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaName({self})")
    }
}

impl Serialize for CaName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The subjects of the CA Secret's certificates, to tell which CA a server lists or which
/// issued its leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaGenerations {
    /// Subjects in the CA Secret's `ca.crt`.
    pub current: Vec<CaName>,
    /// Subjects in its `next-ca.crt` (none outside a rotation).
    pub next: Vec<CaName>,
}

impl CaGenerations {
    /// Read from the profile's CA Secret in `observed`. A key that is absent or does not
    /// parse gives no names (`check` reports it on its own).
    pub fn of(profile: &Profile, observed: &crate::plan::Observed) -> Self {
        let ca_secret = crate::plan::ProfileObjects::of(profile).ca_secret;
        let names = |key: &str| {
            observed
                .secrets
                .get(&ca_secret)
                .and_then(|s| s.data.get(key))
                .and_then(|pem| {
                    let origin = Origin::new(format!("secret {ca_secret} key {key}"));
                    CaName::subjects_of_pem(pem, &origin).ok()
                })
                .unwrap_or_default()
        };
        Self {
            current: names(crate::plan::KEY_CA_CRT),
            next: names(crate::plan::KEY_NEXT_CA_CRT),
        }
    }

    /// The generation `name` is, if it is one of the CA Secret's (next first: a name in
    /// both is the next CA already made current).
    pub fn role(&self, name: &CaName) -> Option<CaRole> {
        if self.next.contains(name) {
            Some(CaRole::Next)
        } else if self.current.contains(name) {
            Some(CaRole::Current)
        } else {
            None
        }
    }
}

/// Whether a server asked for a client certificate, and which CAs it named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "client_auth", rename_all = "kebab-case")]
// Closed on purpose: a TLS server sends a CertificateRequest or does not.
pub enum ClientAuth {
    /// No CertificateRequest: the server verifies no client, so it shows no trust.
    NotRequested,
    /// A CertificateRequest listing these CA names, in its order (empty if it listed none).
    Requested {
        /// The acceptable CA names.
        ca_names: Vec<CaName>,
    },
}

/// What one handshake showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Whether a client certificate was requested, with the CA names listed.
    pub client_auth: ClientAuth,
    /// The presented chain, DER, leaf first.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
    /// How the handshake ended.
    pub ended: HandshakeEnd,
}

impl Evidence {
    /// What a server that verifies clients with `ca_crt` and presents `tls_crt` (both PEM,
    /// as a component Secret holds them) shows a probe: every CA subject of `ca_crt`, the
    /// chain of `tls_crt`. For simulations; a file absent or not parsing shows nothing of
    /// it.
    pub fn of_server_files(ca_crt: Option<&[u8]>, tls_crt: Option<&[u8]>) -> Self {
        let origin = Origin::new("a simulated server's files");
        Self {
            client_auth: ClientAuth::Requested {
                ca_names: ca_crt
                    .and_then(|pem| CaName::subjects_of_pem(pem, &origin).ok())
                    .unwrap_or_default(),
            },
            chain: tls_crt
                .and_then(|pem| crate::pem_blocks::certificates(pem, &origin).ok())
                .unwrap_or_default(),
            ended: HandshakeEnd::Refused {
                reason: "simulated: no client certificate".into(),
            },
        }
    }

    /// The issuer named by the presented leaf, if it has one that parses.
    pub fn leaf_issuer(&self) -> Option<CaName> {
        let leaf = parse(self.chain.first()?).ok()?;
        Some(CaName(leaf.tbs_certificate.issuer.as_raw().to_vec()))
    }
}

/// How a probe's handshake ended, once the server had shown its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HandshakeEnd {
    /// It completed (the server accepted a handshake without a client certificate, or, in
    /// TLS 1.3, refuses it only after the client's Finished, which the probe does not wait
    /// for).
    Completed,
    /// The server ended it after showing what it shows (a server that requires a client
    /// certificate does so when none comes).
    Refused {
        /// How: the alert it sent, as the TLS library names it (`HandshakeFailure`,
        /// `CertificateRequired`), or what happened instead (the connection closed).
        reason: String,
    },
}

/// Why a probe showed nothing. The probe (in `certrotate-kube`) says which and the cause's
/// words; a failure never counts as convergence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeFailure {
    /// Which step failed.
    pub kind: ProbeFailureKind,
    /// The cause, as the network or TLS library words it.
    pub detail: String,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl AsRef<Self> for ProbeFailure {
    fn as_ref(&self) -> &Self {
        self
    }
}

/// The step of a probe that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProbeFailureKind {
    /// The address is not `HOST:PORT`, the host does not resolve, or the server name is
    /// not one TLS can carry.
    Address,
    /// The TCP connection failed (refused, unreachable).
    Connect,
    /// The TCP connection did not open within the connect timeout.
    ConnectTimeout,
    /// The handshake did not reach the server's certificate within the handshake timeout.
    HandshakeTimeout,
    /// The handshake failed before the server showed its certificate (not TLS, no common
    /// version or cipher suite, a signature that does not verify).
    Handshake,
}

impl fmt::Display for ProbeFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Address => "bad address",
            Self::Connect => "cannot connect",
            Self::ConnectTimeout => "connect timed out",
            Self::HandshakeTimeout => "handshake timed out",
            Self::Handshake => "handshake failed",
        })
    }
}

/// An endpoint that does not show what the next phase needs, and what it shows instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lagging {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// What it still shows.
    pub shows: Shows,
}

/// What a lagging endpoint shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "shows", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Shows {
    /// It requests client certificates but does not list the next CA: these are the CAs it
    /// lists (it has not loaded the new `ca.crt`).
    TrustWithoutNext {
        /// The CA names it lists, in its order.
        ca_names: Vec<CaName>,
    },
    /// Its leaf is not one the new CA issued.
    LeafNotFromNew {
        /// The issuer its leaf names, when the leaf parses.
        issuer: Option<CaName>,
        /// Why the new CA does not verify it.
        reason: TrustFailure,
    },
    /// The probe failed: nothing is known about it.
    Nothing {
        /// Why.
        failure: ProbeFailure,
    },
}

impl fmt::Display for Lagging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.endpoint)?;
        match &self.shows {
            Shows::TrustWithoutNext { ca_names } if ca_names.is_empty() => {
                f.write_str("requests a client certificate but lists no CA")
            }
            Shows::TrustWithoutNext { ca_names } => {
                f.write_str("trusts only ")?;
                for (i, n) in ca_names.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "[{n}]")?;
                }
                Ok(())
            }
            Shows::LeafNotFromNew {
                issuer: Some(issuer),
                reason,
            } => write!(f, "serves a leaf issued by [{issuer}] ({reason})"),
            Shows::LeafNotFromNew {
                issuer: None,
                reason,
            } => write!(f, "serves a leaf the new CA does not verify ({reason})"),
            Shows::Nothing { failure } => write!(f, "no evidence: {failure}"),
        }
    }
}

/// The verdict of a rule over every endpoint probed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// Endpoints whose evidence satisfies the rule.
    pub agreeing: Vec<Endpoint>,
    /// Endpoints that showed nothing the rule reads (a server that requests no client
    /// certificate shows no trust): neither for nor against.
    pub silent: Vec<Endpoint>,
    /// Endpoints that do not satisfy it, with what they show.
    pub lagging: Vec<Lagging>,
}

impl Judgement {
    /// Whether no endpoint lags. With no [`Judgement::agreeing`] endpoint this is true and
    /// proves nothing: the caller falls back to what it would do without a probe.
    pub fn converged(&self) -> bool {
        self.lagging.is_empty()
    }
}

/// Judges trust: every endpoint that requests client certificates must list `next` (the
/// subject of the CA the leaves are about to be issued by), an exact DER match. Endpoints
/// that request none are [`Judgement::silent`]; a failed probe lags.
pub fn judge_trust<E: AsRef<ProbeFailure>>(
    probes: &[(Endpoint, Result<Evidence, E>)],
    next: &CaName,
) -> Judgement {
    let mut j = Judgement::default();
    for (endpoint, outcome) in probes {
        let endpoint = endpoint.clone();
        match outcome {
            Err(failure) => j.lagging.push(nothing(endpoint, failure.as_ref())),
            Ok(evidence) => match &evidence.client_auth {
                ClientAuth::NotRequested => j.silent.push(endpoint),
                ClientAuth::Requested { ca_names } if ca_names.contains(next) => {
                    j.agreeing.push(endpoint);
                }
                ClientAuth::Requested { ca_names } => j.lagging.push(Lagging {
                    endpoint,
                    shows: Shows::TrustWithoutNext {
                        ca_names: ca_names.clone(),
                    },
                }),
            },
        }
    }
    j
}

/// Judges the leaves: every endpoint must present a leaf that `new_ca` (a PEM `ca.crt`
/// holding the new CA alone) verifies at `now`, for server or client authentication, with
/// the crate's chain verifier ([`crate::verify_chain`]'s). A failed probe lags.
pub fn judge_leaves<E: AsRef<ProbeFailure>>(
    probes: &[(Endpoint, Result<Evidence, E>)],
    new_ca: &[u8],
    now: OffsetDateTime,
) -> Judgement {
    let mut j = Judgement::default();
    let ca_origin = Origin::new("the new CA");
    for (endpoint, outcome) in probes {
        let endpoint = endpoint.clone();
        let evidence = match outcome {
            Err(failure) => {
                j.lagging.push(nothing(endpoint, failure.as_ref()));
                continue;
            }
            Ok(evidence) => evidence,
        };
        let outcome = if evidence.chain.is_empty() {
            Outcome::Failed {
                reason: TrustFailure::MissingLeaf,
            }
        } else {
            let pem = chain_pem(&evidence.chain);
            let origin = Origin::new(format!("the chain {} presents", endpoint.address));
            trust::verify_pair_any_usage(pem.as_bytes(), &origin, new_ca, &ca_origin, now)
        };
        match outcome {
            Outcome::Trusted { .. } => j.agreeing.push(endpoint),
            Outcome::Failed { reason } => j.lagging.push(Lagging {
                endpoint,
                shows: Shows::LeafNotFromNew {
                    issuer: evidence.leaf_issuer(),
                    reason,
                },
            }),
        }
    }
    j
}

fn nothing(endpoint: Endpoint, failure: &ProbeFailure) -> Lagging {
    Lagging {
        endpoint,
        shows: Shows::Nothing {
            failure: failure.clone(),
        },
    }
}

/// The chain as PEM, the input of the chain verifier.
fn chain_pem(chain: &[Vec<u8>]) -> String {
    let blocks: Vec<pem::Pem> = chain
        .iter()
        .map(|der| pem::Pem::new("CERTIFICATE", der.clone()))
        .collect();
    pem::encode_many(&blocks)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    crate::inspect::parse(der, &Origin::new("a DER certificate"), 1)
}

#[cfg(test)]
mod tests;
