//! A kube-runtime controller that keeps the control plane of every namespace rotated.
//!
//! It watches the CA Secrets certrotate labels `certrotate.io/ca=true`, in every namespace,
//! and reconciles the control plane each one belongs to: one [`Rotator::reconcile`] call
//! advances the rotation as far as it safely may and says when to come back, which maps
//! straight onto [`Action::requeue`]. The error policy asks the error whether trying again
//! may help ([`Error::is_transient`]): conflicts and outages are retried soon, bad input
//! (a corrupted Secret) only slowly, since a person has to fix it.
//!
//! `cargo run --example controller --features kube` (uses your kubeconfig; needs
//! list/watch on Secrets cluster-wide, plus what `deploy/rbac.yaml` grants per namespace).
//! Install a control plane first (`certrotate rotate --kube -n NAMESPACE`); the controller
//! then rotates its CA 90 days before it expires and renews leaves in between. To ask for
//! a rotation now, an operator would set `PlanOptions::request` to
//! `RotationRequest::Id(..)` from its own resource: the id is persisted with the rotation,
//! so the same request rotates once however often it is reconciled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certrotate::core::plan::wire::LABEL_CA;
use certrotate::core::{PlanOptions, Profile};
use certrotate::engine::{Clock, Error, KubeStore, Rotator, SystemClock};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

/// The rotator of one control plane, with the clock the context chose.
type PlaneRotator = Rotator<KubeStore, Arc<dyn Clock>>;

/// What every reconcile shares: the client, the policy, and one rotator per namespace
/// (rotators take `&self`, so one can serve concurrent reconciles).
struct Context {
    client: Client,
    options: PlanOptions,
    clock: Arc<dyn Clock>,
    /// When to look again once a control plane is up to date (leaf renewal is checked on
    /// every reconcile).
    resync: Duration,
    rotators: Mutex<BTreeMap<String, Arc<PlaneRotator>>>,
}

impl Context {
    fn new(client: Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            // The whole lifecycle as policy: rotate the CA when it expires within 90 days
            // (a staged rotation, one phase per reconcile), renew leaves expiring within
            // 90 days, create what is missing.
            options: PlanOptions::default()
                .with_rotate_ca_before(Some(Duration::from_secs(90 * 24 * 3600)))
                .with_renew_before(Some(Duration::from_secs(90 * 24 * 3600))),
            clock,
            resync: Duration::from_secs(3600),
            rotators: Mutex::new(BTreeMap::new()),
        }
    }

    /// The rotator of the control plane in `namespace`.
    fn rotator(&self, namespace: &str) -> Arc<PlaneRotator> {
        // A panic elsewhere cannot leave the map half-written: entries are inserted whole.
        let mut rotators = self.rotators.lock().unwrap_or_else(PoisonError::into_inner);
        rotators
            .entry(namespace.to_owned())
            .or_insert_with(|| {
                // Share the controller's client: one connection pool, one kube version.
                let store = KubeStore::new(self.client.clone());
                let profile = Profile::envoy_gateway(namespace);
                Arc::new(
                    Rotator::new(store, profile, self.options.clone())
                        .with_clock(Arc::clone(&self.clock)),
                )
            })
            .clone()
    }
}

