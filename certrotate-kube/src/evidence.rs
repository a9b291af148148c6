//! Where the engine's evidence comes from while a phase converges: the profile's TLS
//! servers, literal ([`Endpoint`]s) or found through a Service ([`ServicePort`], resolved by
//! a [`Discover`]er such as the Kubernetes store), each probed with [`crate::probe`].
//!
//! Discovery reads only. What it cannot find is evidence of nothing, said as an
//! [`Undiscovered`]: a Service the lister may not read (Forbidden), one with no
//! EndpointSlice or no ready address, a port no slice lists, or pods that no probe reached
//! (no network path from here, or a proxy in between:
//! [`certrotate_core::evidence::none_reached`]). For
//! those the phase falls back to its timers (the convergence interval and rollouts); every
//! pod found and reached still gates it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use certrotate_core::Profile;
use certrotate_core::evidence::{Endpoint, ServicePort};
use certrotate_core::plan::{Observed, Probed};
use serde::Serialize;

use crate::probe::ProbeLimits;

/// A future of this module's traits (object-safe, so an engine can hold any source).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a phase's evidence is made of: every probe, and what could not be looked at.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Gathered {
    /// Each endpoint probed, with what it showed or why it showed nothing.
    pub probed: Vec<Probed>,
    /// The Services whose pods were not found or not reached: the timers decide for them.
    pub undiscovered: Vec<Undiscovered>,
}

impl Gathered {
    /// Probes and problems.
    pub fn new(probed: Vec<Probed>, undiscovered: Vec<Undiscovered>) -> Self {
        Self {
            probed,
            undiscovered,
        }
    }
}

/// Gathers the evidence of a converging phase (the engine calls it while the persisted
/// phase is `trust` or `leaves`, with what it observed).
pub trait EvidenceSource: Send + Sync {
    /// Probes the servers (and finds them first, if they are found through Services).
    fn gather<'a>(
        &'a self,
        profile: &'a Profile,
        observed: &'a Observed,
    ) -> BoxFuture<'a, Gathered>;
}

/// Resolves Services to the endpoints of their ready pods (reading only).
pub trait Discover: Send + Sync {
    /// Every ready pod address of each Service at its port, or why there is none.
    fn discover<'a>(
        &'a self,
        profile: &'a Profile,
        services: &'a [ServicePort],
    ) -> BoxFuture<'a, Discovered>;
}

/// What discovery found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Discovered {
    /// Each ready pod's endpoint, with the Service it was found through.
    pub endpoints: Vec<(ServicePort, Endpoint)>,
    /// The Services that yielded no endpoint, and why.
    pub undiscovered: Vec<Undiscovered>,
}

impl Discovered {
    /// Endpoints and problems.
    pub fn new(endpoints: Vec<(ServicePort, Endpoint)>, undiscovered: Vec<Undiscovered>) -> Self {
        Self {
            endpoints,
            undiscovered,
        }
    }
}

/// A Service whose pods give no evidence, and why: the timers decide for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Undiscovered {
    /// The Service, port and component Secret.
    pub service: ServicePort,
    /// Why.
    pub problem: DiscoveryProblem,
}

/// Why a Service gives no evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DiscoveryProblem {
    /// Its EndpointSlices could not be listed (Forbidden: the Role lacks `list` on
    /// `endpointslices`; the API server unreachable), in the API server's words.
    ListFailed {
        /// What the API server or the client said.
        detail: String,
    },
    /// No EndpointSlice is labelled with the Service's name (no such Service, or one
    /// without a selector).
    NoSlices,
    /// Its slices list the port but no ready address: no pod serves now.
    NoReadyAddress {
        /// Addresses listed but not ready.
        not_ready: usize,
    },
    /// Its slices do not list the port.
    PortNotListed {
        /// The ports they do list.
        listed: Vec<u16>,
    },
    /// No pod found was reached: each failed to connect, or what answered showed nothing
    /// of the profile's CAs (no network path to the pods from here: a NetworkPolicy, a Job
    /// outside the pod network, a proxy or mesh sidecar in between).
    Unreachable {
        /// The pods tried.
        pods: usize,
    },
}

