//! The probe: one bounded TLS handshake per endpoint, with no client certificate, recording
//! what the server shows ([`Evidence`]): whether it asks for a client certificate and which
//! CA names it lists, and the chain it presents. The rules that judge the evidence are the
//! core's ([`certrotate_core::evidence`]).
//!
//! The client never sends a certificate and never sends application data: it records, and
//! closes once the handshake is over. A server that requires a client certificate ends the
//! handshake when none comes (TLS 1.2: an alert instead of its Finished; TLS 1.3: an alert
//! after the client's Finished, which the probe does not wait for); what it showed before
//! is the evidence, so such a handshake is a success here. On the server's side a probe is
//! a refused handshake by design.
//!
//! Reads only: a probe writes nothing anywhere, and a failed one is evidence of nothing
//! ([`ProbeError`], which the core's rules count as lagging).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certrotate_core::evidence::{
    CaName, ClientAuth, Endpoint, Evidence, HandshakeEnd, ProbeFailure, ProbeFailureKind,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How far a probe may go.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeLimits {
    /// Resolving the host and opening the TCP connection.
    pub connect_timeout: Duration,
    /// The handshake, from the connection to the server's last handshake message.
    pub handshake_timeout: Duration,
    /// Handshakes under way at once (at least one).
    pub concurrency: usize,
}

impl Default for ProbeLimits {
    /// 3 s to connect, 5 s to shake hands, 8 at once.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            concurrency: 8,
        }
    }
}

/// A probe that showed nothing, naming its endpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("probing {endpoint} as {server_name}: {failure}", server_name = endpoint.server_name)]
pub struct ProbeError {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// What failed, typed.
    pub failure: ProbeFailure,
}

impl AsRef<ProbeFailure> for ProbeError {
    fn as_ref(&self) -> &ProbeFailure {
        &self.failure
    }
}

/// Probes every endpoint, at most `limits.concurrency` at once, each within its timeouts,
/// and returns the outcomes in the order of `endpoints`.
pub async fn probe(
    endpoints: &[Endpoint],
    limits: &ProbeLimits,
) -> Vec<(Endpoint, Result<Evidence, ProbeError>)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let (endpoint, limits) = (endpoint.clone(), limits.clone());
        let (provider, permits) = (provider.clone(), permits.clone());
        tasks.spawn(async move {
            // The semaphore is never closed.
            let _permit = permits.acquire_owned().await;
            let outcome = probe_one(&endpoint, &limits, provider)
                .await
                .map_err(|failure| ProbeError {
                    endpoint: endpoint.clone(),
                    failure,
                });
            (i, endpoint, outcome)
        });
    }
    let mut out: Vec<(usize, Endpoint, Result<Evidence, ProbeError>)> =
        Vec::with_capacity(endpoints.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => out.push(done),
            // A probe does not panic; if one did, the panic goes on to the caller.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // No task is aborted, and the set lives until every task has ended.
            Err(_) => {}
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, e, r)| (e, r)).collect()
}

async fn probe_one(
    endpoint: &Endpoint,
    limits: &ProbeLimits,
    provider: Arc<CryptoProvider>,
) -> Result<Evidence, ProbeFailure> {
    let fail = |kind, detail: String| ProbeFailure { kind, detail };
    let server_name = ServerName::try_from(endpoint.server_name.clone()).map_err(|e| {
        fail(
            ProbeFailureKind::Address,
            format!("server name {:?}: {e}", endpoint.server_name),
        )
    })?;
    let tcp = tokio::time::timeout(limits.connect_timeout, connect(&endpoint.address))
        .await
        .map_err(|_| {
            fail(
                ProbeFailureKind::ConnectTimeout,
                format!("no connection within {:?}", limits.connect_timeout),
            )
        })??;
    let record = Arc::new(Record::default());
    let config = client_config(provider, &record)
        .map_err(|e| fail(ProbeFailureKind::Handshake, e.to_string()))?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tcp);
    let ended = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        // Nothing is sent; dropping the stream closes the connection.
        Ok(Ok(_stream)) => HandshakeEnd::Completed,
        Ok(Err(e)) => {
            let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::AlertReceived(alert)) => format!("{alert:?}"),
                _ => e.to_string(),
            };
            if !record.shown() {
                return Err(fail(ProbeFailureKind::Handshake, e.to_string()));
            }
            HandshakeEnd::Refused { reason }
        }
        Err(_) if record.shown() => HandshakeEnd::Refused {
            reason: format!(
                "no answer within {:?} after the certificate",
                limits.handshake_timeout
            ),
        },
        Err(_) => {
            return Err(fail(
                ProbeFailureKind::HandshakeTimeout,
                format!(
                    "no certificate within {:?} (is it a TLS server?)",
                    limits.handshake_timeout
                ),
            ));
        }
    };
    Ok(record.evidence(ended))
}

