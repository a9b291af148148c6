//! Local mode cannot be turned against the host: one test per finding of the hardening
//! issue (a Secret folder that is a link, `..data` escaping DIR, key links to files outside,
//! devices and FIFOs, an untrusted DIR, orphaned version folders, keys starting with one
//! dot), and a property test that random trees of files, folders, FIFOs and links under DIR,
//! with random crashes, never make a rotation touch anything outside DIR.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod contract;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::ObjectRef;
use certrotate_core::{Profile, RotationPolicy, SeededEntropy};
use certrotate_kube::{
    DirLayout, DirStore, Engine, FaultyStore, ManualClock, RunMode, SecretStore, TrustChecks,
    observe,
};
use contract::{HOUR, NS, T0, engine, install, options, profile, secret, until_done};
use proptest::prelude::*;

#[path = "confinement/findings.rs"]
mod findings;
#[path = "confinement/property.rs"]
mod property;
#[path = "confinement/races.rs"]
mod races;
#[path = "confinement/support.rs"]
mod support;

use findings::*;
use property::*;
use support::*;

/// The tests below that take a [`DirLayout`], run once per layout of the directory store:
/// the standalone tree (`DIR/NAME/`) is held to the same threat model as the kubelet one.
macro_rules! per_layout {
    ($($test:ident),* $(,)?) => {
        mod kubelet {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(certrotate_kube::DirLayout::Kubelet).await;
                }
            )*
        }
        mod standalone {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(certrotate_kube::DirLayout::Standalone).await;
                }
            )*
        }
    };
}

per_layout!(
    finding_1_a_secret_folder_that_links_outside_is_refused,
    finding_2_a_data_link_that_escapes_is_refused,
    finding_3_key_links_to_files_outside_are_never_followed,
    finding_4_devices_fifos_and_a_dangling_lock_link,
    finding_5_an_untrusted_dir_is_refused,
    finding_7_orphaned_versions_are_removed_under_the_lock,
    finding_8_a_key_starting_with_one_dot_round_trips,
    finding_05_keys_of_the_longest_valid_length_round_trip,
);

/// Both layouts, for the property tests.
fn layouts() -> impl Strategy<Value = DirLayout> {
    prop_oneof![Just(DirLayout::Kubelet), Just(DirLayout::Standalone)]
}

/// Where the Secret folders of the profile's namespace are under `dir`.
fn secrets_root(dir: &Path, layout: DirLayout) -> PathBuf {
    if layout == DirLayout::Standalone {
        dir.to_owned()
    } else {
        dir.join(NS)
    }
}
