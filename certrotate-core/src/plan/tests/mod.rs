//! Tests of the planner with no store: each builds the observed state of a phase by
//! applying earlier plans to an in-memory [`Observed`] and plans from it.
//!
//! - `table.rs`: one row per phase transition: the transition, what comes next, the summary,
//!   and which keys each step writes and why.
//! - here: the harness the table uses (applying a plan as a store would, reaching a phase),
//!   and what holds across phases: typed notes for absent and unheld objects, a read-only
//!   status, and a missing HMAC Secret created in every phase and mode.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod table;
mod times;

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::generate::SeededEntropy;
use crate::profile::{WebhookKind, WorkloadKind};
use crate::wire::{ANNOTATION_INTERVAL, ANNOTATION_SINCE};

const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);
const INTERVAL: Duration = Duration::from_secs(300);

fn profile() -> Profile {
    Profile::envoy_gateway("ns")
}

fn options(overwrite: bool) -> RotationPolicy {
    RotationPolicy::default()
        .with_trigger(if overwrite {
            Trigger::Always
        } else {
            Trigger::Never
        })
        .with_convergence_interval(INTERVAL)
}

/// Plans at `now` with `options` and applies the plan.
fn step(observed: &mut Observed, options: &RotationPolicy, now: OffsetDateTime) -> RotationPlan {
    // The seed follows the clock, so every CA minted along the way is a different one.
    let seed = now.unix_timestamp().unsigned_abs();
    let p = plan(
        &profile(),
        observed,
        options,
        now,
        &mut SeededEntropy::new(seed),
    )
    .unwrap();
    observed.apply(&p);
    p
}

/// The observed state of an install, with the profile's workload and webhook present.
fn installed() -> Observed {
    let mut o = Observed::default();
    let objects = ProfileObjects::of(&profile());
    for w in &objects.workloads {
        o.workloads
            .insert(w.clone(), ObservedWorkload::new(BTreeMap::new(), true));
    }
    for w in &objects.webhooks {
        o.webhooks
            .insert(w.clone(), ObservedWebhook::new(vec![Vec::new()], "1"));
    }
    step(&mut o, &options(false), T0);
    o
}

/// The state right after entering `phase` (at T0 + 1h), with `opts` for the rotation.
fn in_phase(phase: Phase, opts: &RotationPolicy) -> (Observed, OffsetDateTime) {
    let mut o = installed();
    let mut now = T0 + Duration::from_secs(3600);
    loop {
        let p = step(&mut o, opts, now);
        if p.to == phase || p.next == Next::Done {
            assert_eq!(p.to, phase, "reached {phase}");
            return (o, now);
        }
        if let Next::WaitUntil { at, .. } = p.next {
            now = at;
        }
    }
}

#[test]
fn absent_and_unheld_objects_are_typed_notes() {
    let mut o = Observed::default();
    let objects = ProfileObjects::of(&profile());
    // Local mode: the store cannot hold the workload; the webhook is simply absent.
    let workload = objects.workloads[0].clone();
    o.unavailable.insert(AnyRef::Workload(workload.clone()));
    step(&mut o, &options(false), T0);
    let (o, now) = {
        let mut o = o;
        let mut now = T0 + Duration::from_secs(3600);
        let p = step(&mut o, &options(true), now);
        assert_eq!(p.to, Phase::Prepared);
        now += Duration::from_secs(1);
        (o, now)
    };
    let p = plan(
        &profile(),
        &o,
        &options(true),
        now,
        &mut SeededEntropy::new(1),
    )
    .unwrap();
    let notes: Vec<&Note> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Note(n) => Some(n),
            Step::Secret(_) | Step::Webhook(_) | Step::Restart(_) => None,
        })
        .collect();
    let webhook = WebhookRef::new(WebhookKind::Mutating, "envoy-gateway-topology-injector.ns");
    assert!(
        notes.contains(&&Note::new(workload, NoteReason::NotHeldByStore)),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.reason == NoteReason::Absent && matches!(n.object, AnyRef::Webhook(_))),
        "{notes:?} ({webhook})"
    );
}