/// Reconciles the control plane that `ca_secret` belongs to.
async fn reconcile(ca_secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = ca_secret.namespace().unwrap_or_default();
    let report = ctx.rotator(&namespace).reconcile().await?;
    tracing::info!(%namespace, phase = %report.phase, "{}", report.summary);
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

/// The controller over every namespace's CA Secrets.
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
/// answers watches with empty streams, so it runs on its initial list and its requeues).
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

    use certrotate::core::SeededEntropy;
    use certrotate::core::plan::ObjectRef;
    use certrotate::core::plan::wire::KEY_CA_CRT;
    use certrotate::engine::{ManualClock, SecretStore};
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
        Rotator::new(
            KubeStore::new(client.clone()),
            Profile::envoy_gateway(namespace),
            PlanOptions::default(),
        )
        .with_clock(Arc::clone(clock))
        .with_entropy(SeededEntropy::new(1))
        .reconcile()
        .await
        .unwrap();
    }

    async fn ca_pem(client: &Client, namespace: &str) -> Vec<u8> {
        let store = KubeStore::new(client.clone());
        let secret = ObjectRef::new(namespace, "envoy-gateway-ca");
        let ca = store.read_secret(&secret).await.unwrap().unwrap();
        ca.data[KEY_CA_CRT].clone()
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

        // Up to date: come back after the resync period.
        let ctx = Arc::new(Context::new(client.clone(), clock.clone()));
        for secret in &cas.items {
            let action = reconcile(Arc::new(secret.clone()), ctx.clone())
                .await
                .unwrap();
            assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
        }

        // A rotation requested for team-a: each reconcile advances one phase and requeues
        // for exactly the convergence interval left, measured with the rotator's clock.
        let team_a = Arc::new(
            cas.items
                .iter()
                .find(|s| s.namespace().as_deref() == Some("team-a"))
                .unwrap()
                .clone(),
        );
        let before = ca_pem(&client, "team-a").await;
        let mut rotating = Context::new(client.clone(), clock.clone());
        rotating.options = rotating
            .options
            .with_overwrite(true)
            .with_convergence_interval(Duration::from_secs(300));
        let rotating = Arc::new(rotating);
        let mut requeues = Vec::new();
        for _ in 0..3 {
            let action = reconcile(team_a.clone(), rotating.clone()).await.unwrap();
            requeues.push(action.clone());
            clock.advance(Duration::from_secs(300));
        }
        assert_eq!(
            requeues,
            [
                Action::requeue(Duration::from_secs(300)),  // trust entered
                Action::requeue(Duration::from_secs(300)),  // leaves entered
                Action::requeue(Duration::from_secs(3600)), // done: resync
            ]
        );
        assert_ne!(ca_pem(&client, "team-a").await, before, "team-a rotated");
    }

    /// The whole Controller (list, watch, reconcile, requeue) over HTTP: a requested
    /// rotation of the control plane it finds by label runs to its end on the controller's
    /// own requeues, with the system clock and a 1 s convergence interval.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_controller_runs_a_requested_rotation_to_its_end() {
        let server = fake_server::start(&[]);
        requested_rotation_runs_to_its_end(client_of(&server), "team-a").await;
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.starts_with("GET /api/v1/secrets?") && r.contains("watch=true")),
            "the controller watched: {:?}",
            server.requests()
        );
    }

    /// The same on a real API server (kube-apiserver from `test-support/controlplane`):
    /// real watches, real resourceVersions. Where it is not built, one line and a pass (a
    /// failure under `CERTROTATE_REQUIRE_CONTROLPLANE=1`, as in CI).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_controller_runs_a_requested_rotation_on_a_real_api_server() {
        let Some(cp) = certrotate_controlplane::ControlPlane::shared() else {
            return;
        };
        let ns = cp.namespace("e2e-controller").await.unwrap();
        requested_rotation_runs_to_its_end(cp.client().unwrap(), &ns).await;
    }

    /// Installs `namespace`, runs the Controller with a rotation request (1 s interval, the
    /// system clock) and waits (at most 60 s) until that rotation ended on another CA.
    async fn requested_rotation_runs_to_its_end(client: Client, namespace: &str) {
        use certrotate::core::plan::{Phase, RotationRequest, RotationState};
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        install(&client, namespace, &clock).await;
        let before = ca_pem(&client, namespace).await;

        let mut ctx = Context::new(client.clone(), Arc::new(SystemClock));
        ctx.options = ctx
            .options
            .with_request(Some(RotationRequest::Id("generation-1".into())))
            .with_convergence_interval(Duration::from_secs(1));
        let running = tokio::spawn(
            controller(client.clone())
                .run(reconcile, error_policy, Arc::new(ctx))
                .for_each(|_| async {}),
        );
        let store = KubeStore::new(client);
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
        ctx.options = ctx.options.with_overwrite(true);
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
        let mut update = certrotate::engine::SecretUpdate::default();
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
