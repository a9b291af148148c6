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