#[test]
fn status_is_read_only_and_says_what_comes_next() {
    let profile = profile();
    // Nothing installed: the next run installs; no key is generated to say so.
    let s = status(&profile, &Observed::default(), &options(false), T0).unwrap();
    assert_eq!(s.next_run, NextRun::Install);
    assert!(s.state.is_none());
    // Mid-rotation, in trust: the next run enters leaves, at the end of the interval.
    let (o, now) = in_phase(Phase::Trust, &options(true));
    let s = status(&profile, &o, &options(false), now).unwrap();
    assert_eq!(s.next_run, NextRun::Advance { to: Phase::Leaves });
    assert_eq!(
        s.next,
        Next::WaitUntil {
            at: now + INTERVAL,
            reason: WaitReason::Converging {
                phase: Phase::Trust
            }
        }
    );
    assert_eq!(s.state.map(|st| st.phase), Some(Phase::Trust));
}

/// Red-team finding 04: an HMAC Secret whose key is empty or 1 byte (shorter than any key
/// this tool makes) was kept as it was. It is replaced, with its own reason; a 16-byte key
/// (the shortest a profile may ask for) is kept.
#[test]
fn an_hmac_key_too_short_is_replaced_and_a_short_but_valid_one_kept() {
    let hmac = ObjectRef::new("ns", "envoy-oidc-hmac");
    for (length, replaced) in [(0, true), (1, true), (15, true), (16, false), (32, false)] {
        let mut observed = installed();
        let secret = observed
            .secrets
            .get_mut(&hmac)
            .expect("HMAC Secret installed");
        secret.data.insert("hmac-secret".into(), vec![7; length]);
        let p = plan(
            &profile(),
            &observed,
            &options(false),
            T0,
            &mut SeededEntropy::new(5),
        )
        .unwrap();
        let step = p
            .steps
            .iter()
            .find_map(|s| match s {
                Step::Secret(c) if c.secret == hmac => Some(c),
                _ => None,
            })
            .expect("a step for the HMAC Secret");
        if replaced {
            assert_eq!(
                step.reason,
                StepReason::HmacKeyTooShort { length },
                "{length}"
            );
            let key = step.data.get("hmac-secret").and_then(Option::as_ref);
            assert_eq!(key.map(|k| k.expose_secret().len()), Some(32), "{length}");
        } else {
            assert_eq!(step.action, SecretAction::Unchanged, "{length}: {step:?}");
        }
    }
}

/// A missing HMAC Secret is created by the first step of every plan, in every phase and
/// mode: install, not managed, adoption, stable, each rotation phase (waiting or not).
#[test]
fn a_missing_hmac_secret_is_created_in_every_phase_and_mode() {
    let hmac = ObjectRef::new("ns", "envoy-oidc-hmac");
    let mut states: Vec<(&str, Observed, OffsetDateTime, RotationPolicy)> = Vec::new();
    states.push(("install", Observed::default(), T0, options(false)));
    let mut unmanaged = installed();
    unmanaged
        .secrets
        .remove(&ObjectRef::new("ns", "envoy-gateway-ca"));
    states.push(("not managed", unmanaged.clone(), T0, options(false)));
    states.push(("adoption", unmanaged, T0, options(true)));
    states.push(("stable", installed(), T0, options(false)));
    for phase in [Phase::Prepared, Phase::Trust, Phase::Leaves] {
        let (o, now) = in_phase(phase, &options(true));
        states.push(("waiting", o.clone(), now, options(true)));
        states.push(("converged", o, now + INTERVAL, options(true)));
    }
    let (o, now) = in_phase(Phase::Retire, &options(true).with_drop_old_ca(true));
    states.push(("retire", o, now + INTERVAL, options(true)));
    for (name, mut observed, now, opts) in states {
        observed.secrets.remove(&hmac);
        let p = plan(
            &profile(),
            &observed,
            &opts,
            now,
            &mut SeededEntropy::new(5),
        )
        .unwrap();
        let first = p.steps.first().expect("a step");
        assert!(
            matches!(first, Step::Secret(c) if c.secret == hmac && c.action == SecretAction::Create),
            "{name} ({:?}): {first:?}",
            p.from
        );
    }
}