/// Resolves `address` and connects to its first address that accepts.
async fn connect(address: &str) -> Result<TcpStream, ProbeFailure> {
    let addrs = tokio::net::lookup_host(address)
        .await
        .map_err(|e| ProbeFailure {
            kind: ProbeFailureKind::Address,
            detail: format!("{address:?} is not a HOST:PORT that resolves: {e}"),
        })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(ProbeFailure {
        kind: ProbeFailureKind::Connect,
        detail: last.unwrap_or_else(|| format!("{address:?} resolves to no address")),
    })
}

/// A client for one probe: TLS 1.3 and 1.2, no resumption (every probe a full handshake),
/// SNI on, the recording verifier and a resolver that sends no certificate.
fn client_config(
    provider: Arc<CryptoProvider>,
    record: &Arc<Record>,
) -> Result<ClientConfig, rustls::Error> {
    let algorithms = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
            record: record.clone(),
            algorithms,
        }))
        .with_client_cert_resolver(Arc::new(NoClientCert {
            record: record.clone(),
        }));
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// What one handshake showed, filled in by the verifier and the resolver as it goes.
#[derive(Debug, Default)]
struct Record {
    inner: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    /// The CA names of a CertificateRequest, if one came.
    requested: Option<Vec<CaName>>,
    chain: Vec<Vec<u8>>,
    /// Whether the server's handshake signature verified with the presented leaf's key.
    signed: bool,
}

impl Record {
    fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        // A poisoned lock only means another callback of this handshake panicked; the
        // record itself is plain data.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether the server has shown its chain and proved it holds the leaf's key: from
    /// then on its facts are evidence, however the handshake ends.
    fn shown(&self) -> bool {
        self.with(|r| r.signed && !r.chain.is_empty())
    }

    fn evidence(&self, ended: HandshakeEnd) -> Evidence {
        self.with(|r| Evidence {
            client_auth: match r.requested.take() {
                Some(ca_names) => ClientAuth::Requested { ca_names },
                None => ClientAuth::NotRequested,
            },
            chain: std::mem::take(&mut r.chain),
            ended,
        })
    }
}

/// A client-certificate resolver that records the server's request (its CA names,
/// `root_hint_subjects`) and never offers a certificate.
#[derive(Debug)]
struct NoClientCert {
    record: Arc<Record>,
}

impl ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let names = root_hint_subjects
            .iter()
            .map(|n| CaName::from_der(*n))
            .collect();
        self.record.with(|r| r.requested = Some(names));
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// A server-certificate verifier that records the presented chain and accepts it without
/// judging it; it does verify the handshake signature with the leaf's key, so a recorded
/// leaf is one the server holds the key of.
///
/// Accepting any chain is safe here only because the connection carries nothing: the
/// probe sends no application data and no credential, trusts nothing it receives, and
/// closes once the handshake ends. The chain is judged afterwards, by the core's rules. Do
/// not reuse this verifier for a connection that sends or trusts anything.
#[derive(Debug)]
struct RecordingVerifier {
    record: Arc<Record>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        self.record.with(|r| r.chain = chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)?;
        self.record.with(|r| r.signed = true);
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)?;
        self.record.with(|r| r.signed = true);
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
