//! `check --pushgateway` against hostile and authenticated Pushgateways (issue 19): an
//! endless answer is read up to 4 KiB and the connection closed; a trickling server is
//! given up after `--pushgateway-timeout`; a refusal's text is quoted escaped and short;
//! credentials come from files, travel only over TLS (or to a loopback address), and are
//! never shown. Every server here listens on 127.0.0.1 only, serves one connection, and
//! ends by itself (bounded loops, socket timeouts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use support::certrotate;

/// Bounds every wait of a test server, so none outlives a broken client.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a flooding server writes before it gives up: far more than the client's
/// limit plus every socket buffer between them, far less than "endless".
const FLOOD_CAP: usize = 64 << 20;

/// One finished run: exit status and stderr.
fn run(args: &[&str]) -> (i32, String) {
    let out = certrotate()
        .env_remove("CERTROTATE_PUSHGATEWAY")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn installed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(&["rotate", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    dir
}

/// A listener on 127.0.0.1 and its `http://` URL.
fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// The first connection within [`SOCKET_TIMEOUT`] (`None` if the client never came), with
/// read and write timeouts set.
fn accept(listener: &TcpListener) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    for _ in 0..SOCKET_TIMEOUT.as_millis() / 10 {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
                stream.set_write_timeout(Some(SOCKET_TIMEOUT)).unwrap();
                return Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

/// A request line and headers.
type Request = (String, Vec<String>);

/// Reads one request (head and `content-length` body): its request line and headers.
fn read_request(stream: impl Read) -> Request {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut headers = Vec::new();
    let mut length = 0;
    for _ in 0..100 {
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
    (request_line.trim_end().to_owned(), headers)
}

/// How a hostile server's writing ended.
#[derive(Debug, PartialEq)]
enum Ended {
    /// The client closed the connection after this many bytes were written.
    ClosedByClient(usize),
    /// The server wrote all it meant to: the client never stopped it.
    WroteEverything,
}

/// Writes `head`, then `chunk` `count` times (or until a write fails), pausing `pause`
/// between chunks.
fn write_until_closed(
    mut stream: TcpStream,
    head: &[u8],
    chunk: &[u8],
    count: usize,
    pause: Duration,
) -> Ended {
    let mut written = 0;
    if stream.write_all(head).is_err() {
        return Ended::ClosedByClient(written);
    }
    for _ in 0..count {
        if let Err(e) = stream.write_all(chunk) {
            assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "the client stopped reading without closing"
            );
            return Ended::ClosedByClient(written);
        }
        written += chunk.len();
        std::thread::sleep(pause);
    }
    Ended::WroteEverything
}

/// A server that answers `status` with a chunked body that does not end (64 MiB at most),
/// opening with terminal escapes.
fn flooding(status: u16) -> (String, JoinHandle<Ended>) {
    let (listener, url) = listen();
    let handle = std::thread::spawn(move || {
        let stream = accept(&listener).expect("the client connected");
        read_request(&stream);
        let escapes = "\x1b[31mevil\x07\x1b]0;t\x07";
        let head = format!(
            "HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{escapes}\r\n",
            escapes.len()
        );
        // One chunk of 64 KiB of `A`, repeated.
        let mut chunk = format!("{:x}\r\n", 64 << 10).into_bytes();
        chunk.extend(std::iter::repeat_n(b'A', 64 << 10));
        chunk.extend_from_slice(b"\r\n");
        let count = FLOOD_CAP / chunk.len();
        write_until_closed(stream, head.as_bytes(), &chunk, count, Duration::ZERO)
    });
    (url, handle)
}

/// Red-team issue 19 finding 4: `check --pushgateway` read the whole answer; a flooding
/// server took it to 10 GB. Now at most 4 KiB of it are read and the connection is
/// closed: the server's writes fail long before its 64 MiB (the client's limit plus the
/// sockets' buffers). Finding 9: the quoted answer is escaped (`\1B`) and short.
#[test]
fn a_flooding_pushgateway_is_cut_off_and_quoted_escaped() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();

    let (url, server) = flooding(500);
    let (code, err) = run(&["check", "--dir", d, "--pushgateway", &url]);
    let ended = server.join().unwrap();
    assert!(
        matches!(ended, Ended::ClosedByClient(n) if n < FLOOD_CAP / 4),
        "{ended:?}"
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("answered 500"), "{err}");
    assert!(
        err.contains("\\1B[31mevil\\07\\1B]0;t\\07AAA"),
        "the answer, escaped: {err}"
    );
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "raw control characters: {err:?}"
    );
    assert!(err.len() < 1000, "a bounded quote: {} bytes", err.len());

    // A 2xx needs no body: the push succeeds and the flood is not read.
    let (url, server) = flooding(200);
    let (code, err) = run(&["check", "--dir", d, "--pushgateway", &url]);
    let ended = server.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        matches!(ended, Ended::ClosedByClient(n) if n < FLOOD_CAP / 4),
        "{ended:?}"
    );
}

