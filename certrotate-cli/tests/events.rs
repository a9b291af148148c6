//! `rotate --kube` records Kubernetes Events on the CA Secret, over HTTP against the
//! kube-fake-client server: an install, each phase change, and a failed run as a Warning,
//! each `regarding` the CA Secret (with its UID, which `kubectl describe` selects by).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use assert_cmd::Command;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;

const NS: &str = "envoy-gateway-system";
const CA_SECRET: &str = "envoy-gateway-ca";

fn certrotate(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", "certrotate-rotate-x7k2p")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("PRIVATE KEY-----"));
    (out.status.success(), text)
}

/// The Events of the namespace, oldest first, and the CA Secret's UID.
fn events(server: &fake_server::FakeServer) -> (Vec<Event>, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client =
            kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
        let mut events = Api::<Event>::namespaced(client.clone(), NS)
            .list(&Default::default())
            .await
            .unwrap()
            .items;
        events.sort_by_key(|e| {
            e.metadata
                .resource_version
                .clone()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        });
        let secret = Api::<Secret>::namespaced(client, NS)
            .get(CA_SECRET)
            .await
            .unwrap();
        (events, secret.metadata.uid.unwrap())
    })
}

fn reasons(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.type_.clone().unwrap(), e.reason.clone().unwrap()))
        .collect()
}

#[test]
fn a_rotation_leaves_events_on_the_ca_secret() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();

    let (ok, out) = certrotate(&kubeconfig, &["rotate", "--kube"]);
    assert!(ok, "{out}");
    let (events_after_install, uid) = events(&server);
    assert_eq!(
        reasons(&events_after_install),
        [("Normal".to_owned(), "Installed".to_owned())]
    );

    // A dry run records nothing.
    let (ok, out) = certrotate(
        &kubeconfig,
        &["rotate", "--kube", "--overwrite", "--dry-run"],
    );
    assert!(ok, "{out}");
    assert_eq!(events(&server).0.len(), 1);

    let (ok, out) = certrotate(
        &kubeconfig,
        &[
            "rotate",
            "--kube",
            "--overwrite",
            "--wait",
            "--convergence-interval",
            "0",
            "--allow-short-interval",
        ],
    );
    assert!(ok, "{out}");
    let (events, _) = events(&server);
    let phase_notes: Vec<String> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("PhaseChanged"))
        .map(|e| e.note.clone().unwrap())
        .collect();
    let transitions: Vec<&str> = phase_notes
        .iter()
        .map(|n| n.split(':').next().unwrap())
        .collect();
    assert_eq!(
        transitions,
        [
            "phase stable -> prepared",
            "phase prepared -> trust",
            "phase trust -> leaves",
            "phase leaves -> stable"
        ],
        "{phase_notes:#?}"
    );
    for e in &events {
        let regarding = e.regarding.clone().unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("Secret"));
        assert_eq!(regarding.api_version.as_deref(), Some("v1"));
        assert_eq!(regarding.namespace.as_deref(), Some(NS));
        assert_eq!(regarding.name.as_deref(), Some(CA_SECRET));
        assert_eq!(regarding.uid.as_deref(), Some(uid.as_str()), "{e:?}");
        assert_eq!(e.reporting_controller.as_deref(), Some("certrotate"));
        assert_eq!(
            e.reporting_instance.as_deref(),
            Some("certrotate-rotate-x7k2p")
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some(NS));
        assert!(e.note.as_deref().is_some_and(|n| !n.is_empty()));
    }
    assert!(
        server.requests().iter().any(|r| r.starts_with(&format!(
            "POST /apis/events.k8s.io/v1/namespaces/{NS}/events"
        ))),
        "sent through events.k8s.io/v1"
    );
}

#[test]
fn a_failed_run_is_a_warning_event_naming_the_object() {
    // Every PATCH of one component Secret fails: the trust phase cannot be written.
    let server = fake_server::start(&["--fail", "PATCH:/secrets/envoy-rate-limit:500:1000"]);
    let kubeconfig = server.kubeconfig();
    let (ok, out) = certrotate(&kubeconfig, &["rotate", "--kube"]);
    assert!(ok, "{out}");
    let (ok, out) = certrotate(
        &kubeconfig,
        &[
            "rotate",
            "--kube",
            "--overwrite",
            "--convergence-interval",
            "0",
            "--allow-short-interval",
        ],
    );
    assert!(!ok, "{out}");
    let (events, uid) = events(&server);
    // What the run did before it failed was published as it happened: the next CA was
    // prepared. The trust step that failed half-way is not reported as entered.
    let notes: Vec<String> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("PhaseChanged"))
        .map(|e| e.note.clone().unwrap())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].starts_with("phase stable -> prepared"),
        "{notes:#?}"
    );
    let warning = events.last().unwrap();
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.reason.as_deref(), Some("RotationFailed"));
    let note = warning.note.clone().unwrap();
    assert!(note.contains(&format!("{NS}/envoy-rate-limit")), "{note}");
    let regarding = warning.regarding.clone().unwrap();
    assert_eq!(regarding.name.as_deref(), Some(CA_SECRET));
    assert_eq!(regarding.uid.as_deref(), Some(uid.as_str()));
}