impl std::fmt::Display for Undiscovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.service)?;
        match &self.problem {
            DiscoveryProblem::ListFailed { detail } => {
                write!(f, "its EndpointSlices cannot be listed ({detail})")
            }
            DiscoveryProblem::NoSlices => f.write_str("no EndpointSlice names it"),
            DiscoveryProblem::NoReadyAddress { not_ready } => {
                write!(f, "no ready pod ({not_ready} not ready)")
            }
            DiscoveryProblem::PortNotListed { listed } => {
                let listed: Vec<String> = listed.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "its EndpointSlices do not list the port (they list {})",
                    if listed.is_empty() {
                        "none".to_owned()
                    } else {
                        listed.join(", ")
                    }
                )
            }
            DiscoveryProblem::Unreachable { pods } => write!(
                f,
                "none of its {pods} pod(s) was reached (no connection, or what answered \
                 shows none of the profile's CAs: no network path from here, or a proxy in \
                 between?)"
            ),
        }?;
        f.write_str("; no evidence, the timers decide")
    }
}

/// The servers of a run: literal endpoints, and Services resolved by a [`Discover`]er
/// each time evidence is gathered (pods come and go: a restarted pod has a new address),
/// all probed with [`crate::probe::probe`].
#[derive(Clone)]
pub struct Probes {
    endpoints: Vec<Endpoint>,
    services: Vec<ServicePort>,
    discover: Option<Arc<dyn Discover>>,
    limits: ProbeLimits,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("endpoints", &self.endpoints)
            .field("services", &self.services)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Probes {
    /// These literal endpoints, probed within `limits`.
    pub fn new(endpoints: Vec<Endpoint>, limits: ProbeLimits) -> Self {
        Self {
            endpoints,
            services: Vec::new(),
            discover: None,
            limits,
        }
    }

    /// With Services resolved by `discover` each time (nothing is resolved without one).
    pub fn with_services(
        mut self,
        services: Vec<ServicePort>,
        discover: impl Discover + 'static,
    ) -> Self {
        self.services = services;
        self.discover = Some(Arc::new(discover));
        self
    }

    /// Whether there is nothing to probe.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && (self.services.is_empty() || self.discover.is_none())
    }

    /// Finds the Services' pods, then probes them and the literal endpoints; a Service
    /// whose pods none could be reached ([`certrotate_core::evidence::none_reached`], the
    /// profile's CAs read from `observed`) is [`DiscoveryProblem::Unreachable`], its probes
    /// dropped.
    pub async fn gather_now(&self, profile: &Profile, observed: &Observed) -> Gathered {
        let generations = certrotate_core::evidence::CaGenerations::of(profile, observed);
        let discovered = match (&self.discover, self.services.is_empty()) {
            (Some(d), false) => d.discover(profile, &self.services).await,
            _ => Discovered::default(),
        };
        let mut endpoints = self.endpoints.clone();
        endpoints.extend(discovered.endpoints.iter().map(|(_, e)| e.clone()));
        let probed: Vec<Probed> = crate::probe::probe(&endpoints, &self.limits)
            .await
            .into_iter()
            .map(|(endpoint, outcome)| (endpoint, outcome.map_err(|e| e.failure)))
            .collect();
        let literal = self.endpoints.len();
        let (mut kept, found) = {
            let mut probed = probed;
            let found = probed.split_off(literal.min(probed.len()));
            (probed, found)
        };
        let mut undiscovered = discovered.undiscovered;
        // Group the pods' probes by Service (in the order discovery gave them).
        let mut groups: Vec<(ServicePort, Vec<Probed>)> = Vec::new();
        for ((service, _), probe) in discovered.endpoints.into_iter().zip(found) {
            match groups.iter_mut().find(|(s, _)| *s == service) {
                Some((_, g)) => g.push(probe),
                None => groups.push((service, vec![probe])),
            }
        }
        for (service, group) in groups {
            if certrotate_core::evidence::none_reached(&group, &generations) {
                undiscovered.push(Undiscovered {
                    service,
                    problem: DiscoveryProblem::Unreachable { pods: group.len() },
                });
            } else {
                kept.extend(group);
            }
        }
        Gathered::new(kept, undiscovered)
    }
}

impl EvidenceSource for Probes {
    fn gather<'a>(
        &'a self,
        profile: &'a Profile,
        observed: &'a Observed,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(self.gather_now(profile, observed))
    }
}
