//! The module layers of certrotate-core, checked on the source: the shared words (object
//! references, the phase and its problems, wire names, key pairs) and the error type sit
//! below the planner and never reach up into it, and the planner never reaches into
//! `check` (which reads the planner's view). An import that closes a circle fails here,
//! naming the file and the line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;

/// The lines of `file` (under `src/`) that mention one of `forbidden`, comments aside.
fn offending(file: &str, forbidden: &[&str]) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| forbidden.iter().any(|f| l.contains(f)))
        .map(|(i, l)| format!("{file}:{}: {}", i + 1, l.trim()))
        .collect()
}

#[test]
fn the_shared_words_and_the_error_type_do_not_depend_on_the_planner() {
    let mut found = Vec::new();
    for file in ["error.rs", "refs.rs", "phase.rs", "wire.rs", "keypair.rs"] {
        found.extend(offending(file, &["crate::plan", "crate::check"]));
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_planner_does_not_depend_on_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".rs") {
            found.extend(offending(&format!("plan/{name}"), &["crate::check"]));
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