/// Issue 19 finding 6: a server that answers one byte at a time must not hold the run:
/// `--pushgateway-timeout` bounds the whole push. The server would trickle for a minute;
/// the client leaves after one second, closing the connection.
#[test]
fn a_trickling_pushgateway_is_given_up_after_the_timeout() {
    let dir = installed();
    let (listener, url) = listen();
    let server = std::thread::spawn(move || {
        let stream = accept(&listener).expect("the client connected");
        read_request(&stream);
        // A valid head, one byte of a header value every 100 ms.
        let head = b"HTTP/1.1 200 OK\r\nx-slow: ";
        write_until_closed(stream, head, b"a", 600, Duration::from_millis(100))
    });
    let (code, err) = run(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        &url,
        "--pushgateway-timeout",
        "1s",
    ]);
    let ended = server.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("pushing metrics to {url}/metrics/")) && err.contains("within 1s"),
        "{err}"
    );
    assert!(matches!(ended, Ended::ClosedByClient(_)), "{ended:?}");

    // A TLS handshake that never comes: the same deadline.
    let (listener, url) = listen();
    let server = std::thread::spawn(move || {
        let mut stream = accept(&listener).expect("the client connected");
        // Read the ClientHello and say nothing until the client leaves.
        let mut buffer = [0; 4096];
        while stream.read(&mut buffer).is_ok_and(|n| n > 0) {}
    });
    let https = url.replace("http://", "https://");
    let (code, err) = run(&[
        "check",
        "--dir",
        dir.path().to_str().unwrap(),
        "--pushgateway",
        &https,
        "--pushgateway-timeout",
        "1s",
    ]);
    server.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("within 1s"), "{err}");
}

/// A one-connection server answering `status`: the request line and headers it got.
fn receiver(status: u16) -> (String, JoinHandle<Request>) {
    let (listener, url) = listen();
    let handle = std::thread::spawn(move || {
        let stream = accept(&listener).expect("the client connected");
        let request = read_request(&stream);
        answer(stream, status);
        request
    });
    (url, handle)
}

fn answer(mut stream: impl Write, status: u16) {
    let text = if status == 200 { "" } else { "go away" };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    stream.flush().unwrap();
}

fn secret_file(dir: &Path, name: &str, content: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn authorization(headers: &[String]) -> Option<&str> {
    headers.iter().find_map(|h| {
        let (name, value) = h.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then_some(value.trim())
    })
}

/// Issue 19 finding 10: a credential comes from a file, is sent as the Authorization
/// header, and is never printed, even when the push fails and everything is logged.
#[test]
fn credentials_from_files_are_sent_and_never_shown() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let token = secret_file(secrets.path(), "token", "tok-s3cr3t\n", 0o600);
    let basic = secret_file(secrets.path(), "basic", "pusher:pa:ss-s3cr3t\r\n", 0o600);

    let (url, server) = receiver(200);
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        &url,
        "--pushgateway-bearer-token-file",
        &token,
    ]);
    let (_, headers) = server.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(authorization(&headers), Some("Bearer tok-s3cr3t"));

    let (url, server) = receiver(200);
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        &url,
        "--pushgateway-basic-auth-file",
        &basic,
    ]);
    let (_, headers) = server.join().unwrap();
    assert_eq!(code, 0, "{err}");
    // base64("pusher:pa:ss-s3cr3t")
    assert_eq!(
        authorization(&headers),
        Some("Basic cHVzaGVyOnBhOnNzLXMzY3IzdA==")
    );

    // Refused, with every log line on: the credential shows nowhere.
    for (flag, file) in [
        ("--pushgateway-bearer-token-file", &token),
        ("--pushgateway-basic-auth-file", &basic),
    ] {
        let (url, server) = receiver(401);
        let out = certrotate()
            .env_remove("CERTROTATE_PUSHGATEWAY")
            .env("RUST_LOG", "trace")
            .args([
                "check",
                "--dir",
                d,
                "--pushgateway",
                &url,
                flag,
                file,
                "-vv",
            ])
            .output()
            .unwrap();
        server.join().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(
            all.contains("answered 401") && all.contains("go away"),
            "{all}"
        );
        assert!(
            !all.contains("s3cr3t") && !all.contains("czNjcjN0"),
            "{all}"
        );
    }
}

/// Issue 19 finding 10: a URL with a user and password was accepted, never sent, and the
/// password printed in errors. Now clap refuses it (exit 2), naming the flag, not the
/// password; a credential over plain http to another host than a loopback address, two
/// credentials, or a CA file for http are usage errors too.
#[test]
fn credentials_stay_out_of_urls_and_off_plain_http() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let token = secret_file(secrets.path(), "token", "tok\n", 0o600);

    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        "http://pusher:hunter2@gw.invalid:9091",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--pushgateway") && err.contains("user or password"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let out = certrotate()
        .env(
            "CERTROTATE_PUSHGATEWAY",
            "https://pusher:hunter2@gw.invalid",
        )
        .args(["check", "--dir", d])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // `--help` shows the variable, not its value.
    let out = certrotate()
        .env(
            "CERTROTATE_PUSHGATEWAY",
            "https://pusher:hunter2@gw.invalid",
        )
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: CERTROTATE_PUSHGATEWAY]"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");

    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        "http://gw.invalid:9091",
        "--pushgateway-bearer-token-file",
        &token,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--pushgateway-bearer-token-file") && err.contains("clear text"),
        "{err}"
    );
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        "http://127.0.0.1:9",
        "--pushgateway-bearer-token-file",
        &token,
        "--pushgateway-basic-auth-file",
        &token,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        "http://127.0.0.1:9",
        "--pushgateway-ca-file",
        &token,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pushgateway-ca-file"), "{err}");
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway-bearer-token-file",
        &token,
    ]);
    assert_eq!(code, 2, "a credential without a Pushgateway: {err}");
}

