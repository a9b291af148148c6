//! `check -o openmetrics` and `check --pushgateway`: the series a Prometheus user alerts
//! on, labelled by object, all present (0 when broken), valid OpenMetrics for the
//! Prometheus project's own parser, and pushed to a Pushgateway's group URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;

use assert_cmd::Command;

const NS: &str = "envoy-gateway-system";
const COMPONENTS: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];

fn certrotate(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env_remove("CERTROTATE_PUSHGATEWAY")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn installed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = certrotate(&["rotate", "--dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    dir
}

/// One sample: metric name and labels.
type Series = (String, BTreeMap<String, String>);

/// The samples of OpenMetrics text, as the Prometheus project's parser
/// (`prometheus_client.openmetrics.parser`, strict: `# EOF`, types, units, escaping) reads
/// them. `CERTROTATE_OPENMETRICS_PYTHON` names a Python with `prometheus_client` (`.ci/run`
/// sets it, which makes this check required); without it, `python3` is tried and the check
/// is skipped with a warning if the module is missing.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let required = std::env::var_os("CERTROTATE_OPENMETRICS_PYTHON");
    let python = required.clone().unwrap_or_else(|| "python3".into());
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let child = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if required.is_none() => {
            eprintln!(
                "WARNING: no python3 ({e}): OpenMetrics text not checked by an independent parser"
            );
            return fallback(text);
        }
        Err(e) => panic!("{python:?}: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if required.is_none() && stderr.contains("No module named 'prometheus_client'") {
            eprintln!(
                "WARNING: python3 has no prometheus_client: OpenMetrics text not checked by an independent parser"
            );
            return fallback(text);
        }
        panic!("the OpenMetrics parser rejects the text: {stderr}\n{text}");
    }
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    let parsed: BTreeMap<Series, f64> = samples
        .into_iter()
        .map(|(name, labels, value)| ((name, labels), value))
        .collect();
    assert_eq!(parsed, fallback(text), "the two readings agree");
    parsed
}

/// A plain reading of the sample lines (every label value here is a plain name).
fn fallback(text: &str) -> BTreeMap<Series, f64> {
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (
                    name,
                    rest.trim_end_matches('}')
                        .split(',')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect(),
                ),
                None => (series, BTreeMap::new()),
            };
            ((name.to_owned(), labels), value.parse().unwrap())
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn value(samples: &BTreeMap<Series, f64>, name: &str, pairs: &[(&str, &str)]) -> f64 {
    *samples
        .get(&(name.to_owned(), labels(pairs)))
        .unwrap_or_else(|| panic!("no series {name}{pairs:?} in {:#?}", samples.keys()))
}

