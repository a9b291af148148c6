//! The pods behind a profile's Services: discovery.k8s.io/v1 EndpointSlices listed by the
//! label `kubernetes.io/service-name` in the profile's namespace (the Role grants `list`
//! and `watch` on `endpointslices` there, nothing more), each *ready* address of the port
//! one endpoint, named by its pod (`targetRef`). A probe reaches each pod at its own
//! address, never the Service's virtual IP (which would reach one pod at random).

use std::collections::BTreeSet;
use std::net::IpAddr;

use certrotate_core::Profile;
use certrotate_core::evidence::ServicePort;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use super::KubeStore;
use crate::evidence::{BoxFuture, Discover, Discovered, DiscoveryProblem, Undiscovered};

/// The label an EndpointSlice names its Service with.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl KubeStore {
    /// Every ready pod address of each Service at its port, as [`Endpoint`]s named by
    /// their pods (server names from the profile's components); Services that yield none
    /// are returned with why (see [`DiscoveryProblem`]). Reads only; one LIST per Service.
    ///
    /// [`Endpoint`]: certrotate_core::evidence::Endpoint
    pub async fn discover_endpoints(
        &self,
        profile: &Profile,
        services: &[ServicePort],
    ) -> Discovered {
        let mut out = Discovered::default();
        for service in services {
            let api: Api<EndpointSlice> =
                Api::namespaced(self.client.clone(), &service.service.namespace);
            let params = ListParams::default()
                .labels(&format!("{SERVICE_NAME_LABEL}={}", service.service.name));
            let listed = crate::budget::step(self.retry(|| api.list(&params))).await;
            let slices = match listed {
                Ok(list) => list.items,
                Err(e) => {
                    out.undiscovered.push(Undiscovered {
                        service: service.clone(),
                        problem: DiscoveryProblem::ListFailed {
                            detail: e.to_string(),
                        },
                    });
                    continue;
                }
            };
            match ready_addresses(&slices, service.port) {
                Ok(found) => {
                    for (ip, pod) in found {
                        match service.endpoint(profile, ip, pod.as_deref()) {
                            Ok(endpoint) => out.endpoints.push((service.clone(), endpoint)),
                            // A validated profile names a component with a name to send.
                            Err(e) => out.undiscovered.push(Undiscovered {
                                service: service.clone(),
                                problem: DiscoveryProblem::ListFailed {
                                    detail: e.to_string(),
                                },
                            }),
                        }
                    }
                }
                Err(problem) => out.undiscovered.push(Undiscovered {
                    service: service.clone(),
                    problem,
                }),
            }
        }
        out
    }
}

impl Discover for KubeStore {
    fn discover<'a>(
        &'a self,
        profile: &'a Profile,
        services: &'a [ServicePort],
    ) -> BoxFuture<'a, Discovered> {
        Box::pin(self.discover_endpoints(profile, services))
    }
}

/// The ready addresses of the slices that list `port` (TCP), each with its pod's name, in
/// the slices' order and each once; or why there are none. An endpoint whose `ready` is
/// unset counts as ready, as the API documents ("should be interpreted as ready"); a
/// terminating one is never ready. Addresses that do not parse as IP addresses (an FQDN
/// slice) are skipped.
pub(crate) fn ready_addresses(
    slices: &[EndpointSlice],
    port: u16,
) -> Result<Vec<(IpAddr, Option<String>)>, DiscoveryProblem> {
    if slices.is_empty() {
        return Err(DiscoveryProblem::NoSlices);
    }
    let mut listed = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut not_ready = 0;
    for slice in slices {
        let ports: Vec<u16> = slice
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| p.port.and_then(|p| u16::try_from(p).ok()))
            .collect();
        listed.extend(ports.iter().copied());
        if !ports.contains(&port) || !matches!(&*slice.address_type, "IPv4" | "IPv6") {
            continue;
        }
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true)
                && !conditions.and_then(|c| c.terminating).unwrap_or(false);
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                if !ready {
                    not_ready += 1;
                } else if seen.insert(ip) {
                    found.push((ip, pod.clone()));
                }
            }
        }
    }
    if !listed.contains(&port) {
        return Err(DiscoveryProblem::PortNotListed {
            listed: listed.into_iter().collect(),
        });
    }
    if found.is_empty() {
        return Err(DiscoveryProblem::NoReadyAddress { not_ready });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn slice(json: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json).unwrap()
    }

    fn eg(address_type: &str, endpoints: serde_json::Value) -> EndpointSlice {
        slice(serde_json::json!({
            "metadata": {"name": "envoy-gateway-x", "labels": {SERVICE_NAME_LABEL: "envoy-gateway"}},
            "addressType": address_type,
            "ports": [{"name": "grpc", "port": 18000, "protocol": "TCP"}, {"name": "metrics", "port": 19001}],
            "endpoints": endpoints,
        }))
    }

    /// Each ready pod at its own address, IPv4 and IPv6, named by its pod; not-ready and
    /// terminating pods left out.
    #[test]
    fn every_ready_pod_address_is_an_endpoint() {
        let slices = [
            eg(
                "IPv4",
                serde_json::json!([
                    {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "eg-a"}},
                    {"addresses": ["10.244.0.6"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "eg-b"}},
                    {"addresses": ["10.244.0.7"], "conditions": {"ready": true, "terminating": true}, "targetRef": {"kind": "Pod", "name": "eg-c"}},
                    {"addresses": ["10.244.0.8"], "targetRef": {"kind": "Pod", "name": "eg-d"}},
                ]),
            ),
            eg(
                "IPv6",
                serde_json::json!([
                    {"addresses": ["fd00::5"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "eg-a"}},
                ]),
            ),
        ];
        let found = ready_addresses(&slices, 18000).unwrap();
        let shown: Vec<(String, Option<String>)> = found
            .into_iter()
            .map(|(ip, pod)| (ip.to_string(), pod))
            .collect();
        assert_eq!(
            shown,
            [
                ("10.244.0.5".to_owned(), Some("eg-a".to_owned())),
                ("10.244.0.8".to_owned(), Some("eg-d".to_owned())),
                ("fd00::5".to_owned(), Some("eg-a".to_owned())),
            ]
        );
    }

    /// No slice, no ready address, or a port no slice lists: each said, never an empty
    /// success (a Service with no ready pod is reported, not skipped).
    #[test]
    fn a_service_without_ready_pods_is_a_problem_not_an_empty_list() {
        assert_eq!(ready_addresses(&[], 18000), Err(DiscoveryProblem::NoSlices));
        let none_ready = [eg(
            "IPv4",
            serde_json::json!([{"addresses": ["10.244.0.6"], "conditions": {"ready": false}}]),
        )];
        assert_eq!(
            ready_addresses(&none_ready, 18000),
            Err(DiscoveryProblem::NoReadyAddress { not_ready: 1 })
        );
        assert_eq!(
            ready_addresses(&none_ready, 9443),
            Err(DiscoveryProblem::PortNotListed {
                listed: vec![18000, 19001]
            })
        );
    }
}
