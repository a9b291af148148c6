//! A kube-runtime controller that keeps the control plane of every namespace rotated.
//!
//! It watches the CA Secrets certrotate labels `certrotate.io/ca=true`, in every namespace,
//! and reconciles the control plane each one belongs to. One [`Engine`], created at start
//! and shared by every reconcile (its methods take `&self`), holds the store, the clock and
//! the Event sink; kube-runtime hands each reconcile its object, from which the reconcile
//! makes the control plane's [`Profile`] and its [`RotationPolicy`]. No map of engines, no
//! engine per request. One [`Engine::reconcile`] advances the rotation as far as it
//! safely may and says when to come back, which maps straight onto [`Action::requeue`].
//! The error policy asks the error whether trying again may help
//! ([`Error::is_transient`]): conflicts and outages are retried soon, bad input (a
//! corrupted Secret) only slowly, since a person has to fix it.
//!
//! The policy: rotate the CA 90 days before it expires and renew leaves in between
//! ([`Trigger::Schedule`]). To ask for a rotation now, annotate the CA Secret with
//! `example.certrotate.io/rotate=ID` (any new ID): the reconcile turns it into
//! [`Trigger::Once`], whose id is persisted with the rotation, so the same request rotates
//! once however often it is reconciled, or whichever replica reconciles it.
//!
//! Each run's Events go on the CA Secret (`kubectl describe secret envoy-gateway-ca`),
//! through [`KubeEvents`].
//!
//! Run it with `cargo run --example controller --features kube` (uses your kubeconfig).
//! Its RBAC is `examples/controller-rbac.yaml`: what `deploy/base/rbac.yaml` grants the
//! Job in one namespace, granted in every namespace, plus list and watch on Secrets. The
//! tests run the controller on a real API server as that ServiceAccount and check that
//! nothing was refused. Install a control plane first
//! (`certrotate rotate --kube -n NAMESPACE`).

use std::sync::Arc;
use std::time::Duration;

use certrotate::core::plan::ProfileObjects;
use certrotate::core::plan::wire::LABEL_CA;
use certrotate::core::{Profile, RotationPolicy, Trigger};
use certrotate::engine::events::KubeEvents;
use certrotate::engine::{Clock, Engine, Error, KubeStore, SystemClock};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

/// The annotation on a CA Secret that asks for a rotation now: its value is the request's
/// id, persisted with the rotation it starts ([`Trigger::Once`]).
const ROTATE_ANNOTATION: &str = "example.certrotate.io/rotate";

/// What every reconcile shares.
struct Context {
    /// The one engine: store, clock, Events.
    engine: Engine<KubeStore, Arc<dyn Clock>>,
    /// The policy of a control plane nobody asked to rotate now.
    policy: RotationPolicy,
    /// When to look again once a control plane is up to date (leaf renewal is checked on
    /// every reconcile).
    resync: Duration,
}

impl Context {
    fn new(client: Client, clock: Arc<dyn Clock>) -> Self {
        // This Pod's name (the downward API), else the host's: who reported each Event.
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok();
        Self {
            // Share the controller's client: one connection pool, one kube version.
            engine: Engine::new(KubeStore::new(client.clone()))
                .with_clock(clock)
                .with_event_sink(KubeEvents::new(client, instance)),
            // The whole lifecycle as policy: rotate the CA when it expires within 90 days
            // (a staged rotation, one phase per reconcile), renew leaves expiring within
            // 90 days, create what is missing.
            policy: RotationPolicy::default()
                .with_trigger(Trigger::Schedule {
                    rotate_ca_before: Duration::from_secs(90 * 24 * 3600),
                })
                .with_renew_before(Some(Duration::from_secs(90 * 24 * 3600))),
            resync: Duration::from_secs(3600),
        }
    }

    /// The policy for `ca_secret`: a rotation asked for by its annotation, else the
    /// schedule.
    fn policy_of(&self, ca_secret: &Secret) -> RotationPolicy {
        match ca_secret.annotations().get(ROTATE_ANNOTATION) {
            Some(id) if !id.is_empty() => {
                self.policy.clone().with_trigger(Trigger::Once(id.clone()))
            }
            Some(_) | None => self.policy.clone(),
        }
    }
}

/// The control plane `ca_secret` belongs to, if it is the CA Secret of one.
fn profile_of(ca_secret: &Secret) -> Option<Profile> {
    let profile = Profile::envoy_gateway(&ca_secret.namespace()?);
    let ca = ProfileObjects::of(&profile).ca_secret;
    (ca.name == ca_secret.name_any()).then_some(profile)
}

