//! Persisted times at the edges of what RFC 3339 can say (issue 19, finding 5): a
//! `phase-since` of `9999-12-31T23:59:59-23:59` is year 10000 in UTC, which `time` cannot
//! hold; converting it to UTC, or adding an interval to a time near year 9999, panicked
//! `status` and `rotate` on every run. Every such time is an error naming the annotation
//! (or a wait that saturates), never a panic.

use proptest::prelude::{Just, ProptestConfig, any, prop, prop_assert, prop_oneof, proptest};
use proptest::strategy::Strategy as Gen;

use super::*;

/// The state of `phase` with its `phase-since` annotation replaced by `since`.
fn with_since(phase: Phase, since: &str) -> (Observed, OffsetDateTime) {
    let (mut o, now) = in_phase(phase, &options(true));
    let ca = ProfileObjects::of(&profile()).ca_secret;
    o.secrets
        .get_mut(&ca)
        .expect("CA Secret installed")
        .annotations
        .insert(ANNOTATION_SINCE.into(), since.into());
    (o, now)
}

/// Runs the codec, `status` and a plan (with and without `force`) over `observed`,
/// rendering every error: none may panic.
fn exercise(observed: &Observed, now: OffsetDateTime) -> Vec<String> {
    let profile = profile();
    let ca = ProfileObjects::of(&profile).ca_secret;
    let mut errors = Vec::new();
    if let Some(secret) = observed.secrets.get(&ca) {
        match RotationState::from_secret(secret, &ca) {
            // Whatever was read is written back the same way.
            Ok(state) => {
                let annotations = state.annotations();
                let mut again = secret.clone();
                for (k, v) in annotations {
                    match v {
                        Some(v) => again.annotations.insert(k, v),
                        None => again.annotations.remove(&k),
                    };
                }
                let reread = RotationState::from_secret(&again, &ca).expect("re-read");
                // Written at second precision, as Kubernetes does.
                assert_eq!(reread.annotations(), state.annotations());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for (overwrite, force) in [(false, false), (false, true), (true, false), (true, true)] {
        let opts = options(overwrite).with_force(force);
        match status(&profile, observed, &opts, now) {
            Ok(s) => {
                assert_in_range(&s.next);
                // The JSON a `status -o json` prints.
                serde_json::to_string(&s).expect("status serializes");
            }
            Err(e) => errors.push(e.to_string()),
        }
        match plan(&profile, observed, &opts, now, &mut SeededEntropy::new(3)) {
            Ok(p) => {
                assert_in_range(&p.next);
                serde_json::to_string(&p).expect("plan serializes");
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

/// A time the core returns is in UTC, in the years 0000 to 9999: the CLI formats it, and
/// an engine sleeps until it.
fn assert_in_range(next: &Next) {
    if let Next::WaitUntil { at, .. } = next {
        assert!(
            at.offset().is_utc() && (0..=9999).contains(&at.year()),
            "{at}"
        );
    }
}

/// The time of the finding: year 10000 in UTC. It is refused when read, naming the
/// annotation, by `status` and by a plan, with or without `force`.
#[test]
fn a_phase_since_past_year_9999_in_utc_is_an_error_naming_the_annotation() {
    for phase in [Phase::Stable, Phase::Trust, Phase::Leaves] {
        let (o, now) = with_since(phase, "9999-12-31T23:59:59-23:59");
        let errors = exercise(&o, now);
        // The codec, then `status` and a plan with each of the four option sets.
        assert_eq!(errors.len(), 1 + 2 * 4, "{phase}: {errors:?}");
        for e in &errors {
            assert!(
                e.contains(ANNOTATION_SINCE) && e.contains("0000 to 9999"),
                "{phase}: {e}"
            );
        }
    }
}

/// A `phase-since` in year 9999 (representable in UTC: 23:56) plus the convergence
/// interval is past year 9999. Added at its own offset, it made a time of year 10000 in
/// UTC, which `status` returned as the wait and the CLI panicked formatting; now the
/// time is read into UTC and the sum is an error (with `force`, which computes it).
#[test]
fn an_interval_added_past_year_9999_is_an_error() {
    let (o, now) = with_since(Phase::Trust, "9999-12-31T23:26:00-00:30");
    let errors = exercise(&o, now);
    assert!(
        errors.iter().any(|e| e.contains("time out of range")),
        "{errors:?}"
    );
}

/// Formatting is total: a time `time` cannot convert to UTC keeps its offset.
#[test]
fn rfc3339_formats_any_time() {
    let far = OffsetDateTime::parse(
        "9999-12-31T23:59:59-23:59",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(crate::rfc3339(far), "9999-12-31T23:59:59-23:59");
    assert_eq!(
        crate::parse_rfc3339("9999-12-31T23:59:59-23:59"),
        Err(crate::TimeError::OutOfRange)
    );
    assert_eq!(
        crate::parse_rfc3339("0000-01-01T00:00:00+00:01"),
        Err(crate::TimeError::OutOfRange)
    );
}

/// An odd value is named by its annotation, and only quoted when plain.
#[test]
fn an_unparsable_since_is_quoted_only_when_plain() {
    let (o, now) = with_since(Phase::Trust, "9999-12-31T23:59:59-23:59");
    let errors = exercise(&o, now);
    assert!(
        errors[0].contains("\"9999-12-31T23:59:59-23:59\""),
        "{errors:?}"
    );
    let key = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
    let (o, now) = with_since(Phase::Trust, key);
    let errors = exercise(&o, now);
    assert!(errors.iter().all(|e| !e.contains(key)), "{errors:?}");
}

/// Any RFC 3339 time, at any offset the format allows, in years 0000 to 9999.
fn any_rfc3339() -> impl Gen<Value = String> {
    (
        0u32..=9999,
        1u32..=12,
        1u32..=31,
        0u32..=23,
        0u32..=59,
        0u32..=60,
        prop_oneof![
            Just(None),
            (any::<bool>(), 0u32..=23, 0u32..=59).prop_map(Some)
        ],
        prop_oneof![Just(""), Just(".5"), Just(".999999999")],
    )
        .prop_map(|(y, mo, d, h, mi, s, offset, frac)| {
            let offset = match offset {
                None => "Z".to_owned(),
                Some((minus, oh, om)) => {
                    format!("{}{oh:02}:{om:02}", if minus { '-' } else { '+' })
                }
            };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{offset}")
        })
}

/// The edges, always tried besides the random ones.
fn edges() -> impl Gen<Value = String> {
    prop::sample::select(vec![
        "9999-12-31T23:59:59-23:59".to_owned(),
        "9999-12-31T23:59:59.999999999-00:01".to_owned(),
        "9999-12-31T23:59:59Z".to_owned(),
        "9999-12-31T00:00:00+23:59".to_owned(),
        "0000-01-01T00:00:00+23:59".to_owned(),
        "0000-01-01T00:00:00Z".to_owned(),
        "0000-01-01T00:00:00-23:59".to_owned(),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every RFC 3339 time through the state codec, `status` and a plan, in every phase
    /// the time matters in, at a `now` anywhere in the years: an answer or an error,
    /// never a panic.
    #[test]
    fn any_persisted_time_is_an_answer_or_an_error(
        since in prop_oneof![any_rfc3339(), edges()],
        now in prop_oneof![any_rfc3339(), edges()],
        phase in prop::sample::select(vec![Phase::Stable, Phase::Trust, Phase::Leaves]),
    ) {
        let (o, _) = with_since(phase, &since);
        // Only times `time` parses matter here (day 31 of February does not).
        let Ok(now) = OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339) else {
            return Ok(());
        };
        for e in exercise(&o, now) {
            prop_assert!(!e.is_empty());
        }
    }
}

/// `--force` is two things, each its own field. A stable install whose last rotation
/// ended a minute from now (a clock that was ahead): without either, a new rotation is
/// refused naming the time; `accept_clock_skew` alone accepts the time but keeps the
/// too-soon guard (a wait); `skip_too_soon` alone still refuses the time; both rotate.
#[test]
fn force_is_accepting_a_skewed_clock_and_skipping_the_too_soon_guard() {
    let (mut o, _) = in_phase(Phase::Stable, &options(true));
    let now = T0 + Duration::from_secs(3 * 3600);
    let ahead = crate::rfc3339(now + Duration::from_secs(60));
    let ca = ProfileObjects::of(&profile()).ca_secret;
    o.secrets
        .get_mut(&ca)
        .expect("CA Secret installed")
        .annotations
        .insert(ANNOTATION_SINCE.into(), ahead);
    let plan_with = |skip_too_soon: bool, accept_clock_skew: bool| {
        let mut policy = options(true);
        policy.skip_too_soon = skip_too_soon;
        policy.accept_clock_skew = accept_clock_skew;
        plan(&profile(), &o, &policy, now, &mut SeededEntropy::new(4))
    };
    for skip_too_soon in [false, true] {
        let err = plan_with(skip_too_soon, false).expect_err("a phase-since ahead is refused");
        assert!(err.to_string().contains("is later than now"), "{err}");
    }
    let waits = plan_with(false, true).expect("the time is accepted");
    assert!(
        matches!(waits.summary, Summary::TooSoon { .. }),
        "{:?}",
        waits.summary
    );
    let rotates = plan_with(true, true).expect("both: a rotation starts");
    assert_eq!((rotates.from, rotates.to), (Phase::Stable, Phase::Prepared));
}

/// Each trigger starts a rotation from stable exactly when it says: `Never` and a
/// satisfied `AwayFrom`/`Once` do not; `Always`, `Now` (one plan: as `Always`), an
/// unsatisfied `AwayFrom`/`Once`, and a schedule whose window covers the CA's end do.
#[test]
fn each_trigger_starts_a_rotation_when_it_says() {
    let (o, now) = in_phase(Phase::Stable, &options(false));
    let later = now + Duration::from_secs(3600);
    let current = rotation_base(&profile(), &o).unwrap();
    let state = RotationState::from_secret(
        &o.secrets[&ProfileObjects::of(&profile()).ca_secret],
        &ProfileObjects::of(&profile()).ca_secret,
    )
    .unwrap();
    let validity = profile().ca.validity;
    let cases = [
        (Trigger::Never, false),
        (Trigger::Always, true),
        (Trigger::Now, true),
        (Trigger::AwayFrom(current), true),
        (
            Trigger::AwayFrom(Some(crate::Fingerprint::of(b"another CA"))),
            false,
        ),
        (
            Trigger::Once("first".into()),
            state.request.as_deref() != Some("first"),
        ),
        (
            Trigger::Schedule {
                rotate_ca_before: Duration::from_secs(30 * 86_400),
            },
            false,
        ),
        (
            Trigger::Schedule {
                rotate_ca_before: validity - Duration::from_secs(60),
            },
            true,
        ),
    ];
    for (trigger, starts) in cases {
        let policy = options(false).with_trigger(trigger.clone());
        let p = plan(&profile(), &o, &policy, later, &mut SeededEntropy::new(5)).unwrap();
        assert_eq!(
            p.to == Phase::Prepared,
            starts,
            "{trigger:?}: {:?}",
            p.summary
        );
    }
    // `resolve` turns `Now` into the CA current at the read, and leaves the rest.
    let resolved = options(false)
        .with_trigger(Trigger::Now)
        .resolve(&profile(), &o)
        .unwrap();
    assert_eq!(resolved.trigger, Trigger::AwayFrom(current));
    let schedule = options(false).with_trigger(Trigger::Never);
    assert_eq!(schedule.resolve(&profile(), &o).unwrap(), schedule);
}
