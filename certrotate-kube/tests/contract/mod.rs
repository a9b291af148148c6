//! The contract every store must keep, and the protocol guarantees the engine must keep on
//! every store. Instantiated once per backend by `contract_suite!`. This file holds the
//! fixtures; the tests are split by behaviour: `store` (the store contract), `rotation`
//! (the engine on a store), `races`, `policy`, `repair`, `trust_gate`, `drift`, `alarms`,
//! `carried`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_CA_CRT, KEY_TLS_CRT, KEY_TLS_KEY, KEY_TRUST};
use certrotate_core::plan::{
    Next, ObjectRef, Observed, ObservedSecret, Phase, ProfileObjects, Strategy, Summary, WaitReason,
};
use certrotate_core::{
    Origin, Profile, RotationPolicy, SeededEntropy, Trigger, check, inspect_pem, verify_chain,
};
use certrotate_kube::{
    Clock, Engine, Event, FaultyStore, ManualClock, NewSecret, RunMode, SecretUpdate, Store,
    StoreError, observe,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub mod alarms;
pub mod carried;
pub mod drift;
mod policy;
mod races;
mod repair;
mod rotation;
mod store;
pub mod trust_gate;

// Every test binary that includes the contract sees the same names; not every one uses
// every group.
#[allow(unused_imports)]
pub use {policy::*, races::*, repair::*, rotation::*, store::*};

pub const NS: &str = "envoy-gateway-system";
pub const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn profile() -> Profile {
    Profile::envoy_gateway(NS)
}

pub fn secret(name: &str) -> ObjectRef {
    ObjectRef::new(NS, name)
}

pub fn options(overwrite: bool) -> RotationPolicy {
    let mut o = RotationPolicy::default();
    if overwrite {
        o.trigger = Trigger::Always;
    }
    o.convergence_interval = Duration::from_secs(300);
    o
}

/// An engine on `store` with the shared manual clock and keys from `seed`; each run passes
/// the contract's [`profile`] and its policy.
pub fn engine<S: Store>(
    store: S,
    clock: &Arc<ManualClock>,
    seed: u64,
) -> Engine<S, Arc<ManualClock>> {
    Engine::new(store)
        .with_clock(clock.clone())
        .with_entropy(SeededEntropy::new(seed))
}

/// The first install (one run, no overwrite), then an hour passes.
pub async fn install<S: Store + Clone>(store: &S, clock: &Arc<ManualClock>, seed: u64) {
    engine(store.clone(), clock, seed)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    clock.advance(HOUR);
}

pub fn until_done() -> RunMode {
    RunMode::UntilDone {
        timeout: Duration::from_secs(24 * 3600),
    }
}

/// An error and its causes, joined by ": " as `anyhow`'s `{:#}` prints them.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Every leaf trusted by every peer's ca.crt and webhook caBundle, at `now`.
pub fn assert_trusted(observed: &Observed, now: OffsetDateTime, context: &str) {
    let report = check(&profile(), observed, now, Duration::ZERO).unwrap();
    let bad: Vec<String> = report
        .untrusted()
        .map(|p| {
            format!(
                "{} not trusted by {}: {:?}",
                p.leaf, p.trusted_by, p.verdict
            )
        })
        .chain(report.problems.iter().cloned())
        .collect();
    assert!(bad.is_empty(), "{context}: {bad:#?}");
}

pub fn count_certs(pem: &[u8]) -> usize {
    inspect_pem(pem, &Origin::new("t"), T0).unwrap().len()
}

pub fn ca_pem(observed: &Observed) -> Vec<u8> {
    observed.secrets[&secret("envoy-gateway-ca")].data[KEY_CA_CRT].clone()
}

pub fn leaf_issued_by(
    observed: &Observed,
    component: &str,
    ca: &[u8],
    now: OffsetDateTime,
) -> bool {
    let leaf = &observed.secrets[&secret(component)].data[KEY_TLS_CRT];
    let o = Origin::new("t");
    verify_chain(leaf, &o, ca, &o, now).unwrap().is_trusted()
}

// ---- fixtures ------------------------------------------------------------------------------

/// certgen's validity for its CA and leaves: 5 × 365 days.
pub const CERTGEN_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);

/// What upstream's certgen leaves: the component Secrets of one CA valid for `validity`
/// (certgen's is 5 years, [`CERTGEN_VALIDITY`]), each `ca.crt` that CA alone, and no CA
/// Secret (certgen keeps no CA key anywhere).
pub async fn certgen_install<S: Store>(store: &S, validity: Duration) -> certrotate_core::Ca {
    let mut entropy = SeededEntropy::new(77);
    let params = certrotate_core::CaParams::new("envoy-gateway").with_validity(validity);
    let old = certrotate_core::Ca::generate(&params, T0, &mut entropy).unwrap();
    let p = profile();
    for c in &p.components {
        let leaf = old
            .issue_leaf(&p.leaf_params(c).unwrap(), T0, &mut entropy)
            .unwrap();
        let mut new = NewSecret::default();
        new.secret_type = "kubernetes.io/tls".into();
        new.data = BTreeMap::from([
            (KEY_CA_CRT.into(), old.cert_pem().as_bytes().to_vec()),
            (KEY_TLS_CRT.into(), leaf.cert_pem.into_bytes()),
            (
                KEY_TLS_KEY.into(),
                leaf.key_pem.expose_secret().as_bytes().to_vec(),
            ),
        ]);
        store.create_secret(&secret(&c.secret), &new).await.unwrap();
    }
    old
}

pub fn objects() -> ProfileObjects {
    ProfileObjects::of(&profile())
}

pub fn plain_secret(data: &[(&str, &[u8])]) -> ObservedSecret {
    ObservedSecret::new(
        "Opaque",
        data.iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        "",
    )
}

/// The CA Secret's rotation state, read the library's way.
pub async fn state<S: Store>(store: &S) -> certrotate_core::plan::RotationState {
    let observed = observe(store, &profile()).await.unwrap();
    let ca = secret("envoy-gateway-ca");
    certrotate_core::plan::RotationState::from_secret(&observed.secrets[&ca], &ca).unwrap()
}

/// What `certrotate rotate --overwrite` sends: a request away from the CA of now.
pub async fn request_now<S: Store>(store: &S) -> RotationPolicy {
    let observed = observe(store, &profile()).await.unwrap();
    let base = certrotate_core::plan::rotation_base(&profile(), &observed).unwrap();
    options(false).with_trigger(Trigger::AwayFrom(base))
}
