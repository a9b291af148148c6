//! No Secret data reaches stderr or stdout, at any verbosity, `RUST_LOG=trace` included,
//! when an API server's answer does not deserialize (hardening round 3, finding 1).
//!
//! kube-client logs a whole response body at WARN when it fails to parse it: a broken or
//! proxying API server, version skew, or a third-party Secret carrying the profile's
//! label would send every `ca.key`, `tls.key` and `hmac-secret` to the log pipeline. A
//! hostile server on 127.0.0.1 answers LIST, GET and write requests with bodies that hold
//! key material and do not parse; the CLI's output must hold none of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// base64 of `-----BEGIN ` (how every PEM value of a Secret's `data` starts).
const PEM_B64: &str = "LS0tLS1CRUdJTi";
/// A marker planted in the hostile answers, base64 of a PEM private key header.
const PLANTED: &str = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1BUktFUi1TRUNSRVQtS0VZ";

/// What the hostile server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// A LIST by label (certrotate reads by name, but a LIST answer must not leak either):
    /// a SecretList whose item does not parse; GETs the same Secret.
    List,
    /// Every Secret of a real install (made in local mode) served as it is; each PATCH
    /// (the next CA written into the CA Secret) echoed back, keys included, as an answer
    /// that does not parse.
    Patch,
    /// LIST forbidden; every GET a Secret of the wrong `kind`, with its keys.
    Get,
    /// Nothing exists; each write is echoed back (the keys certrotate sent) as the wrong
    /// kind, as a proxy that mangles answers would.
    Write,
}

struct Hostile {
    port: u16,
    /// Every `data` value of the writes the server got (what certrotate generated).
    sent: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn broken_secret(name: &str) -> String {
    // `type` must be a string: the object does not deserialize, after its data was read.
    format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"{name}","namespace":"envoy-gateway-system","resourceVersion":"7","labels":{{"certrotate.io/ca":"true"}}}},"data":{{"ca.key":"{PLANTED}","tls.key":"{PLANTED}","hmac-secret":"{PLANTED}"}},"type":42}}"#
    )
}

fn status(code: u16, reason: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{reason}","reason":"{reason}","code":{code}}}"#
    )
}

/// The Secrets of an install made in local mode, as the API server would answer a GET
/// of each (by name).
fn installed_secrets() -> &'static BTreeMap<String, String> {
    static SECRETS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("certrotate")
            .unwrap()
            .args(["rotate", "-q", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let ns = dir.path().join("envoy-gateway-system");
        let mut secrets = BTreeMap::new();
        for entry in std::fs::read_dir(&ns).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let data_dir = ns.join(&name).join("..data");
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(data_dir.join("..meta.json")).unwrap())
                    .unwrap();
            let mut data = serde_json::Map::new();
            for file in std::fs::read_dir(&data_dir).unwrap() {
                let key = file.unwrap().file_name().into_string().unwrap();
                if key != "..meta.json" {
                    let value = std::fs::read(data_dir.join(&key)).unwrap();
                    data.insert(key, BASE64.encode(value).into());
                }
            }
            let secret = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": name, "namespace": "envoy-gateway-system", "resourceVersion": "7",
                    "uid": "0b0f8d3c-1111-4222-8333-944445555666",
                    "labels": meta["labels"], "annotations": meta["annotations"],
                },
                "type": meta["type"], "data": data,
            });
            secrets.insert(name, secret.to_string());
        }
        secrets
    })
}