/// Hardening round 3, finding 2: a CA Secret without the `current-ca` annotation (a CA the
/// user brought, annotations dropped by GitOps or a restore) still issues every leaf; a
/// request rotates away from its `ca.crt`, not from nothing ("up to date", exit 0).
#[test]
fn a_request_rotates_away_from_a_ca_secret_without_annotations() {
    let mut o = installed();
    let objects = ProfileObjects::of(&profile());
    let ca = o.secrets.get_mut(&objects.ca_secret).unwrap();
    ca.annotations.clear();
    let loaded = crate::Fingerprint::of(
        &crate::pem_blocks::certificates(&ca.data[KEY_CA_CRT], &crate::Origin::new("t")).unwrap()
            [0],
    );
    let base = rotation_base(&profile(), &o).unwrap();
    assert_eq!(base, Some(loaded), "the CA its ca.crt holds");
    let opts = options(false).with_trigger(Trigger::AwayFrom(base));
    let p = step(&mut o, &opts, T0 + Duration::from_secs(3600));
    assert_eq!(p.to, Phase::Prepared, "{:?}", p.summary);
    assert!(matches!(
        p.summary,
        Summary::Prepared {
            trigger: RotationTrigger::Request,
            ..
        }
    ));
}

/// Finding 3: an interval persisted by a rotation (a typo such as `5M`) is replaced by an
/// explicit one with `force` (the CLI's `--convergence-interval D --force`), and kept
/// without it.
#[test]
fn an_explicit_interval_with_force_replaces_the_persisted_one() {
    let five_months = Duration::from_secs(150 * 86_400);
    let mut o = installed();
    let now = T0 + Duration::from_secs(3600);
    // Started before the bound existed: the planner persists what it was given.
    let objects = ProfileObjects::of(&profile());
    let p = step(&mut o, &options(true), now);
    assert_eq!(p.to, Phase::Prepared);
    o.secrets
        .get_mut(&objects.ca_secret)
        .unwrap()
        .annotations
        .insert(ANNOTATION_INTERVAL.into(), "150days".into());
    let p = step(&mut o, &options(false), now);
    assert_eq!(p.to, Phase::Trust);
    let later = now + Duration::from_secs(600);
    let kept = step(&mut o, &options(false), later);
    assert_eq!(kept.to, Phase::Trust, "the persisted interval holds");
    assert!(matches!(kept.next, Next::WaitUntil { at, .. } if at >= now + five_months));
    let replaced = options(false)
        .with_convergence_interval(Duration::from_secs(300))
        .with_force(true)
        .with_replace_interval(true);
    let p = step(&mut o, &replaced, later);
    assert_eq!(p.to, Phase::Leaves, "{:?}", p.summary);
    let state =
        RotationState::from_secret(&o.secrets[&objects.ca_secret], &objects.ca_secret).unwrap();
    assert_eq!(state.interval, Some(Duration::from_secs(300)), "persisted");
}

/// Finding 3: an interval whose two waits take more than a tenth of the current CA's
/// remaining life is refused before anything is written.
#[test]
fn an_interval_out_of_proportion_to_the_ca_is_refused() {
    let mut o = installed();
    let opts = options(true).with_convergence_interval(Duration::from_secs(150 * 86_400));
    let e = plan(
        &profile(),
        &o,
        &opts,
        T0 + Duration::from_secs(3600),
        &mut SeededEntropy::new(1),
    )
    .unwrap_err();
    assert!(e.to_string().contains("convergence_interval"), "{e}");
    // The default interval is always accepted, even for a CA near its end.
    let near_end = T0 + Duration::from_secs(5 * 365 * 86_400 - 600);
    let p = step(&mut o, &options(true), near_end);
    assert_eq!(p.to, Phase::Prepared);
}

/// Info item: a schedule at or above the CA validity would rotate on every run.
#[test]
fn a_schedule_not_shorter_than_the_ca_validity_is_refused() {
    let o = installed();
    let opts = options(false).with_trigger(Trigger::Schedule {
        rotate_ca_before: profile().ca.validity,
    });
    let e = plan(&profile(), &o, &opts, T0, &mut SeededEntropy::new(1)).unwrap_err();
    assert!(e.to_string().contains("rotate_ca_before"), "{e}");
}