#[test]
fn openmetrics_labels_every_series_by_object() {
    let dir = installed();
    let (code, text, err) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "-o",
        "openmetrics",
    ]);
    assert_eq!(code, 0, "{err}");
    let samples = parse(&text);
    for leaf in COMPONENTS {
        for peer in COMPONENTS {
            let peer = format!("secret/{peer}");
            let series = [
                ("namespace", NS),
                ("secret", leaf),
                ("key", "tls.crt"),
                ("peer", &peer),
            ];
            assert_eq!(value(&samples, "certrotate_trust_ok", &series), 1.0);
        }
        for key in ["ca.crt", "tls.crt"] {
            let series = [("namespace", NS), ("secret", leaf), ("key", key)];
            assert_eq!(
                value(&samples, "certrotate_certificates_valid", &series),
                1.0
            );
            let block = [
                ("namespace", NS),
                ("secret", leaf),
                ("key", key),
                ("block", "1"),
            ];
            assert!(
                value(
                    &samples,
                    "certrotate_certificate_not_after_timestamp_seconds",
                    &block
                ) > 1.7e9
            );
        }
        let key = [("namespace", NS), ("secret", leaf), ("key", "tls.key")];
        assert_eq!(value(&samples, "certrotate_key_ok", &key), 1.0);
        assert!(
            value(
                &samples,
                "certrotate_leaf_not_after_timestamp_seconds",
                &[("namespace", NS), ("secret", leaf)]
            ) > 1.7e9
        );
    }
    let ca = [("namespace", NS), ("secret", "envoy-gateway-ca")];
    assert!(value(&samples, "certrotate_ca_not_after_timestamp_seconds", &ca) > 1.7e9);
    for (phase, expected) in [
        ("stable", 1.0),
        ("prepared", 0.0),
        ("trust", 0.0),
        ("leaves", 0.0),
        ("retire", 0.0),
    ] {
        let series = [
            ("namespace", NS),
            ("secret", "envoy-gateway-ca"),
            ("phase", phase),
        ];
        assert_eq!(
            value(&samples, "certrotate_phase", &series),
            expected,
            "{phase}"
        );
    }
    // A first install has no rotation yet.
    assert_eq!(
        value(&samples, "certrotate_phase_since_timestamp_seconds", &ca),
        0.0
    );
    assert_eq!(
        value(&samples, "certrotate_check_problems", &[("namespace", NS)]),
        0.0
    );
    assert!(
        value(
            &samples,
            "certrotate_check_timestamp_seconds",
            &[("namespace", NS)]
        ) > 1.7e9
    );
    assert!(
        text.contains("# UNIT certrotate_phase_since_timestamp_seconds seconds"),
        "{text}"
    );

    // Mid-rotation: the phase and when it began.
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = certrotate(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--convergence-interval",
        "1h",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, text, _) = certrotate(&["check", "--dir", d, "-o", "openmetrics"]);
    let samples = parse(&text);
    let trust = [
        ("namespace", NS),
        ("secret", "envoy-gateway-ca"),
        ("phase", "trust"),
    ];
    assert_eq!(value(&samples, "certrotate_phase", &trust), 1.0);
    let stable = [
        ("namespace", NS),
        ("secret", "envoy-gateway-ca"),
        ("phase", "stable"),
    ];
    assert_eq!(value(&samples, "certrotate_phase", &stable), 0.0);
    assert!(value(&samples, "certrotate_phase_since_timestamp_seconds", &ca) > 1.7e9);
    // Bundles of two: both blocks of a ca.crt are series.
    let block2 = [
        ("namespace", NS),
        ("secret", "envoy"),
        ("key", "ca.crt"),
        ("block", "2"),
    ];
    assert!(
        value(
            &samples,
            "certrotate_certificate_not_after_timestamp_seconds",
            &block2
        ) > 1.7e9
    );
}

/// Writes `data` over one key of a Secret folder (through the `..data` symlink).
fn overwrite(dir: &Path, secret: &str, key: &str, data: &[u8]) {
    let path = dir.join(NS).join(secret).join(key);
    let target = std::fs::canonicalize(&path).unwrap();
    std::fs::write(target, data).unwrap();
}

