//! `certrotate bundle` stays bounded: a million tiny junk blocks in OLD are bundled within
//! twice the input's size of memory, with `-o json` too, and the report is summarised.
//!
//! The bound is enforced, not timed: the binary runs under `ulimit -d` (RLIMIT_DATA, which
//! on Linux covers the heap and every private writable mapping) set to twice the input, so
//! an allocation past it aborts the run.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use certrotate_core::testing::Fixtures;

/// A PEM block that is no certificate: `AAAA` decodes to three zero bytes.
const TINY: &[u8] = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

fn write_inputs(dir: &Path, blocks: usize) -> (String, String, u64) {
    let fx = Fixtures::new(3);
    let new = dir.join("new.pem");
    std::fs::write(&new, fx.new_ca_pem()).unwrap();
    let old = dir.join("old.pem");
    std::fs::write(&old, TINY.repeat(blocks)).unwrap();
    let size = std::fs::metadata(&old).unwrap().len();
    (
        new.to_str().unwrap().to_owned(),
        old.to_str().unwrap().to_owned(),
        size,
    )
}

/// Runs `certrotate ARGS` with the data limit at `limit_bytes`, at the fixtures' `now`.
fn bundle_under_limit(limit_bytes: u64, args: &[&str]) -> std::process::Output {
    let script = format!("ulimit -d {} && exec \"$0\" \"$@\"", limit_bytes / 1024);
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_certrotate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn a_million_tiny_blocks_stay_within_twice_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (new, old, size) = write_inputs(tmp.path(), 1_000_000);
    let now = "2026-06-01T00:00:00Z";
    for format in ["human", "json"] {
        let out = bundle_under_limit(
            2 * size,
            &["-o", format, "bundle", "--now", now, &new, &old],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "-o {format}: {:?} under a data limit of 2 x {size} bytes: {}",
            out.status,
            &stderr[..stderr.len().min(2000)]
        );
        assert_eq!(out.stdout, std::fs::read(&new).unwrap(), "NEW alone");
        // Summarised: a few hundred lines, not a million.
        assert!(
            stderr.len() < 100_000,
            "-o {format}: {} bytes",
            stderr.len()
        );
        if format == "json" {
            let report: serde_json::Value = serde_json::from_str(&stderr).unwrap();
            assert_eq!(report["skipped_total"], 1_000_000);
            assert_eq!(report["skipped_by_reason"]["malformed"], 1_000_000);
            assert_eq!(report["skipped"].as_array().unwrap().len(), 200);
        } else {
            assert!(
                stderr.contains(
                    "skipped: 999800 more blocks not listed; 1000000 skipped in all: 1000000 malformed (-v lists every block)"
                ),
                "{}",
                &stderr[stderr.len().saturating_sub(500)..]
            );
        }
    }
}

#[test]
fn verbose_lists_every_skipped_block() {
    let tmp = tempfile::tempdir().unwrap();
    let (new, old, _) = write_inputs(tmp.path(), 1000);
    let now = "2026-06-01T00:00:00Z";
    for (args, listed) in [
        (vec!["bundle", "--now", now, &new, &old], 200),
        (vec!["-v", "bundle", "--now", now, &new, &old], 1000),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_certrotate"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines = stderr
            .lines()
            .filter(|l| l.starts_with("skipped: old block "))
            .count();
        assert_eq!(lines, listed, "{args:?}");
    }
}
