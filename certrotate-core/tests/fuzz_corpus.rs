//! Replays the fuzz corpus (`fuzz/corpus/bundle`, plus any crashes saved under
//! `fuzz/artifacts/bundle`) through the fuzz target's body, so every input the fuzzer ever
//! found interesting stays a regression test of plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;

use certrotate_core::testing::{Fixtures, fuzz_bundle};

#[test]
fn replay_bundle_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let fx = Fixtures::new(1);
    let mut replayed = 0;
    for dir in ["corpus/bundle", "artifacts/bundle"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fuzz_bundle(&data, &fx)));
            assert!(
                result.is_ok(),
                "fuzz input {} broke an invariant",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(
        replayed >= 10,
        "the seed corpus is missing: {replayed} inputs"
    );
    println!("replayed {replayed} fuzz inputs");
}