#[test]
fn a_corrupt_ca_crt_turns_its_series_to_zero_instead_of_removing_them() {
    let dir = installed();
    overwrite(
        dir.path(),
        "envoy",
        "ca.crt",
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    let (code, text, err) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "-o",
        "openmetrics",
    ]);
    assert_eq!(
        code, 3,
        "an untrusted or unreadable store fails the check: {err}"
    );
    let samples = parse(&text);
    for leaf in COMPONENTS {
        for peer in COMPONENTS {
            let peer_label = format!("secret/{peer}");
            let series = [
                ("namespace", NS),
                ("secret", leaf),
                ("key", "tls.crt"),
                ("peer", &peer_label),
            ];
            let expected = if peer == "envoy" { 0.0 } else { 1.0 };
            assert_eq!(
                value(&samples, "certrotate_trust_ok", &series),
                expected,
                "{leaf} by {peer}"
            );
        }
    }
    let corrupt = [("namespace", NS), ("secret", "envoy"), ("key", "ca.crt")];
    assert_eq!(
        value(&samples, "certrotate_certificates_valid", &corrupt),
        0.0
    );
    assert!(value(&samples, "certrotate_check_problems", &[("namespace", NS)]) >= 1.0);

    // A missing leaf: its series are present, at 0.
    std::fs::remove_file(
        std::fs::canonicalize(dir.path().join(NS).join("envoy-gateway").join("tls.crt")).unwrap(),
    )
    .unwrap();
    let (_, text, _) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "-o",
        "openmetrics",
    ]);
    let samples = parse(&text);
    let leaf = [("namespace", NS), ("secret", "envoy-gateway")];
    assert_eq!(
        value(
            &samples,
            "certrotate_leaf_not_after_timestamp_seconds",
            &leaf
        ),
        0.0
    );
    let pair = [
        ("namespace", NS),
        ("secret", "envoy-gateway"),
        ("key", "tls.crt"),
        ("peer", "secret/envoy-gateway"),
    ];
    assert_eq!(value(&samples, "certrotate_trust_ok", &pair), 0.0);

    // Another component's tls.key replaced by a key that is not its leaf's.
    let other_key =
        std::fs::read(dir.path().join(NS).join("envoy-rate-limit").join("tls.key")).unwrap();
    overwrite(dir.path(), "envoy", "tls.key", &other_key);
    let (_, text, _) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "-o",
        "openmetrics",
    ]);
    let samples = parse(&text);
    let key = [("namespace", NS), ("secret", "envoy"), ("key", "tls.key")];
    assert_eq!(value(&samples, "certrotate_key_ok", &key), 0.0);
    let key = [
        ("namespace", NS),
        ("secret", "envoy-rate-limit"),
        ("key", "tls.key"),
    ];
    assert_eq!(value(&samples, "certrotate_key_ok", &key), 1.0);
}

/// A one-request HTTP server on 127.0.0.1 answering `status`; returns the URL and a handle
/// yielding (request line, headers, body).
fn receiver(
    status: u16,
) -> (
    String,
    std::thread::JoinHandle<(String, Vec<String>, String)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            headers.push(line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer = if status == 200 {
            ""
        } else {
            "push rejected: bad metric"
        };
        write!(
            &stream,
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        (
            request_line.trim_end().to_owned(),
            headers,
            String::from_utf8(body).unwrap(),
        )
    });
    (url, handle)
}

#[test]
fn pushgateway_gets_the_metrics_at_the_group_url() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let (url, handle) = receiver(200);
    let (code, out, err) = certrotate(&["check", "--dir", d, "--pushgateway", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK"), "human output as usual: {out}");
    let (request, headers, body) = handle.join().unwrap();
    assert_eq!(
        request,
        format!("PUT /metrics/job/certrotate/namespace/{NS} HTTP/1.1")
    );
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/plain; version=0.0.4")),
        "{headers:?}"
    );
    let samples = parse(&body);
    let series = [
        ("namespace", NS),
        ("secret", "envoy"),
        ("key", "tls.crt"),
        ("peer", "secret/envoy-gateway"),
    ];
    assert_eq!(value(&samples, "certrotate_trust_ok", &series), 1.0);

    // The URL from the environment (the CronJob's ConfigMap), another job name, a prefix.
    let (url, handle) = receiver(200);
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env("CERTROTATE_PUSHGATEWAY", format!("{url}/gw/"))
        .args([
            "check",
            "--dir",
            d,
            "-o",
            "json",
            "--pushgateway-job",
            "nightly certs",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (request, _, _) = handle.join().unwrap();
    assert_eq!(
        request,
        format!("PUT /gw/metrics/job@base64/bmlnaHRseSBjZXJ0cw==/namespace/{NS} HTTP/1.1")
    );

    // An empty variable is a usage error that says how to push nothing.
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env("CERTROTATE_PUSHGATEWAY", "")
        .args(["check", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unset CERTROTATE_PUSHGATEWAY"));
}

#[test]
fn a_refused_push_fails_the_check_naming_the_url_and_the_answer() {
    let dir = installed();
    let (url, handle) = receiver(400);
    let (code, _, err) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        &url,
    ]);
    handle.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{url}/metrics/job/certrotate/namespace/{NS}")),
        "{err}"
    );
    assert!(
        err.contains("400") && err.contains("push rejected: bad metric"),
        "{err}"
    );

    // Nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        &format!("http://127.0.0.1:{port}"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pushing metrics to http://127.0.0.1"), "{err}");

    let (code, _, err) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        "ftp://gw:9091",
    ]);
    assert_eq!(code, 2, "a usage error: {err}");
    assert!(err.contains("expected http[s]://"), "{err}");
}

