//! The README's local console sessions are run and their output compared, so they stay
//! true. Every ```console block whose commands are all `certrotate` in local mode runs in
//! order in one fresh folder; each `$ certrotate ...` line's stdout must equal the lines
//! that follow it, with fingerprints (16 or 64 hex digits) and RFC 3339 times as
//! placeholders, and runs of spaces (table alignment) as one. Blocks with `--kube` or
//! other programs are cluster sessions and are not run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

/// The console blocks of a Markdown text: (first line number, lines).
fn console_blocks(markdown: &str) -> Vec<(usize, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```console") => current = Some((i + 2, Vec::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, lines)), _) => lines.push(line),
            (None, _) => {}
        }
    }
    blocks
}

fn is_local_certrotate(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.first() == Some(&"certrotate")
        && !words
            .iter()
            .any(|w| w.starts_with("--kube") || w.starts_with("--context"))
}

/// Replaces what changes from run to run with placeholders and collapses spaces.
fn normalise(line: &str) -> String {
    line.split_whitespace()
        .map(|word| {
            let core = word.trim_matches(|c: char| "()[],;:".contains(c));
            // A CA's subject carries its (random) serial number in decimal.
            if let Some(rest) = core.strip_prefix("serialNumber=")
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_digit())
            {
                return word.replacen(rest, "<serial>", 1);
            }
            let placeholder = if (core.len() == 16 || core.len() == 64)
                && core
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                Some("<fingerprint>")
            } else if time::OffsetDateTime::parse(
                core,
                &time::format_description::well_known::Rfc3339,
            )
            .is_ok()
            {
                Some("<time>")
            } else {
                None
            };
            match placeholder {
                Some(p) => word.replacen(core, p, 1),
                None => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_readme_sessions_are_true() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for (first_line, lines) in console_blocks(&readme) {
        let commands: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("$ ")).collect();
        if commands.is_empty() || !commands.iter().all(|c| is_local_certrotate(c)) {
            continue;
        }
        // Split the block into (command, expected output) pairs.
        let mut steps: Vec<(usize, &str, Vec<&str>)> = Vec::new();
        for (offset, line) in lines.iter().enumerate() {
            if let Some(command) = line.strip_prefix("$ ") {
                steps.push((first_line + offset, command, Vec::new()));
            } else if let Some((_, _, expected)) = steps.last_mut() {
                expected.push(line);
            }
        }
        for (line_no, command, mut expected) in steps {
            while expected.last().is_some_and(|l| l.trim().is_empty()) {
                expected.pop();
            }
            let command = command.split(" #").next().unwrap();
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let out = Command::cargo_bin("certrotate")
                .unwrap()
                .current_dir(dir.path())
                .env_remove("RUST_LOG")
                .env("NO_COLOR", "1")
                .args(&args)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let got: Vec<String> = stdout.lines().map(normalise).collect();
            let want: Vec<String> = expected.iter().map(|l| normalise(l)).collect();
            assert_eq!(
                got,
                want,
                "README.md line {line_no}: `{command}` (exit {:?})\nstdout:\n{stdout}\nstderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(
        ran >= 4,
        "the README's local session has at least 4 commands, ran {ran}"
    );
}

#[test]
fn placeholders_cover_fingerprints_and_times_only() {
    assert_eq!(
        normalise("done: CA 73016b7546db19fa is current"),
        "done: CA <fingerprint> is current"
    );
    assert_eq!(
        normalise(
            "x  2031-11-27T08:46:28Z   1824 (6f7ae538e09bb004, not after 2031-11-27T08:46:28Z)"
        ),
        "x <time> 1824 (<fingerprint>, not after <time>)"
    );
    assert_eq!(
        normalise("CN=envoy-gateway, serialNumber=128525115633440466252819505489941235251)"),
        "CN=envoy-gateway, serialNumber=<serial>)"
    );
    assert_eq!(
        normalise("secret envoy key ca.crt #1"),
        "secret envoy key ca.crt #1"
    );
    assert_ne!(
        normalise("CA 73016B7546DB19FA"),
        normalise("CA 73016b7546db19fa")
    );
}
