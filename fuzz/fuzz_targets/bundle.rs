//! Fuzzes the PEM block scanner and the bundling rule. `cargo test` replays
//! `fuzz/corpus/bundle` through the same function (certrotate-core/tests/fuzz_corpus.rs).
#![no_main]

use std::sync::LazyLock;

use certrotate_core::testing::{Fixtures, fuzz_bundle};
use libfuzzer_sys::fuzz_target;

static FX: LazyLock<Fixtures> = LazyLock::new(|| Fixtures::new(1));

fuzz_target!(|data: &[u8]| fuzz_bundle(data, &FX));
