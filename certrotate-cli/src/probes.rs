//! The servers a run probes: the `--endpoint`s, checked against the profile, and the
//! profile's own (its Services through EndpointSlices with `--kube`, its addresses in local
//! mode); and what they showed, named by CA generation.

use super::*;

/// The `--endpoint`s, each checked against the profile (it names one of its component
/// Secrets), with the server name the probe sends.
pub(crate) fn endpoints(
    profile: &Profile,
    args: &cli::EndpointArgs,
) -> Result<Vec<Endpoint>, UsageError> {
    args.endpoints
        .iter()
        .map(|f| {
            Endpoint::for_component(profile, &f.secret, &f.address)
                .map_err(|e| UsageError(format!("--endpoint {}={}: {e}", f.secret, f.address)))
        })
        .collect()
}

/// The servers a run probes besides the `--endpoint`s: the profile's own, by the store it
/// runs on. In Kubernetes mode its Services, resolved through their EndpointSlices each
/// time evidence is gathered; in local mode its literal addresses.
pub(crate) trait ProfileEndpoints {
    fn probes(&self, profile: &Profile, literal: Vec<Endpoint>) -> Result<Probes>;
}

impl ProfileEndpoints for DirStore {
    fn probes(&self, profile: &Profile, mut literal: Vec<Endpoint>) -> Result<Probes> {
        literal.extend(certrotate_core::evidence::address_endpoints(profile)?);
        Ok(Probes::new(literal, ProbeLimits::default()))
    }
}

/// Local mode with restart commands: the directory's.
impl ProfileEndpoints for certrotate_kube::host::HostRestarts<DirStore> {
    fn probes(&self, profile: &Profile, literal: Vec<Endpoint>) -> Result<Probes> {
        self.inner().probes(profile, literal)
    }
}

#[cfg(feature = "kube")]
impl ProfileEndpoints for KubeStore {
    fn probes(&self, profile: &Profile, literal: Vec<Endpoint>) -> Result<Probes> {
        Ok(Probes::new(literal, ProbeLimits::default()).with_services(
            certrotate_core::evidence::service_ports(profile),
            self.clone(),
        ))
    }
}

/// Finds and probes the endpoints (reading only: one handshake each, no client
/// certificate) and names each CA they show by its generation in the CA Secret.
pub(crate) async fn probe_endpoints(
    profile: &Profile,
    observed: &certrotate_core::plan::Observed,
    probes: &Probes,
) -> output::Endpoints {
    use certrotate_core::evidence::{CaGenerations, ClientAuth};
    if probes.is_empty() {
        return output::Endpoints::default();
    }
    activity::doing("probing the profile's endpoints");
    let generations = CaGenerations::of(profile, observed);
    let named = |name: certrotate_core::evidence::CaName| output::NamedCa {
        role: generations.role(&name),
        name,
    };
    let gathered = probes.gather_now(profile, observed).await;
    let views = gathered
        .probed
        .into_iter()
        .map(|(endpoint, outcome)| match outcome {
            Ok(evidence) => {
                let serves_leaf_of = evidence.leaf_issuer().map(named);
                let (requested, trusts) = match evidence.client_auth {
                    ClientAuth::Requested { ca_names } => {
                        (true, ca_names.into_iter().map(named).collect())
                    }
                    ClientAuth::NotRequested => (false, Vec::new()),
                };
                output::EndpointView {
                    endpoint,
                    client_certificate_requested: Some(requested),
                    trusts,
                    serves_leaf_of,
                    error: None,
                }
            }
            Err(failure) => output::EndpointView {
                endpoint,
                client_certificate_requested: None,
                trusts: Vec::new(),
                serves_leaf_of: None,
                error: Some(failure),
            },
        })
        .collect();
    output::Endpoints {
        views,
        undiscovered: gathered.undiscovered,
    }
}
