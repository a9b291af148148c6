//! `kube-fake-server [--port N] [--fail|--hang|--slow METHOD:PATH-SUBSTRING:ARG:TIMES]...`
//!
//! Serves an empty kube-fake-client API server on 127.0.0.1 (port 0 picks a free one) and
//! prints `listening on http://127.0.0.1:PORT` once ready. Each request is forwarded
//! through kube-fake-client's mock service (404 Status bodies, 409 on a stale
//! resourceVersion, 201 on create, merge/JSON/strategic patches, server-side apply).
//!
//! A watch (`?watch=true`) is answered with an empty stream after half a second, as an API
//! server answers a watch that saw no change before its timeout.
//!
//! `--fail` answers the first TIMES requests whose method matches and whose path contains
//! the substring with STATUS (a Kubernetes Status body; 429 carries `Retry-After: 1`), for
//! fault tests. `--hang` waits ARG milliseconds, then answers 504 without forwarding the
//! request (it is lost, as when an API server times out); `--slow` forwards the request
//! (it is applied) and waits ARG milliseconds before answering (a client that times out
//! first does not know it was applied). Stops on stdin EOF or SIGTERM.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

struct Fault {
    method: String,
    path: String,
    kind: FaultKind,
    left: u32,
}

#[derive(Clone, Copy)]
enum FaultKind {
    Status(u16),
    Hang(std::time::Duration),
    Slow(std::time::Duration),
}

#[tokio::main]
async fn main() {
    let mut port = 0u16;
    let mut faults = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--fail" | "--hang" | "--slow" => {
                let spec = args.next().expect("METHOD:PATH:ARG:TIMES");
                let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
                let (times, value, rest) = (parts[0], parts[1], parts[2]);
                let (method, path) = rest.split_once(':').expect("METHOD:PATH");
                let value: u64 = value.parse().expect("STATUS or MILLISECONDS");
                let millis = std::time::Duration::from_millis(value);
                faults.push(Fault {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    kind: match arg.as_str() {
                        "--fail" => FaultKind::Status(u16::try_from(value).expect("STATUS")),
                        "--hang" => FaultKind::Hang(millis),
                        _ => FaultKind::Slow(millis),
                    },
                    left: times.parse().expect("TIMES"),
                });
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let faults = Arc::new(Mutex::new(faults));
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("fake client");
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("addr")
    );

    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let client = client.clone();
            let faults = faults.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let client = client.clone();
                    let faults = faults.clone();
                    async move { Ok::<_, Infallible>(forward(client, faults, req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    let stdin_closed = async {
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    };
    tokio::select! {
        _ = serve => {}
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn forward(
    client: kube::Client,
    faults: Arc<Mutex<Vec<Fault>>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    eprintln!("{} {}", parts.method, path);
    if let Some(doc) = discovery(parts.uri.path()) {
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(doc)))
            .expect("response");
    }
    let fault = injected(&faults, parts.method.as_str(), &path);
    if let Some(FaultKind::Hang(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    let status = match fault {
        Some(FaultKind::Status(status)) => Some(status),
        Some(FaultKind::Hang(_)) => Some(504),
        _ => None,
    };
    if let Some(status) = status {
        let reason = match status {
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        let body = format!(
            r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected fault","reason":"{reason}","code":{status},"details":{{"retryAfterSeconds":1}}}}"#
        );
        let mut resp = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if status == 429 {
            resp = resp.header("retry-after", "1");
        }
        return resp.body(Full::new(Bytes::from(body))).expect("response");
    }
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // kube-fake-client has no dry run: answer a `dryRun=All` write the way the API server
    // does, without persisting it (a create echoes the object, any other write returns the
    // object as stored), so a server-side dry run leaves the fake as it was.
    let dry_run = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "dryRun=All"));
    if dry_run && parts.method != http::Method::GET {
        if parts.method == http::Method::POST {
            return Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .body(Full::new(bytes))
                .expect("response");
        }
        let get = http::Request::builder()
            .method(http::Method::GET)
            .uri(parts.uri.path())
            .body(kube::client::Body::from(Vec::new()))
            .expect("request");
        return relay(client.send(get).await).await;
    }
    // kube-fake-client serves no watch streams. Answer a watch as an API server does when
    // nothing changed before the watch's timeout: an empty stream, after a while (here half
    // a second, not minutes). A watcher (kube-runtime's Controller) then watches again, so
    // a controller runs against this fake on its initial list and its own requeues.
    let watch = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    if watch && parts.method == http::Method::GET {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::new()))
            .expect("response");
    }
    let mut out = http::Request::builder().method(parts.method).uri(parts.uri);
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let request = out
        .body(kube::client::Body::from(bytes.to_vec()))
        .expect("request");
    let response = if is_write(request.method()) {
        // kube-fake-client checks a write's resourceVersion and stores the object in
        // separate steps, so two racing writes of the same version could both succeed. The
        // API server checks and writes atomically: so does this fake, one write at a time
        // per object (per collection for a create).
        let lock = object_lock(request.uri().path());
        let _one_at_a_time = lock.lock().await;
        relay(client.send(request).await).await
    } else {
        relay(client.send(request).await).await
    };
    if let Some(FaultKind::Slow(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    response
}

/// Whether a request of this method changes the store (reads need no serialising).
fn is_write(method: &http::Method) -> bool {
    !matches!(*method, http::Method::GET | http::Method::HEAD)
}

/// The lock serialising the writes of the object (or collection) at `path` (see
/// [`forward`]).
fn object_lock(path: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::LazyLock<
        Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().expect("locks");
    Arc::clone(locks.entry(path.to_owned()).or_default())
}

/// The fake client's answer as an HTTP response (a client error as a 500 `Status`).
async fn relay(
    sent: Result<http::Response<kube::client::Body>, kube::Error>,
) -> Response<Full<Bytes>> {
    match sent {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let mut out = Response::builder().status(parts.status);
            for (k, v) in &parts.headers {
                out = out.header(k, v);
            }
            out.body(Full::new(bytes)).expect("response")
        }
        Err(e) => Response::builder()
            .status(500)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":{:?},"reason":"InternalError","code":500}}"#,
                e.to_string()
            ))))
            .expect("response"),
    }
}