#[test]
fn the_example_alerts_use_series_that_exist() {
    let dir = installed();
    let (_, text, _) = certrotate(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "-o",
        "openmetrics",
    ]);
    let mut names: std::collections::BTreeSet<String> =
        parse(&text).into_keys().map(|(n, _)| n).collect();
    // And the series `rotate` pushes of its own outcome.
    let (url, handle) = receiver(200);
    let (code, _, err) = certrotate(&[
        "rotate",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, _, body) = handle.join().unwrap();
    names.extend(parse(&body).into_keys().map(|(n, _)| n));
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring/alerts.yaml"),
    )
    .unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&rules).unwrap();
    let mut used = 0;
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        let expr = rule["expr"].as_str().unwrap();
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("certrotate_") {
                assert!(
                    names.contains(word),
                    "{}: {word} is not a series of check or rotate",
                    rule["alert"]
                );
                used += 1;
            }
        }
    }
    assert!(used >= 6, "{used}");
}

/// Issue 22: `rotate` pushes its own outcome (group `…/command/rotate`), a failure
/// included, so a CronJob's failed rotation reaches monitoring though no `check` follows.
#[test]
fn rotate_pushes_its_outcome_also_when_it_fails() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let series = |body: &str, name: &str| -> Option<String> {
        body.lines()
            .find(|l| l.starts_with(name) && l.contains("command=\"rotate\""))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    // Success: a rotation begun, one phase, its next step in an hour.
    let (url, server) = receiver(200);
    let (code, _, err) = certrotate(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--convergence-interval",
        "1h",
        "--pushgateway",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let (line, _, body) = server.join().unwrap();
    assert_eq!(
        line,
        "PUT /metrics/job/certrotate/namespace/envoy-gateway-system/command/rotate HTTP/1.1"
    );
    assert_eq!(
        series(&body, "certrotate_run_success").as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        series(&body, "certrotate_run_exit_code").as_deref(),
        Some("0"),
        "{body}"
    );
    let left: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("certrotate_run_phase{") && l.ends_with(" 1"))
        .collect();
    assert_eq!(left.len(), 1, "{body}");
    assert!(
        series(&body, "certrotate_run_next_step_timestamp_seconds").is_some_and(|v| v != "0"),
        "{body}"
    );
    // Failure: the CA Secret's certificate is corrupt (exit 1, naming it).
    let ca = std::fs::canonicalize(
        dir.path()
            .join("envoy-gateway-system/envoy-gateway-ca/ca.crt"),
    )
    .unwrap();
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (url, server) = receiver(200);
    let (code, _, err) = certrotate(&["rotate", "--dir", d, "--pushgateway", &url]);
    assert_eq!(code, 1, "{err}");
    let (_, _, body) = server.join().unwrap();
    assert_eq!(
        series(&body, "certrotate_run_success").as_deref(),
        Some("0"),
        "{body}"
    );
    assert_eq!(
        series(&body, "certrotate_run_exit_code").as_deref(),
        Some("1"),
        "{body}"
    );
    assert!(
        err.contains("run outcome pushed") || !err.contains("pushing"),
        "{err}"
    );
}
