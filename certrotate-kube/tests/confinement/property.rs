//! The property test: random trees under DIR with random crashes never make a rotation touch anything outside DIR.

#![allow(unused_imports)]

use super::*;

// ---- the property test -------------------------------------------------------------------

/// The Secrets of the envoy-gateway profile.
pub(crate) const SECRETS: &[&str] = &[
    "envoy-gateway-ca",
    "envoy-gateway",
    "envoy",
    "envoy-rate-limit",
    "envoy-oidc-hmac",
];

/// Where a planted thing goes, relative to DIR.
pub(crate) const PLANT_FOLDERS: &[&str] = &[
    "",
    NS,
    "envoy-gateway-system/envoy",
    "envoy-gateway-system/envoy-gateway-ca",
    "envoy-gateway-system/envoy-oidc-hmac",
    "envoy-gateway-system/envoy/..v1",
    "envoy-gateway-system/envoy-gateway-ca/..v1",
    "envoy-gateway-system/envoy-gateway-ca/..v2",
    "other",
];
/// Its name.
pub(crate) const PLANT_NAMES: &[&str] = &[
    "..data",
    "..lock",
    "..meta.json",
    "..data_tmp",
    "..tls.crt_tmp",
    "..v1",
    "..v2",
    "..v7",
    "ca.crt",
    "tls.crt",
    "tls.key",
    "ca.key",
    "hmac-secret",
    ".hmac",
    "envoy",
    "envoy-gateway-ca",
    "envoy-gateway-system",
    "junk",
];

/// What is planted.
#[derive(Clone, Debug)]
pub(crate) enum Plant {
    File(Vec<u8>),
    Folder,
    Fifo,
    /// An absolute link to the canary file outside DIR.
    LinkToCanary,
    /// A relative link climbing out of DIR to the canary.
    RelativeLinkToCanary,
    /// A link to the folder outside DIR.
    LinkToOutside,
    /// A link to a name outside DIR that does not exist.
    Dangling,
    /// A link to a sibling inside DIR.
    LinkInside(&'static str),
    /// The escape of finding 2.
    DotDot,
}

pub(crate) fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Plant::File),
        Just(Plant::Folder),
        Just(Plant::Fifo),
        Just(Plant::LinkToCanary),
        Just(Plant::RelativeLinkToCanary),
        Just(Plant::LinkToOutside),
        Just(Plant::Dangling),
        proptest::sample::select(PLANT_NAMES).prop_map(Plant::LinkInside),
        Just(Plant::DotDot),
    ]
}

/// One step of a run.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// A rotation (`--overwrite`), crashing before write N if set.
    Rotate {
        crash_at: Option<u64>,
    },
    /// Create what is missing (no overwrite).
    Install,
    Renew,
    Check,
    Status,
    Tidy,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::option::of(1..14u64).prop_map(|crash_at| Op::Rotate { crash_at }),
        Just(Op::Install),
        Just(Op::Renew),
        Just(Op::Check),
        Just(Op::Status),
        Just(Op::Tidy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random trees under DIR (on a fresh or an installed DIR), then random rotations,
    /// installs, renewals, checks, status reads and sweeps, some crashing part-way: nothing
    /// outside DIR is created, changed or deleted (the sibling tree is compared, content and
    /// metadata), and nothing outside is read (the canary's content, linked from inside,
    /// appears in no error, no Secret and no file under DIR).
    #[test]
    fn nothing_outside_dir_is_touched(
        layout in layouts(),
        installed in any::<bool>(),
        plants in proptest::collection::vec(
            (proptest::sample::select(PLANT_FOLDERS), proptest::sample::select(PLANT_NAMES), plant()),
            1..8,
        ),
        ops in proptest::collection::vec(op(), 1..5),
    ) {
        let site = Site::with(layout);
        if installed {
            copy_tree(&installed_template(layout), &site.dir);
        } else {
            std::fs::create_dir(&site.dir).unwrap();
        }
        for (folder, name, what) in &plants {
            site.plant(folder, name, what);
        }
        let before = site.outside_tree();
        let texts = run_ops(&site, &ops);
        prop_assert_eq!(site.outside_tree(), before);
        for text in &texts {
            prop_assert!(!text.contains(&site.canary), "canary read: {}", text);
        }
        site.assert_canary_nowhere_in_dir();
    }
}

/// Runs `ops` on the site's store; every error and every Secret's data, as text.
pub(crate) fn run_ops(site: &Site, ops: &[Op]) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(T0));
        let mut texts = Vec::new();
        let mut note = |r: Result<String, String>| match r {
            Ok(text) | Err(text) => texts.push(text),
        };
        for (i, op) in ops.iter().enumerate() {
            let seed = i as u64 + 1;
            let store = site.store();
            match op {
                Op::Rotate { crash_at } => {
                    let result = match crash_at {
                        Some(n) => engine(FaultyStore::new(store).crash_at_write(*n), &clock, seed)
                            .run(&profile(), &options(true), until_done())
                            .await
                            .map(|r| r.summary.to_string()),
                        None => engine(store, &clock, seed)
                            .run(&profile(), &options(true), until_done())
                            .await
                            .map(|r| r.summary.to_string()),
                    };
                    note(result.map_err(|e| e.to_chain()));
                }
                Op::Install => note(
                    engine(store, &clock, seed)
                        .run(&profile(), &options(false), RunMode::Once)
                        .await
                        .map(|r| r.summary.to_string())
                        .map_err(|e| e.to_chain()),
                ),
                Op::Renew => {
                    let mut o = options(false);
                    o.renew_before = Some(Duration::from_secs(10 * 365 * 86400));
                    note(
                        engine(store, &clock, seed)
                            .run(&profile(), &o, RunMode::Once)
                            .await
                            .map(|r| r.summary.to_string())
                            .map_err(|e| e.to_chain()),
                    );
                }
                Op::Check => note(
                    observe(&store, &contract::profile())
                        .await
                        .map(|o| format!("{o:?}"))
                        .map_err(|e| e.to_chain()),
                ),
                Op::Status => note(
                    engine(store, &clock, seed)
                        .plan(&profile(), &RotationPolicy::default())
                        .await
                        .map(|p| format!("{p:?}"))
                        .map_err(|e| e.to_chain()),
                ),
                Op::Tidy => note(
                    store
                        .tidy()
                        .map(|()| String::new())
                        .map_err(|e| e.to_chain()),
                ),
            }
            clock.advance(HOUR);
        }
        // Every Secret as the store reads it now, with its data as text.
        for name in SECRETS {
            note(
                site.store()
                    .read_secret(&secret(name))
                    .await
                    .map(|s| {
                        s.map(|s| {
                            s.data
                                .values()
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default()
                    })
                    .map_err(|e| e.to_chain()),
            );
        }
        texts
    })
}

/// An installed DIR, made once and copied into each case.
pub(crate) fn installed_template(layout: DirLayout) -> PathBuf {
    static KUBELET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    static STANDALONE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let template = if layout == DirLayout::Standalone {
        &STANDALONE
    } else {
        &KUBELET
    };
    template
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep().join("dir");
            let store = DirStore::new(&dir).with_layout(layout);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let clock = Arc::new(ManualClock::new(T0));
                install(&store, &clock, 1).await;
            });
            dir
        })
        .clone()
}
