//! kubectl manners: `--kubeconfig` and `--context` imply `--kube`, `inspect secret NAME`,
//! data on stdout for every `-o`, an unknown profile answered with the built-ins, enum
//! values in help and completions, examples in every command's help, one fingerprint
//! length and the flags' algorithm names in human output, and a read-only `status` that
//! reports a missing folder and shows when each certificate ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fake API server serves the `--kube` tests (feature `kube`, a default).
#[cfg(feature = "kube")]
#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use assert_cmd::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = Command::cargo_bin("certrotate").unwrap();
    cmd.env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Out {
    run_in(&[], args)
}

fn installed(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["rotate", "--dir", dir.path().to_str().unwrap()];
    args.extend(extra);
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    dir
}

#[cfg(feature = "kube")]
#[test]
fn kubeconfig_and_context_imply_kube() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    let kubeconfig = kubeconfig.to_str().unwrap();

    let out = run(&["rotate", "--kubeconfig", kubeconfig]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("installed"), "{}", out.stdout);
    let out = run(&["status", "--kubeconfig", kubeconfig]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("phase:    stable"), "{}", out.stdout);

    // --context alone, with the kubeconfig from the environment.
    let out = run_in(
        &[("KUBECONFIG", kubeconfig)],
        &["check", "--context", "fake"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run_in(
        &[("KUBECONFIG", kubeconfig)],
        &["status", "--context", "no-such-context"],
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no-such-context"), "{}", out.stderr);

    // Local mode and a kubeconfig do not mix.
    let out = run(&["status", "--kubeconfig", kubeconfig, "--dir", "x"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn inspect_takes_secret_name_as_kubectl_does() {
    let dir = installed(&[]);
    let d = dir.path().to_str().unwrap();
    let slash = run(&["inspect", "secret/envoy", "--dir", d]);
    assert_eq!(slash.code, 0, "{}", slash.stderr);
    let space = run(&["inspect", "secret", "envoy", "--dir", d]);
    assert_eq!(space.code, 0, "{}", space.stderr);
    assert_eq!(space.stdout, slash.stdout);
    assert!(space.stdout.contains("key tls.crt"), "{}", space.stdout);
    let plural = run(&["inspect", "secrets", "envoy", "--dir", d]);
    assert_eq!(plural.stdout, slash.stdout);

    let out = run(&["inspect", "secret", "--dir", d]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("needs the Secret's name"),
        "{}",
        out.stderr
    );
    let out = run(&["inspect", "certs", "envoy", "--dir", d]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unexpected \"envoy\""),
        "{}",
        out.stderr
    );
    let out = run(&["inspect", "secret/", "--dir", d]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn bundle_data_goes_to_stdout_for_every_output_format() {
    let dir = installed(&[]);
    let ca = dir
        .path()
        .join("envoy-gateway-system/envoy-gateway-ca/ca.crt");
    let old = dir.path().join("envoy-gateway-system/envoy/ca.crt");
    let (ca, old) = (ca.to_str().unwrap(), old.to_str().unwrap());
    let out = run(&["bundle", ca, old, "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.is_empty(),
        "nothing but logs on stderr: {}",
        out.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        doc["pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(doc["report"]["new"].as_array().unwrap().len(), 1);
    let out = run(&["bundle", ca, old, "-o", "yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("report:"), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // Human: the PEM is the data, the report a message.
    let out = run(&["bundle", ca, old]);
    assert!(out.stdout.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(out.stderr.contains("new: 1 certificate"), "{}", out.stderr);
}

#[test]
fn an_unknown_profile_lists_the_built_ins_and_suggests_the_nearest() {
    let out = run(&["status", "--dir", "certs", "--profile", "envoy-gatway"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("built in: envoy-gateway"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean \"envoy-gateway\"?"),
        "{}",
        out.stderr
    );
    let out = run(&["status", "--dir", "certs", "--profile", "linkerd"]);
    assert_eq!(out.code, 2);
    assert!(!out.stderr.contains("did you mean"), "{}", out.stderr);
    // A file name is still read as a file, and its absence named.
    let out = run(&[
        "status",
        "--dir",
        "certs",
        "--profile",
        "no-such-plane.toml",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no-such-plane.toml"), "{}", out.stderr);
}

#[test]
fn help_lists_enum_values_and_ends_with_examples() {
    let help = run(&["rotate", "--help"]).stdout;
    assert!(
        help.contains("[possible values: staged, single-step]"),
        "{help}"
    );
    assert!(
        help.contains(
            "[possible values: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096]"
        ),
        "{help}"
    );
    let out = run(&["rotate", "--strategy", "staggered"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("[possible values: staged, single-step]")
    );

    for command in [
        "rotate",
        "status",
        "renew",
        "bundle",
        "inspect",
        "check",
        "simulate",
        "completions",
    ] {
        for flag in ["-h", "--help"] {
            let help = run(&[command, flag]).stdout;
            let tail = help.rsplit("Examples:").next().unwrap();
            assert!(
                help.contains("\nExamples:\n") && tail.contains(&format!("certrotate {command}")),
                "{command} {flag} ends with examples:\n{help}"
            );
            assert!(
                help.lines().all(|l| l.chars().count() <= 100),
                "{command} {flag}: a line wider than 100 columns"
            );
        }
    }

    // Completions offer the values, not file names.
    let bash = run(&["completions", "bash"]).stdout;
    assert!(bash.contains("staged single-step"), "strategy values");
    assert!(bash.contains("ecdsa-p256"), "key algorithm values");
}

#[test]
fn status_is_read_only_and_shows_each_certificate_end() {
    let missing = tempfile::tempdir().unwrap();
    let typo = missing.path().join("crets");
    let out = run(&["status", "--dir", typo.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no such folder"), "{}", out.stderr);
    assert!(!typo.exists(), "status created nothing");

    let dir = installed(&["--key-algorithm", "rsa-2048"]);
    let d = dir.path().to_str().unwrap();
    let out = run(&["status", "--dir", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for word in out.stdout.split_whitespace() {
        let hex = word.chars().filter(char::is_ascii_hexdigit).count();
        assert!(
            !(hex == word.len() && hex > 16),
            "one fingerprint length (16) in human output: {word}"
        );
    }
    for secret in [
        "envoy-gateway-ca",
        "envoy-gateway",
        "envoy",
        "envoy-rate-limit",
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(&format!("envoy-gateway-system/{secret} ")))
            .unwrap_or_else(|| panic!("{secret} in\n{}", out.stdout));
        assert!(line.contains("(in 1824 days)"), "{line}");
    }
    // The full fingerprint is in the data.
    let json: serde_json::Value =
        serde_json::from_str(&run(&["status", "--dir", d, "-o", "json"]).stdout).unwrap();
    let fingerprint = json["certificates"][0]["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");

    // Algorithm names as the flags spell them.
    let table = run(&["inspect", "secret", "envoy", "--dir", d]).stdout;
    assert!(table.contains(" rsa-2048 "), "{table}");
    let ecdsa = installed(&[]);
    let table = run(&[
        "inspect",
        "secret",
        "envoy",
        "--dir",
        ecdsa.path().to_str().unwrap(),
    ])
    .stdout;
    assert!(table.contains(" ecdsa-p256 "), "{table}");
    assert!(!table.contains("ecdsa-256"), "{table}");
}

#[test]
fn a_log_line_follows_the_write_it_reports() {
    // Every create of a Secret fails: the install is not made, so it is not logged.
    #[cfg(feature = "kube")]
    {
        let server = fake_server::start(&["--fail", "POST:/secrets:500:1000"]);
        let kubeconfig = server.kubeconfig();
        let out = run(&["rotate", "--kubeconfig", kubeconfig.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(!out.stderr.contains("installed"), "{}", out.stderr);
        assert!(!out.stderr.contains("secret created"), "{}", out.stderr);
    }

    // When it is made, the summary comes after the writes.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["rotate", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let created = out.stderr.rfind("secret created").expect("writes logged");
    let installed = out.stderr.find("installed: CA").expect("summary logged");
    assert!(created < installed, "{}", out.stderr);
}

/// A terminal 80 columns wide that records what is drawn.
#[derive(Debug, Default, Clone)]
struct Terminal(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl indicatif::TermLike for Terminal {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push(s.to_owned());
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push(s.to_owned());
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn wait_progress_names_the_phase_and_fits_80_columns() {
    use certrotate_core::plan::{Next, Phase, WaitReason};
    let at = time::macros::datetime!(2026-11-29 14:05:00 UTC);
    for (next, phase, what) in [
        (
            Next::WaitUntil {
                at,
                reason: WaitReason::Converging {
                    phase: Phase::Trust,
                },
            },
            "trust",
            "bundles must converge",
        ),
        (
            Next::WaitUntil {
                at,
                reason: WaitReason::Converging {
                    phase: Phase::Leaves,
                },
            },
            "leaves",
            "leaves must converge",
        ),
    ] {
        let (p, w) = certrotate_cli::waiting_for(&next);
        assert_eq!(p, phase);
        assert!(w.starts_with(what), "{w}");

        let terminal = Terminal::default();
        let bar = certrotate_cli::wait_bar(300, &next, at);
        bar.set_draw_target(indicatif::ProgressDrawTarget::term_like(Box::new(
            terminal.clone(),
        )));
        bar.set_position(120);
        bar.tick();
        let drawn = terminal.0.lock().unwrap().join("\n");
        let line = drawn
            .lines()
            .rfind(|l| l.contains(phase))
            .unwrap_or_else(|| panic!("{drawn:?}"));
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
        assert!(line.contains(&format!("{phase} ")), "{line}");
        assert!(line.contains(" 120/300s "), "{line}");
        assert!(line.contains(what), "the reason keeps its start: {line}");
    }
}

/// Every file under `dir` with its content.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_shows_the_whole_run_with_its_waits() {
    let dir = installed(&[]);
    let d = dir.path().to_str().unwrap();
    let before = files(dir.path());

    // One run: every plan up to the first wait (prepare and trust), in order.
    let out = run(&["rotate", "--dir", d, "--overwrite", "--force", "--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rounds: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rounds.len(), 2, "{}", out.stdout);
    assert!(
        rounds[0].contains("phase stable -> prepared"),
        "{}",
        out.stdout
    );
    assert!(
        rounds[1].contains("phase prepared -> trust"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("update    secret envoy-gateway-system/envoy [ca.crt]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("then: the next step may run at"),
        "{}",
        out.stdout
    );

    // With --wait: the whole rotation, the waits between the phases, to the second.
    let out = run(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--force",
        "--dry-run",
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rounds: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let phases: Vec<&str> = rounds
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "phase stable -> prepared",
            "phase prepared -> trust",
            "phase trust -> leaves",
            "phase leaves -> stable"
        ],
        "{}",
        out.stdout
    );
    let waits: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("wait "))
        .collect();
    assert_eq!(waits.len(), 2, "{}", out.stdout);
    assert!(waits[0].contains("bundles must converge"), "{}", waits[0]);
    assert!(out.stdout.contains("tls.key=<redacted>"), "{}", out.stdout);
    assert!(!out.stdout.contains("PRIVATE KEY"));
    for word in out.stdout.split_whitespace() {
        if word.starts_with("20") && word.contains('T') {
            assert!(!word.contains('.'), "times to the second: {word}");
        }
    }
    // The in-memory writes are not logged as if they were made.
    assert!(!out.stderr.contains("secret updated"), "{}", out.stderr);

    let json: serde_json::Value = serde_json::from_str(
        &run(&[
            "rotate",
            "--dir",
            d,
            "--overwrite",
            "--force",
            "--dry-run",
            "--wait",
            "-o",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    let tos: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["to"].as_str().unwrap())
        .collect();
    assert_eq!(tos, ["prepared", "trust", "leaves", "stable"]);

    assert_eq!(files(dir.path()), before, "a dry run changes nothing");
}