/// Finding 8: a CA Secret put in the namespace before the first install (no component
/// Secret issued from it) is refused, unless the caller says it put it there.
#[test]
fn a_planted_ca_secret_is_refused_unless_trusted() {
    let planted = installed();
    let objects = ProfileObjects::of(&profile());
    let mut o = Observed::default();
    for w in &objects.workloads {
        o.workloads
            .insert(w.clone(), ObservedWorkload::new(BTreeMap::new(), true));
    }
    o.secrets.insert(
        objects.ca_secret.clone(),
        planted.secrets[&objects.ca_secret].clone(),
    );
    let e = plan(
        &profile(),
        &o,
        &options(false),
        T0,
        &mut SeededEntropy::new(2),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::UnprovenCaSecret { ref secret, .. } if *secret == objects.ca_secret),
        "{e}"
    );
    let trusted = options(false).with_trust_existing_ca(true);
    let p = step(&mut o, &trusted, T0);
    assert_eq!(p.summary, Summary::CreatedMissing);
    // Once it issued the leaves, later runs need no flag.
    let p = step(&mut o, &options(false), T0);
    assert_eq!(p.summary, Summary::UpToDate);
    // Leaves of another CA in every component Secret (certgen's, or a CA Secret replaced
    // by hand): refused too.
    let mut elsewhere = Observed::default();
    step(
        &mut elsewhere,
        &options(false),
        T0 + Duration::from_secs(86_400),
    );
    o.secrets.insert(
        objects.ca_secret.clone(),
        elsewhere.secrets[&objects.ca_secret].clone(),
    );
    let e = plan(
        &profile(),
        &o,
        &options(false),
        T0,
        &mut SeededEntropy::new(3),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnprovenCaSecret { .. }), "{e}");
}

/// Issue 22: mid-rotation, `status` says which CAs each bundle holds (with their roles) and
/// which CA issued each leaf: in trust, every bundle holds [next, current] and every leaf
/// is the current CA's; in leaves, every leaf is the (promoted) next CA's.
#[test]
fn status_shows_what_each_bundle_holds_and_who_issued_each_leaf() {
    let profile = profile();
    let (o, now) = in_phase(Phase::Trust, &options(true));
    let s = status(&profile, &o, &options(false), now).unwrap();
    let st = s.state.clone().unwrap();
    // 3 component ca.crts and the webhook's caBundle(s).
    assert!(s.trust_stores.len() >= 4, "{:#?}", s.trust_stores);
    for store in &s.trust_stores {
        let roles: Vec<_> = store.cas.iter().map(|c| c.role).collect();
        assert_eq!(roles, [Some("next"), Some("current")], "{}", store.store);
        assert!(
            store
                .cas
                .iter()
                .all(|c| c.subject.contains("serialNumber="))
        );
    }
    assert_eq!(s.leaves.len(), 3);
    for leaf in &s.leaves {
        let by = leaf.issued_by.as_ref().unwrap();
        assert_eq!(Some(by.fingerprint), st.current, "{}", leaf.secret);
        assert_eq!(leaf.issuer, by.subject);
    }
    let (o, now) = in_phase(Phase::Leaves, &options(true));
    let s = status(&profile, &o, &options(false), now).unwrap();
    let st = s.state.clone().unwrap();
    for leaf in &s.leaves {
        let by = leaf.issued_by.as_ref().unwrap();
        assert_eq!(Some(by.fingerprint), st.current, "{}", leaf.secret);
        assert_eq!(by.role, Some("current"));
    }
    for store in &s.trust_stores {
        let roles: Vec<_> = store.cas.iter().map(|c| c.role).collect();
        assert_eq!(
            roles,
            [Some("current"), Some("previous")],
            "{}",
            store.store
        );
    }
}

