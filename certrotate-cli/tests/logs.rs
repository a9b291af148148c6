//! Issue 22, "failures never reach monitoring" (its log part): log lines had no timestamps
//! and no JSON form, and an unreachable API server printed the client library's lines for
//! every attempt. Now `--log-format text|json`, both with RFC 3339 UTC timestamps, and a
//! short error naming the server at the default verbosity (the library's lines with -v).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{Run, certrotate};

fn run(args: &[&str]) -> Run {
    let out = certrotate().args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An RFC 3339 time in UTC (`...Z`).
fn assert_utc_rfc3339(text: &str, line: &str) {
    assert!(text.ends_with('Z'), "not UTC: {line}");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {line}"));
}

#[test]
fn text_log_lines_start_with_a_utc_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&["rotate", "--dir", tmp.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.lines().count() >= 5, "{}", r.stderr);
    for line in r.stderr.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_utc_rfc3339(time, line);
        assert!(rest.trim_start().starts_with("INFO "), "{line}");
    }
    // Same as the default.
    let r = run(&[
        "rotate",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--log-format",
        "text",
        "-v",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in r.stderr.lines() {
        assert_utc_rfc3339(line.split_once(' ').unwrap().0, line);
    }
}

#[test]
fn json_log_lines_are_objects_with_a_utc_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let r = run(&["--log-format", "json", "rotate", "--dir", dir, "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("target: "), "{}", r.stdout);
    let mut created = 0;
    for line in r.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_utc_rfc3339(v["timestamp"].as_str().unwrap(), line);
        assert!(v["level"].is_string(), "{line}");
        if v["fields"]["message"] == "secret created" {
            assert!(v["fields"]["secret"].is_string(), "{line}");
            created += 1;
        }
    }
    assert_eq!(created, 5, "{}", r.stderr);
    // A global flag: after the command too, and an error is still one plain line.
    let r = run(&["status", "--dir", "/nonexistent/x", "--log-format", "json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: --dir /nonexistent/x"),
        "{}",
        r.stderr
    );
}

/// `--kubeconfig` pointing at a port nothing listens on: a few lines at the default
/// verbosity (each retry, then the error naming what was read, the server and the cause),
/// the client library's own lines only with -v.
#[cfg(feature = "kube")]
#[test]
fn an_unreachable_api_server_is_a_short_error() {
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: dead\n  context: {cluster: dead, user: u}\ncurrent-context: dead\nusers:\n- name: u\n  user: {token: not-a-secret}\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    // `rotate` adds one line: the Event of its failure could not be recorded either.
    for command in ["rotate", "check"] {
        let r = run(&[command, "--kubeconfig", kubeconfig]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert!(lines.len() <= 5, "{} lines:\n{}", lines.len(), r.stderr);
        let error = lines.last().unwrap();
        assert!(
            error.starts_with(
                "error: on kubernetes context dead at https://127.0.0.1:1: reading secret "
            ) && error.contains("Connection refused"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("failed with error"), "{}", r.stderr);
    }
    let lines = run(&["check", "--kubeconfig", kubeconfig])
        .stderr
        .lines()
        .count();

    let verbose = run(&["check", "--kubeconfig", kubeconfig, "-v"]);
    assert_eq!(verbose.code, 1);
    assert!(
        verbose.stderr.lines().count() > lines && verbose.stderr.contains("failed with error"),
        "the client library's lines with -v:\n{}",
        verbose.stderr
    );
}