/// Reconciles the control plane that `ca_secret` belongs to.
async fn reconcile(ca_secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Another labelled Secret (not a profile's CA Secret): nothing to do until it changes.
    let Some(profile) = profile_of(&ca_secret) else {
        return Ok(Action::await_change());
    };
    let report = ctx
        .engine
        .reconcile(&profile, &ctx.policy_of(&ca_secret))
        .await?;
    tracing::info!(namespace = %profile.namespace, phase = %report.phase, "{}", report.summary);
    Ok(Action::requeue(report.requeue_after.unwrap_or(ctx.resync)))
}

/// What to do after a failed reconcile.
fn error_policy(ca_secret: Arc<Secret>, error: &Error, _ctx: Arc<Context>) -> Action {
    let object = error.object().map(|o| o.to_string()).unwrap_or_default();
    tracing::warn!(
        namespace = ca_secret.namespace().unwrap_or_default(),
        %object,
        transient = error.is_transient(),
        "reconcile failed: {error}"
    );
    if error.is_transient() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(Duration::from_secs(300))
    }
}

/// The controller over every namespace's CA Secrets, selected by certrotate's label: no
/// other Secret is listed or watched.
fn controller(client: Client) -> Controller<Secret> {
    let selector = format!("{LABEL_CA}=true");
    Controller::new(
        Api::<Secret>::all(client),
        watcher::Config::default().labels(&selector),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let client = Client::try_default().await?;
    let ctx = Arc::new(Context::new(client.clone(), Arc::new(SystemClock)));
    controller(client)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!("{e}");
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
#[path = "../test-support/fake_server.rs"]
mod fake_server;

/// The reconcile function and the error policy over HTTP, against the fake API server
/// (`cargo test --example controller --features kube`), and the whole Controller (the fake
/// answers watches with empty streams, so it runs on its initial list and its requeues);
/// then the whole Controller on a real API server, as the ServiceAccount of
/// `controller-rbac.yaml`.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

    use std::path::Path;

    use certrotate::core::SeededEntropy;
    use certrotate::core::plan::wire::KEY_CA_CRT;
    use certrotate::core::plan::{ObjectRef, Phase, RotationState};
    use certrotate::engine::{ManualClock, SecretStore, SecretUpdate};
    use kube::api::ListParams;
    use time::macros::datetime;

    use super::fake_server;
    use super::*;

    fn client_of(server: &fake_server::FakeServer) -> Client {
        let mut config = kube::Config::new(server.url.parse().unwrap());
        config.default_retry = false;
        Client::try_from(config).unwrap()
    }

    /// Installs the control plane of `namespace` (what `certrotate rotate` does first).
    async fn install(client: &Client, namespace: &str, clock: &Arc<ManualClock>) {
        Engine::new(KubeStore::new(client.clone()))
            .with_clock(Arc::clone(clock))
            .with_entropy(SeededEntropy::new(1))
            .reconcile(
                &Profile::envoy_gateway(namespace),
                &RotationPolicy::default(),
            )
            .await
            .unwrap();
    }

    async fn ca_pem(client: &Client, namespace: &str) -> Vec<u8> {
        let store = KubeStore::new(client.clone());
        let secret = ObjectRef::new(namespace, "envoy-gateway-ca");
        let ca = store.read_secret(&secret).await.unwrap().unwrap();
        ca.data[KEY_CA_CRT].clone()
    }

    /// Asks for a rotation of `namespace`'s control plane, as a person would: the CA
    /// Secret annotated with a request id.
    async fn request_rotation(client: &Client, namespace: &str, id: &str) -> Arc<Secret> {
        let store = KubeStore::new(client.clone());
        let secret = ObjectRef::new(namespace, "envoy-gateway-ca");
        let version = store.read_secret(&secret).await.unwrap().unwrap().version;
        let mut update = SecretUpdate::default();
        update
            .annotations
            .insert(ROTATE_ANNOTATION.into(), Some(id.into()));
        store
            .update_secret(&secret, &version, &update)
            .await
            .unwrap();
        Arc::new(
            Api::<Secret>::namespaced(client.clone(), namespace)
                .get("envoy-gateway-ca")
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn reconciles_every_namespace_selected_by_label_and_requeues_by_phase() {
        let server = fake_server::start(&[]);
        let client = client_of(&server);
        let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
        for ns in ["team-a", "team-b"] {
            install(&client, ns, &clock).await;
        }
        // What the controller watches: the CA Secrets, found by label, in every namespace.
        let selector = format!("{LABEL_CA}=true");
        let cas = Api::<Secret>::all(client.clone())
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap();
        let mut found: Vec<(String, String)> = cas
            .items
            .iter()
            .map(|s| (s.namespace().unwrap(), s.name_any()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("team-a".into(), "envoy-gateway-ca".into()),
                ("team-b".into(), "envoy-gateway-ca".into())
            ]
        );

        // Up to date: come back after the resync period. One context (one engine) for
        // every namespace.
        let mut ctx = Context::new(client.clone(), clock.clone());
        ctx.policy = ctx
            .policy
            .with_convergence_interval(Duration::from_secs(300));
        let ctx = Arc::new(ctx);
        for secret in &cas.items {
            let action = reconcile(Arc::new(secret.clone()), ctx.clone())
                .await
                .unwrap();
            assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
        }

        // A rotation requested for team-a (its CA Secret annotated): each reconcile
        // advances one phase and requeues for exactly the convergence interval left,
        // measured with the engine's clock; team-b is left alone.
        let before = (
            ca_pem(&client, "team-a").await,
            ca_pem(&client, "team-b").await,
        );
        let team_a = request_rotation(&client, "team-a", "ticket-1").await;
        let mut requeues = Vec::new();
        for _ in 0..4 {
            let action = reconcile(team_a.clone(), ctx.clone()).await.unwrap();
            requeues.push(action.clone());
            clock.advance(Duration::from_secs(300));
        }
        assert_eq!(
            requeues,
            [
                Action::requeue(Duration::from_secs(300)),  // trust entered
                Action::requeue(Duration::from_secs(300)),  // leaves entered
                Action::requeue(Duration::from_secs(3600)), // done: resync
                Action::requeue(Duration::from_secs(3600)), // the same request: done once
            ]
        );
        assert_ne!(ca_pem(&client, "team-a").await, before.0, "team-a rotated");
        assert_eq!(
            ca_pem(&client, "team-b").await,
            before.1,
            "team-b untouched"
        );
        // A labelled Secret that is no profile's CA Secret is left alone.
        let mut stranger = (*team_a).clone();
        stranger.metadata.name = Some("someone-else".into());
        let action = reconcile(Arc::new(stranger), ctx).await.unwrap();
        assert_eq!(action, Action::await_change());
    }

    /// The whole Controller (list, watch, reconcile, requeue) over HTTP: a requested
    /// rotation of the control plane it finds by label runs to its end on the controller's
    /// own requeues, with the system clock and a 1 s convergence interval.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_controller_runs_a_requested_rotation_to_its_end() {
        let server = fake_server::start(&[]);
        let client = client_of(&server);
        requested_rotation_runs_to_its_end(&client, &client, "team-a").await;
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.starts_with("GET /api/v1/secrets?") && r.contains("watch=true")),
            "the controller watched: {:?}",
            server.requests()
        );
    }

    /// The same on a real API server (kube-apiserver from `test-support/controlplane`),
    /// run as the ServiceAccount of `controller-rbac.yaml`: real watches, real
    /// resourceVersions, real RBAC. The audit log shows every request it made allowed, and
    /// the rotation's Events are on the CA Secret. Where the control plane is not built,
    /// one line and a pass (a failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_controller_runs_as_its_service_account_with_this_rbac() {
        let Some(cp) = certrotate_controlplane::ControlPlane::shared() else {
            return;
        };
        let rbac = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/controller-rbac.yaml");
        let objects = certrotate_controlplane::yaml_documents(&rbac).unwrap();
        cp.apply(&objects, None).await.unwrap();
        let token = cp
            .service_account_token("certrotate-system", "certrotate-controller")
            .await
            .unwrap();
        let ns = cp.namespace("e2e-controller").await.unwrap();
        let admin = cp.client().unwrap();
        let as_controller = cp.client_with_token(&token).unwrap();
        requested_rotation_runs_to_its_end(&admin, &as_controller, &ns).await;

        // Every request of the controller's ServiceAccount was allowed.
        let user = "system:serviceaccount:certrotate-system:certrotate-controller";
        let mut requests = Vec::new();
        for _ in 0..50 {
            requests = cp
                .audit_events()
                .unwrap()
                .into_iter()
                .filter(|e| e["user"]["username"] == user)
                .map(|e| {
                    let code = e["responseStatus"]["code"].as_i64().unwrap_or_default();
                    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                    (text(&e["verb"]), text(&e["requestURI"]), code)
                })
                .collect::<Vec<_>>();
            if requests.iter().any(|r| r.1.contains("events.k8s.io")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!requests.is_empty(), "no request of {user} audited");
        let refused: Vec<_> = requests
            .iter()
            .filter(|r| r.2 == 401 || r.2 == 403)
            .collect();
        assert!(refused.is_empty(), "refused: {refused:#?}");
        for needed in ["watch", "patch", "create"] {
            assert!(
                requests.iter().any(|r| r.0 == needed),
                "{needed} used: {requests:#?}"
            );
        }
        // The rotation's Events, on the CA Secret, by certrotate.
        let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin, &ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        let reasons: Vec<String> = events
            .items
            .iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("envoy-gateway-ca")
            })
            .filter_map(|e| e.reason.clone())
            .collect();
        assert!(!reasons.is_empty(), "no Event on the CA Secret");
    }

    /// Installs `namespace` (with `admin`), asks for a rotation by annotation, runs the
    /// Controller with `client` (1 s interval, the system clock) and waits (at most 60 s)
    /// until that rotation ended on another CA.
    async fn requested_rotation_runs_to_its_end(admin: &Client, client: &Client, namespace: &str) {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        install(admin, namespace, &clock).await;
        let before = ca_pem(admin, namespace).await;
        request_rotation(admin, namespace, "generation-1").await;

        let mut ctx = Context::new(client.clone(), Arc::new(SystemClock));
        ctx.policy = ctx.policy.with_convergence_interval(Duration::from_secs(1));
        let running = tokio::spawn(
            controller(client.clone())
                .run(reconcile, error_policy, Arc::new(ctx))
                .for_each(|_| async {}),
        );
        let store = KubeStore::new(admin.clone());
        let ca = ObjectRef::new(namespace, "envoy-gateway-ca");
        let mut polls = 0;
        let (state, secret) = loop {
            let secret = store.read_secret(&ca).await.unwrap().unwrap();
            let state = RotationState::from_secret(&secret, &ca).unwrap();
            if state.phase == Phase::Stable && state.previous.is_some() {
                break (state, secret);
            }
            polls += 1;
            assert!(polls < 300, "no rotation within 60 s: {state:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        running.abort();
        assert_eq!(state.request.as_deref(), Some("generation-1"));
        assert_ne!(secret.data[KEY_CA_CRT], before, "rotated");
    }

    #[tokio::test]
    async fn the_error_policy_retries_transient_errors_soon_and_bad_input_slowly() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 0:00 UTC)));
        // Every write of team-a's CA Secret answered 503: the retries give up, transient.
        let server = fake_server::start(&[
            "--fail",
            "PATCH:/api/v1/namespaces/team-a/secrets/envoy-gateway-ca?:503:1000",
        ]);
        let client = client_of(&server);
        install(&client, "team-a", &clock).await;
        let secret = ObjectRef::new("team-a", "envoy-gateway-ca");
        let mut ctx = Context::new(client.clone(), clock.clone());
        ctx.policy = ctx.policy.with_trigger(Trigger::Always);
        let ctx = Arc::new(ctx);
        let object = Arc::new(
            Api::<Secret>::namespaced(client.clone(), "team-a")
                .get("envoy-gateway-ca")
                .await
                .unwrap(),
        );
        let err = reconcile(object.clone(), ctx.clone()).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(
            error_policy(object.clone(), &err, ctx.clone()),
            Action::requeue(Duration::from_secs(5))
        );

        // A corrupted rotation state: permanent until a person fixes it.
        let mut update = SecretUpdate::default();
        update
            .annotations
            .insert("certrotate.io/phase".into(), Some("sideways".into()));
        let server = fake_server::start(&[]);
        let client = client_of(&server);
        install(&client, "team-a", &clock).await;
        let store = KubeStore::new(client.clone());
        let version = store.read_secret(&secret).await.unwrap().unwrap().version;
        store
            .update_secret(&secret, &version, &update)
            .await
            .unwrap();
        let ctx = Arc::new(Context::new(client.clone(), clock.clone()));
        let err = reconcile(object.clone(), ctx.clone()).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert_eq!(
            err.object().map(|o| o.to_string()),
            Some("secret team-a/envoy-gateway-ca".into())
        );
        assert_eq!(
            error_policy(object, &err, ctx),
            Action::requeue(Duration::from_secs(300))
        );
    }
}
