//! `--kube` against small hostile API servers on 127.0.0.1 (red-team round 3, findings 6
//! and 12): one that trickles its answer, one that answers every request 429, one whose
//! answer never ends; and a Secret name that would walk the URL. Each server counts the
//! requests it saw, answers each on a connection of its own, and stops by itself (every
//! answer is bounded in bytes and time; the server stops accepting when dropped, or after
//! two minutes).
#![cfg(feature = "kube")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

mod support;

/// A hang guard only: every run here ends in seconds when the code is right.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// An API server whose every answer is written by `answer`.
struct Hostile {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Hostile {
    fn start(answer: fn(&mut TcpStream, &str)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            // Two minutes at most: 6000 polls 20 ms apart (fewer when connections come).
            for _ in 0..6000 {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    // The rest of the head (these clients send no body on a GET).
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    answer(&mut stream, request_line.trim());
                });
            }
        });
        Self {
            url,
            requests,
            stop,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        let path = tempfile::NamedTempFile::new()
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster:\n    server: {}\n\
             users:\n- name: h\n  user: {{}}\ncontexts:\n- name: h\n  context:\n    cluster: h\n    \
             user: h\ncurrent-context: h\n",
            self.url
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Runs certrotate with `args` and this server's kubeconfig, within the hang guard.
    fn run(&self, args: &[&str]) -> support::Run {
        // A run killed by the guard has no exit code (-1), which every test rejects.
        let out = support::certrotate()
            .env("KUBECONFIG", self.kubeconfig())
            .args(args)
            .arg("--kube")
            .timeout(HANG_GUARD)
            .output()
            .unwrap();
        support::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Headers that promise 1000 bytes, then a byte a second (at most 60).
fn trickle(stream: &mut TcpStream, _: &str) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\
                connection: close\r\n\r\n{";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        if stream
            .write_all(b" ")
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

/// 429 with a Retry-After of one second, as the API server's priority and fairness does.
fn too_many(stream: &mut TcpStream, _: &str) {
    let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"storm","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":1}}"#;
    let _ = write!(
        stream,
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// 17 MiB of a JSON string, without a declared length (it ends when the connection
/// closes), so only counting what was read can stop it.
fn endless(stream: &mut TcpStream, _: &str) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n\
                {\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"data\":{\"tls.crt\":\"";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b'A'; 64 << 10];
    for _ in 0..(17 * 16) {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
    let _ = stream.write_all(b"\"}}");
}

/// Red-team R3 (finding 6): a server trickling a byte every few seconds held `rotate
/// --wait --timeout` forever (the timeout was checked only before waits, and kube's read
/// timeout bounds one read). The whole run now ends at --timeout, saying what it was
/// doing, with its own exit status.
#[test]
fn a_trickling_server_is_cut_off_at_the_run_timeout() {
    let server = Hostile::start(trickle);
    let run = server.run(&["rotate", "--wait", "--timeout", "3s"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "timed out after 3s (--timeout) while reading the profile's objects and planning"
        ),
        "{}",
        run.stderr
    );
}

/// Each request is bounded end to end too (--request-timeout): the trickled answer is cut
/// off, retried within the observation's one budget, and the failure says why.
#[test]
fn a_trickled_answer_is_cut_off_at_the_request_timeout() {
    let server = Hostile::start(trickle);
    let run = server.run(&["check", "--request-timeout", "1s", "--timeout", "50s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("gave up after 4 attempts")
            && run.stderr.contains("within 1s (the request timeout)"),
        "{}",
        run.stderr
    );
    assert_eq!(server.requests(), 4, "one GET, three retries");
}

/// Red-team R3 (finding 6): a storm of 429s made `check` take 9 minutes: a failed LIST,
/// then every Secret's GET, each with retries of its own. The observation now has one
/// budget (three retries), counted here on the server's side.
#[test]
fn a_429_storm_costs_one_retry_budget() {
    let server = Hostile::start(too_many);
    let run = server.run(&["check"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("gave up after 4 attempts") && run.stderr.contains("storm"),
        "{}",
        run.stderr
    );
    assert_eq!(server.requests(), 4, "one GET, three retries");
}

/// Red-team R3 (finding 6): an answer was read whole, however large. Past 16 MiB it is
/// dropped, once (not retried), with an error naming the Secret.
#[test]
fn an_oversized_answer_is_dropped_naming_the_object() {
    let server = Hostile::start(endless);
    let run = server.run(&["inspect", "secret/envoy"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("reading secret envoy-gateway-system/envoy")
            && run.stderr.contains(
                "the answer to GET /api/v1/namespaces/envoy-gateway-system/secrets/envoy is \
                 larger than the limit of 16777216 bytes"
            ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("AAAA"), "{}", run.stderr);
    assert_eq!(server.requests(), 1, "not retried");
}

/// Red-team R3 (finding 12): `inspect secret/NAME` put NAME in the URL unchecked
/// (`secret/../../../api/v1/namespaces/kube-system/secrets/x` read another namespace's
/// Secret). A name that is not a Kubernetes object name is refused before any request.
#[test]
fn an_inspected_secret_name_is_checked_before_any_request() {
    let server = Hostile::start(too_many);
    for what in [
        "secret/../../../api/v1/namespaces/kube-system/secrets/x",
        "secret/envoy?watch=true",
        "secret/Envoy",
    ] {
        let run = server.run(&["inspect", what]);
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(run.stderr.contains("not a Secret name"), "{}", run.stderr);
    }
    let run = server.run(&["inspect", "secret", "a/b"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(server.requests(), 0);
}