fn injected(faults: &Mutex<Vec<Fault>>, method: &str, path: &str) -> Option<FaultKind> {
    let mut faults = faults.lock().expect("faults");
    let f = faults
        .iter_mut()
        .find(|f| f.left > 0 && f.method.eq_ignore_ascii_case(method) && path.contains(&f.path))?;
    f.left -= 1;
    Some(f.kind)
}

/// Static discovery documents, so that kubectl can talk to the fake (the fake client
/// itself serves only resource paths). Only the kinds certrotate touches are listed.
fn discovery(path: &str) -> Option<String> {
    let resource = |name: &str, kind: &str, namespaced: bool| {
        format!(
            r#"{{"name":"{name}","singularName":"","namespaced":{namespaced},"kind":"{kind}","verbs":["create","delete","get","list","patch","update","watch"]}}"#
        )
    };
    let list = |gv: &str, resources: Vec<String>| {
        format!(
            r#"{{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{gv}","resources":[{}]}}"#,
            resources.join(",")
        )
    };
    let group = |name: &str| {
        format!(
            r#"{{"name":"{name}","versions":[{{"groupVersion":"{name}/v1","version":"v1"}}],"preferredVersion":{{"groupVersion":"{name}/v1","version":"v1"}}}}"#
        )
    };
    match path.trim_end_matches('/') {
        "/version" => Some(r#"{"major":"1","minor":"33","gitVersion":"v1.33.0-kube-fake-client"}"#.into()),
        "/api" => Some(r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}"#.into()),
        "/apis" => Some(format!(
            r#"{{"kind":"APIGroupList","apiVersion":"v1","groups":[{},{}]}}"#,
            group("apps"),
            group("admissionregistration.k8s.io")
        )),
        "/api/v1" => Some(list("v1", vec![resource("secrets", "Secret", true), resource("namespaces", "Namespace", false)])),
        "/apis/apps/v1" => Some(list(
            "apps/v1",
            vec![
                resource("deployments", "Deployment", true),
                resource("statefulsets", "StatefulSet", true),
                resource("daemonsets", "DaemonSet", true),
            ],
        )),
        "/apis/admissionregistration.k8s.io/v1" => Some(list(
            "admissionregistration.k8s.io/v1",
            vec![
                resource("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", false),
                resource("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", false),
            ],
        )),
        _ => None,
    }
}