fn answer(
    mode: Mode,
    method: &str,
    path: &str,
    body: &[u8],
    sent: &Mutex<Vec<String>>,
) -> (u16, String) {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(data) = json["data"].as_object()
    {
        let values = data.values().filter_map(|v| v.as_str()).map(str::to_owned);
        sent.lock().unwrap().extend(values);
    }
    let name = path
        .split('?')
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let is_list = method == "GET" && path.contains("/secrets?") || path.ends_with("/secrets");
    match (mode, method) {
        (_, "GET") if path.contains("/events") => (200, r#"{"kind":"EventList","apiVersion":"events.k8s.io/v1","metadata":{},"items":[]}"#.into()),
        (Mode::List, "GET") if is_list => (
            200,
            format!(
                r#"{{"kind":"SecretList","apiVersion":"v1","metadata":{{"resourceVersion":"7"}},"items":[{}]}}"#,
                broken_secret("envoy-gateway-ca")
            ),
        ),
        (Mode::List | Mode::Get, "GET") if path.contains("/secrets/") => (200, broken_secret(&name)),
        (Mode::Patch, "GET") if path.contains("/secrets/") => match installed_secrets().get(&name) {
            Some(secret) => (200, secret.clone()),
            None => (404, status(404, "NotFound")),
        },
        (Mode::Get, "GET") if is_list => (403, status(403, "Forbidden")),
        (Mode::Write, "GET") if is_list => (
            200,
            r#"{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#.into(),
        ),
        (_, "POST" | "PATCH" | "PUT") => {
            // The request as the server got it, keys included, under the wrong kind.
            let text = String::from_utf8_lossy(body).replace(r#""kind":"Secret""#, r#""kind":"Sekret""#);
            let text = if text.contains("Sekret") { text } else { broken_secret(&name) };
            (if method == "POST" { 201 } else { 200 }, text)
        }
        _ => (404, status(404, "NotFound")),
    }
}

fn serve(mode: Mode) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sent);
    let thread = std::thread::spawn(move || {
        // Bounded in connections; Drop wakes it to stop.
        for stream in listener.incoming().take(2_000) {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let _ = handle(mode, stream, &seen);
        }
    });
    Hostile {
        port,
        sent,
        stop,
        thread: Some(thread),
    }
}

/// Answers the requests of one connection (keep-alive), each with `answer`.
fn handle(mode: Mode, stream: TcpStream, sent: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let (code, text) = answer(mode, &method, &path, &body, sent);
        write!(
            writer,
            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
    }
    Ok(())
}

fn kubeconfig(port: u16) -> tempfile::TempPath {
    let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: h\n  user: {{}}\ncontexts:\n- name: h\n  context:\n    cluster: h\n    user: h\ncurrent-context: h\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `args` against a hostile server in `mode` at every verbosity and asserts that no
/// Secret data is printed; returns the default run's output.
fn assert_no_secret(mode: Mode, args: &[&str]) -> String {
    let server = serve(mode);
    let config = kubeconfig(server.port);
    let mut first = None;
    // The cap holds for JSON log lines too (issue 22): it filters before any formatting.
    let verbosities: [(&[&str], Option<&str>); 7] = [
        (&[], None),
        (&["-v"], None),
        (&["-vv"], None),
        (&[], Some("trace")),
        (&[], Some("kube_client=trace,h2=trace,hyper=trace,trace")),
        (&["--log-format", "json", "-vv"], None),
        (
            &["--log-format", "json"],
            Some("kube_client=trace,h2=trace,hyper=trace,trace"),
        ),
    ];
    for (flags, rust_log) in verbosities {
        let mut cmd = Command::cargo_bin("certrotate").unwrap();
        cmd.env("NO_COLOR", "1")
            .env("KUBECONFIG", &config)
            .env_remove("RUST_LOG")
            .timeout(Duration::from_secs(120))
            .args(flags)
            .args(args);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let sent = server.sent.lock().unwrap().clone();
        let needles = [PLANTED, PEM_B64, "PRIVATE KEY"]
            .into_iter()
            .chain(sent.iter().map(String::as_str).filter(|v| v.len() >= 16));
        for needle in needles {
            assert!(
                !text.contains(needle),
                "{needle:?} printed with {flags:?} RUST_LOG={rust_log:?}:\n{text}"
            );
        }
        first.get_or_insert(text);
    }
    first.unwrap_or_default()
}

#[test]
fn a_list_answer_that_does_not_parse_prints_no_key() {
    let text = assert_no_secret(Mode::List, &["check", "--kube"]);
    assert!(
        text.contains("envoy-gateway"),
        "the failure names the Secret:\n{text}"
    );
}

#[test]
fn a_get_answer_that_does_not_parse_prints_no_key() {
    let text = assert_no_secret(Mode::Get, &["status", "--kube"]);
    assert!(
        text.contains("Secret envoy-gateway") && text.contains("at field `type`"),
        "the failure names the kind, the name and the field:\n{text}"
    );
}

#[test]
fn a_patch_answer_that_does_not_parse_prints_no_key() {
    installed_secrets();
    let text = assert_no_secret(Mode::Patch, &["rotate", "--kube", "--overwrite"]);
    assert!(
        text.contains("envoy-gateway-ca") && text.contains("withheld"),
        "the failed PATCH of the CA Secret is named:\n{text}"
    );
}

#[test]
fn a_write_answer_that_does_not_parse_prints_no_key() {
    let text = assert_no_secret(Mode::Write, &["rotate", "--kube"]);
    assert!(
        text.contains("envoy-oidc-hmac"),
        "the failed write is named:\n{text}"
    );
}