/// Credential files are read as `--profile` is: one any user may write is refused; a
/// malformed one is refused naming the file and what is wrong, never quoting it.
#[test]
fn credential_files_are_judged_and_never_quoted() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let cases = [
        (
            "--pushgateway-bearer-token-file",
            secret_file(secrets.path(), "ww", "tok-s3cr3t\n", 0o666),
            "writable by every user",
        ),
        (
            "--pushgateway-bearer-token-file",
            secret_file(secrets.path(), "two", "tok-s3cr3t\nsecond-s3cr3t\n", 0o600),
            "more than one line",
        ),
        (
            "--pushgateway-bearer-token-file",
            secret_file(secrets.path(), "space", "tok s3cr3t\n", 0o600),
            "byte 4",
        ),
        (
            "--pushgateway-bearer-token-file",
            secret_file(secrets.path(), "empty", "\n", 0o600),
            "empty",
        ),
        (
            "--pushgateway-basic-auth-file",
            secret_file(secrets.path(), "nocolon", "s3cr3t\n", 0o600),
            "USER:PASSWORD",
        ),
        (
            "--pushgateway-basic-auth-file",
            secret_file(secrets.path(), "esc", "u:\x1bs3cr3t\n", 0o600),
            "control character",
        ),
    ];
    for (flag, file, expected) in &cases {
        let (code, err) = run(&[
            "check",
            "--dir",
            d,
            "--pushgateway",
            "http://127.0.0.1:9",
            flag,
            file,
        ]);
        assert_eq!(code, 1, "{file}: {err}");
        assert!(
            err.contains(*flag) && err.contains(file.as_str()) && err.contains(expected),
            "{file}: {err}"
        );
        assert!(!err.contains("s3cr3t"), "{file}: {err}");
    }
}

/// A private CA and a server certificate for 127.0.0.1: (CA PEM, chain, key).
fn private_pki() -> (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (ca.pem(), vec![leaf.der().clone()], key)
}

/// A one-connection https server on 127.0.0.1 answering 200: the request it got, or the
/// TLS error that ended the connection.
fn tls_receiver(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (String, JoinHandle<Result<Request, String>>) {
    let (listener, url) = listen();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let handle = std::thread::spawn(move || {
        let tcp = accept(&listener).ok_or("the client never connected")?;
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        // The handshake first: a client that refuses the certificate ends it here.
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        let request = read_request(&mut tls);
        answer(&mut tls, 200);
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
        Ok(request)
    });
    (url.replace("http://", "https://"), handle)
}

/// Issue 19 finding 10: https:// Pushgateways, trusted through `--pushgateway-ca-file`
/// (or the platform's roots, which do not know this private CA), with the credential sent
/// inside TLS.
#[test]
fn an_https_pushgateway_is_verified_and_gets_the_credential() {
    let dir = installed();
    let d = dir.path().to_str().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let token = secret_file(secrets.path(), "token", "tok-tls\n", 0o600);
    let (ca_pem, chain, key) = private_pki();
    let ca = secret_file(secrets.path(), "ca.pem", &ca_pem, 0o644);

    let (url, server) = tls_receiver(chain.clone(), key.clone_key());
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        &format!("{url}/gw"),
        "--pushgateway-ca-file",
        &ca,
        "--pushgateway-bearer-token-file",
        &token,
    ]);
    let (request, headers) = server.join().unwrap().expect("a TLS exchange");
    assert_eq!(code, 0, "{err}");
    assert!(
        request.starts_with("PUT /gw/metrics/job/certrotate/namespace/"),
        "{request}"
    );
    assert_eq!(authorization(&headers), Some("Bearer tok-tls"));
    let host = url.trim_start_matches("https://");
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&format!("host: {host}"))),
        "{headers:?}"
    );

    // Without the CA file, the system's roots do not trust the private CA: no push, and
    // the token never left.
    let (url, server) = tls_receiver(chain, key);
    let (code, err) = run(&[
        "check",
        "--dir",
        d,
        "--pushgateway",
        &url,
        "--pushgateway-bearer-token-file",
        &token,
    ]);
    let ended = server.join().unwrap();
    assert!(ended.is_err(), "the handshake failed: {ended:?}");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("pushing metrics to {url}")), "{err}");
    assert!(!err.contains("tok-tls"), "{err}");
}