#[test]
fn a_pending_restart_is_asked_again_and_holds_every_phase_it_waits_in() {
    let opts = options(true);
    for phase in [Phase::Trust, Phase::Leaves] {
        let (mut o, now) = in_phase(phase, &opts);
        for w in o.workloads.values_mut() {
            *w = w.clone().with_restart_pending(true);
        }
        // Long after the interval: the clock alone would let the phase advance.
        let later = now + Duration::from_secs(24 * 3600);
        let p = plan(&profile(), &o, &opts, later, &mut SeededEntropy::new(1)).unwrap();
        assert_eq!((p.from, p.to), (phase, phase), "{phase}: {p:?}");
        let workload = WorkloadRef::new(WorkloadKind::Deployment, "ns", "envoy-ratelimit");
        assert_eq!(
            p.next,
            Next::WaitForRollout {
                workloads: vec![workload.clone()]
            },
            "{phase}"
        );
        let restarts: Vec<_> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Restart(r) => Some((r.workload.clone(), r.reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            restarts,
            vec![(workload, StepReason::UnfinishedRestart)],
            "{phase}"
        );
        assert!(
            !p.steps
                .iter()
                .any(|s| matches!(s, Step::Secret(c) if c.action != SecretAction::Unchanged)),
            "{phase}: {p:?}"
        );
    }
}

#[test]
fn a_pending_restart_on_a_stable_install_is_asked_again() {
    let mut o = installed();
    for w in o.workloads.values_mut() {
        *w = w.clone().with_restart_pending(true);
    }
    let p = plan(
        &profile(),
        &o,
        &options(false),
        T0 + Duration::from_secs(3600),
        &mut SeededEntropy::new(1),
    )
    .unwrap();
    assert!(
        p.steps.iter().any(|s| matches!(
            s,
            Step::Restart(r) if r.reason == StepReason::UnfinishedRestart
        )),
        "{p:?}"
    );
}

/// Issue 23: the proxies the built-in profile selects by label (found by the observation,
/// in `Observed::selected`) are restarted with the rate limit when the trust step writes
/// the new CA into their `ca.crt` (Envoy's static `trusted_ca` loads only at start), and
/// the leaves wait for their rollouts, as does the old CA's drop.
#[test]
fn selected_proxies_are_restarted_after_trust_and_their_rollouts_hold_the_next_phase() {
    let mut o = installed();
    let proxy = WorkloadRef::new(WorkloadKind::DaemonSet, "ns", "envoy-ns-eg-1a2b3c4d");
    o.selected.insert(proxy.clone());
    o.workloads
        .insert(proxy.clone(), ObservedWorkload::new(BTreeMap::new(), true));
    let ratelimit = WorkloadRef::new(WorkloadKind::Deployment, "ns", "envoy-ratelimit");
    let opts = options(true).with_drop_old_ca(true);
    let restarted = |p: &RotationPlan| -> Vec<WorkloadRef> {
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Restart(r) => Some(r.workload.clone()),
                Step::Secret(_) | Step::Webhook(_) | Step::Note(_) => None,
            })
            .collect()
    };
    let mut now = T0 + Duration::from_secs(3600);
    let mut seen = Vec::new();
    loop {
        let p = step(&mut o, &opts, now);
        if p.from != p.to || p.to == Phase::Prepared {
            seen.push((p.from, p.to, restarted(&p)));
        }
        match p.to {
            Phase::Trust | Phase::Leaves if p.from != p.to => {
                // The rollout of the proxy is still going: the next phase waits for it.
                o.workloads.get_mut(&proxy).unwrap().rollout_complete = false;
                let wait = plan(
                    &profile(),
                    &o,
                    &opts,
                    now + INTERVAL * 2,
                    &mut SeededEntropy::new(7),
                )
                .unwrap();
                assert_eq!(
                    wait.next,
                    Next::WaitForRollout {
                        workloads: vec![proxy.clone()]
                    },
                    "{}",
                    p.to
                );
                assert_eq!(wait.to, p.to, "held in {}", p.to);
                o.workloads.get_mut(&proxy).unwrap().rollout_complete = true;
            }
            _ => {}
        }
        if p.next == Next::Done {
            break;
        }
        if let Next::WaitUntil { at, .. } = p.next {
            now = at;
        }
    }
    let into_trust = seen
        .iter()
        .find(|(_, to, _)| *to == Phase::Trust)
        .expect("the rotation went through trust");
    assert_eq!(into_trust.2, [ratelimit.clone(), proxy.clone()]);
    let into_leaves = seen
        .iter()
        .find(|(_, to, _)| *to == Phase::Leaves)
        .expect("the rotation went through leaves");
    assert_eq!(into_leaves.2, [ratelimit, proxy]);
}
