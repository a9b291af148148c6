//! The Kubernetes backend, through kube-rs.
//!
//! - A profile's Secrets are read with one LIST by its label selector (a GET for any the
//!   list did not return, or for each where RBAC does not grant `list`), and changed with
//!   one JSON merge patch that carries
//!   `metadata.resourceVersion`: the API server applies it only if the Secret is still at
//!   that version (409 otherwise), and every key, label, annotation or field the patch does
//!   not name is kept (certgen's full replace dropped them).
//! - Restarts are the merge patch `kubectl rollout restart` sends: the pod-template
//!   annotation `kubectl.kubernetes.io/restartedAt` (plus certrotate's own), on Deployments,
//!   StatefulSets and DaemonSets.
//! - Webhook configurations are read as raw JSON and their `caBundle`s changed with an
//!   RFC 6902 JSON patch: `test` of `metadata.resourceVersion` and of each webhook's name,
//!   then `replace` (or `add`) of each changed `caBundle`. Every other field, including
//!   those no Rust type knows, is left as the API server has it (a typed GET and PUT
//!   dropped them).
//! - Every write names the field manager `certrotate`; with [`KubeStore::with_dry_run`] the
//!   API server validates and answers without persisting anything.
//! - Every request is bounded ([`ClientLimits`]): a deadline for the whole request, body
//!   included, and a cap on the answer's size.
//! - Transient failures (429, 5xx, timeouts) are retried with jittered exponential backoff,
//!   honouring `Retry-After`, up to three retries per step of a run (an observation, a
//!   write batch), not per object; every retried write carries its precondition, so a
//!   retry can never overwrite blindly.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::BackoffBuilder as _;
use certrotate_core::plan::{ObjectRef, ObservedSecret};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

mod discovery;
mod failure;
mod webhook;
mod workloads;

use failure::*;

use crate::error::StoreError;
use crate::kube_io::ClientLimits;
use crate::store::{NewSecret, SecretStore, SecretUpdate, Store, WorkloadStore};

/// The longest wait between two attempts, whatever the server asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "certrotate";

/// A store backed by the Kubernetes API.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    endpoint: Option<KubeEndpoint>,
    dry_run: bool,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("endpoint", &self.endpoint)
            .field("dry_run", &self.dry_run)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// The API server a store made by [`KubeStore::connect`] talks to, and how it was chosen:
/// what a run names as its target (as `kubectl config current-context` and the cluster's
/// `server` say).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeEndpoint {
    /// The kubeconfig context used; `None`: the in-cluster service account.
    pub context: Option<String>,
    /// The API server's URL (`https://10.96.0.1:443`).
    pub server: String,
}

impl std::fmt::Display for KubeEndpoint {
    /// `context kind-edge at https://127.0.0.1:6443`, or `in-cluster at https://10.96.0.1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.context {
            Some(context) => write!(f, "context {context} at {}", self.server),
            None => write!(f, "in-cluster at {}", self.server),
        }
    }
}

impl KubeStore {
    /// A store using `client` (share your operator's client here).
    ///
    /// The store retries transient failures itself, a bounded number of times (see
    /// [`Self::with_retries`]). A client built from a `kube::Config` with `default_retry`
    /// (kube's default) also retries 429/503/504 up to 15 times with backoff up to 1000 s
    /// before the store sees the error; turn it off to keep the budget bounded, as
    /// [`Self::try_default`] does. Build the client with [`bounded_client`] to bound each
    /// request's time and answer size as [`Self::connect`] does.
    ///
    /// [`bounded_client`]: crate::bounded_client
    pub fn new(client: Client) -> Self {
        Self {
            client,
            endpoint: None,
            dry_run: false,
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }

    /// A store from the kubeconfig (`$KUBECONFIG`, `~/.kube/config`, optionally a context)
    /// or the in-cluster service account.
    pub async fn try_default(context: Option<&str>) -> Result<Self, StoreError> {
        Self::connect(None, context).await
    }

    /// A store from the kubeconfig file `kubeconfig` (or, without it, as
    /// [`Self::try_default`]), optionally with a context: `--kubeconfig` and `--context`.
    ///
    /// Every kubeconfig file is read by certrotate, not by kube-rs, and refused unless it
    /// is a regular file of at most 1 MiB, owned by this user or root and not writable by
    /// group or others: its `exec` plugins run as this user. Parse errors give a line and
    /// column, never the file's text. Each request is held to the default
    /// [`ClientLimits`].
    pub async fn connect(
        kubeconfig: Option<&std::path::Path>,
        context: Option<&str>,
    ) -> Result<Self, StoreError> {
        Self::connect_with(kubeconfig, context, ClientLimits::default()).await
    }

    /// As [`Self::connect`], each request held to `limits` (`--request-timeout`).
    pub async fn connect_with(
        kubeconfig: Option<&std::path::Path>,
        context: Option<&str>,
        limits: ClientLimits,
    ) -> Result<Self, StoreError> {
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let failure = |e: &(dyn std::error::Error + 'static)| {
            StoreError::Backend(Box::new(ApiFailure::new(e)))
        };
        // The files are read here, not by kube-rs: see `kubeconfig` for the checks.
        let sources = crate::kubeconfig::sources(kubeconfig);
        let (mut config, context) = if sources.is_empty() && context.is_none() {
            // No kubeconfig: the in-cluster service account, if this runs in a Pod. Its
            // address comes from the Service environment variables kubelet sets; without
            // them this is not a Pod, and kube's "failed to read an incluster environment
            // variable" would not say what is missing.
            let config = kube::Config::incluster().map_err(|e| {
                // kube's own enum, whose other variants are all failures of a real Pod.
                if let kube::config::InClusterError::ReadEnvironmentVariable(_) = e {
                    StoreError::Backend(Box::new(crate::kubeconfig::NoKubeconfig))
                } else {
                    failure(&e)
                }
            })?;
            (config, None)
        } else {
            let file = crate::kubeconfig::read_all(&sources)
                .map_err(|e| StoreError::Backend(Box::new(e)))?;
            let context = options.context.clone().or(file.current_context.clone());
            let config = kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| failure(&e))?;
            (config, context)
        };
        let endpoint = KubeEndpoint {
            context,
            server: server_url(&config.cluster_url),
        };
        // One bounded retry policy (this store's), not kube's 15 retries on top of it.
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        let client = crate::kube_io::bounded_client(config, limits)
            .map_err(|e| StoreError::Backend(Box::new(ApiFailure::new(&e))))?;
        Ok(Self {
            endpoint: Some(endpoint),
            ..Self::new(client)
        })
    }

    /// The API server and context this store was connected to by [`Self::connect`];
    /// `None` for a store made from a client ([`Self::new`]).
    pub fn endpoint(&self) -> Option<&KubeEndpoint> {
        self.endpoint.as_ref()
    }

    /// Whether writes use the API server's dry run ([`Self::with_dry_run`]).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The client (to record Events with, or share with an operator).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Use the API server's dry run: every write is validated, none is persisted.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Retries of transient failures (default 3) and the first backoff (default 200 ms,
    /// doubling, each wait drawn between it and twice it). The retries are a budget per
    /// step of a run ([`observe`](crate::observe), or one write call of the engine) shared
    /// by all its requests; a call made outside a run has a budget of its own.
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            dry_run: self.dry_run,
            ..PatchParams::default()
        }
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            dry_run: self.dry_run,
        }
    }

    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.backoff)
            .with_max_delay(MAX_WAIT)
            .with_jitter()
            .without_max_times()
            .build();
        let mut retries = 0;
        loop {
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(asked) = transient_delay(&e) else {
                return Err(classify(e));
            };
            if !crate::budget::take_retry(self.retries, retries) {
                return Err(StoreError::GaveUp {
                    attempts: retries + 1,
                    timed_out: timed_out(&e),
                    source: Box::new(ApiFailure::new(&e)),
                });
            }
            retries += 1;
            // The server's Retry-After is a floor; the jitter spreads clients that failed
            // together so they do not return together.
            let wait = backoff
                .next()
                .unwrap_or(MAX_WAIT)
                .max(asked.unwrap_or_default())
                .min(MAX_WAIT);
            tracing::warn!(
                attempt = retries,
                wait_ms = wait.as_millis() as u64,
                "transient API error: {}; retrying",
                ApiFailure::new(&e)
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn get_opt<K>(&self, api: &Api<K>, name: &str) -> Result<Option<K>, StoreError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let read = self.retry(|| api.get_opt(name)).await;
        match read {
            Err(e) if undecodable(&e) => Err(self.locate_undecodable(api, name).await.unwrap_or(e)),
            other => other,
        }
    }

    /// [`Self::get_opt`] for an object whose type is known only at run time (its answer
    /// is kept as JSON, so it cannot fail to deserialize but for its metadata).
    async fn get_opt_dynamic(
        &self,
        api: &Api<kube::api::DynamicObject>,
        name: &str,
    ) -> Result<Option<kube::api::DynamicObject>, StoreError> {
        self.retry(|| api.get_opt(name)).await
    }

    /// Reads `name` again as text and names the field of the answer that does not
    /// deserialize as `K` (`data.tls.key`, `type`), never its value: kube's own error says
    /// only where in the text it broke. `None` if the second answer parses (or cannot be
    /// read): the first error stands.
    async fn locate_undecodable<K>(&self, api: &Api<K>, name: &str) -> Option<StoreError>
    where
        K: Resource + DeserializeOwned,
        K::DynamicType: Default,
    {
        let url = format!("{}/{name}", api.resource_url());
        let request = http::Request::get(url).body(Vec::new()).ok()?;
        let text = self.client.request_text(request).await.ok()?;
        let mut json = serde_json::Deserializer::from_str(&text);
        let e = serde_path_to_error::deserialize::<_, K>(&mut json).err()?;
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        let what = match e.inner().classify() {
            serde_json::error::Category::Data => "holds a value of the wrong type or shape",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not JSON",
            serde_json::error::Category::Io => "could not be read",
        };
        Some(StoreError::Backend(Box::new(ApiFailure::plain(&format!(
            "the API server's answer for {kind} {name} {what} at field `{}` (its content is \
             withheld: it may hold a private key)",
            e.path()
        )))))
    }

    async fn patch_merge<K>(
        &self,
        api: &Api<K>,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<K, StoreError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let params = self.patch_params();
        let patch = Patch::Merge(body);
        self.retry(|| api.patch(name, &params, &patch)).await
    }
}

fn secret_to_observed(s: Secret) -> ObservedSecret {
    let data = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .chain(
            // stringData is write-only on a real server, but a fake may echo it back.
            s.string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes())),
        )
        .collect();
    let mut out = ObservedSecret::new(
        s.type_.unwrap_or_else(|| "Opaque".into()),
        data,
        s.metadata.resource_version.unwrap_or_default(),
    );
    out.labels = s.metadata.labels.unwrap_or_default();
    out.annotations = s.metadata.annotations.unwrap_or_default();
    out
}

/// The merge patch of a Secret update, with its `resourceVersion` precondition.
pub(crate) fn secret_patch(expected_version: &str, update: &SecretUpdate) -> serde_json::Value {
    let data: BTreeMap<&String, Option<ByteString>> = update
        .data
        .iter()
        .map(|(k, v)| (k, v.clone().map(ByteString)))
        .collect();
    let mut metadata = json!({ "resourceVersion": expected_version });
    if !update.labels.is_empty() {
        metadata["labels"] = json!(update.labels);
    }
    if !update.annotations.is_empty() {
        metadata["annotations"] = json!(update.annotations);
    }
    let mut patch = json!({ "metadata": metadata });
    if !data.is_empty() {
        patch["data"] = json!(data);
    }
    patch
}

/// The merge patch `kubectl rollout restart` sends, with certrotate's annotation beside it.
pub(crate) fn restart_patch(annotations: &BTreeMap<String, String>) -> serde_json::Value {
    json!({ "spec": { "template": { "metadata": { "annotations": annotations } } } })
}

impl SecretStore for KubeStore {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
        Ok(self
            .get_opt(&api, &secret.name)
            .await?
            .map(secret_to_observed))
    }

    /// One GET per Secret, by name, never a LIST: the Role grants `get` on the profile's
    /// Secrets by name only, because `list` cannot be limited by name and would hand the
    /// ServiceAccount every Secret of the namespace (service-account tokens included). A
    /// LIST by label also left a refused request (403) in the audit log of every run.
    ///
    /// The first failure ends the reads (an observation fails on it anyway); the Secrets
    /// not read then carry an error saying so.
    async fn read_secrets(
        &self,
        secrets: &[ObjectRef],
        _labels: &BTreeMap<String, String>,
    ) -> Vec<Result<Option<ObservedSecret>, StoreError>> {
        let mut out = Vec::with_capacity(secrets.len());
        let mut stopped = false;
        for secret in secrets {
            if stopped {
                out.push(Err(StoreError::Backend(Box::new(ApiFailure::plain(
                    "not read: an earlier read of this observation failed",
                )))));
                continue;
            }
            let read = self.read_secret(secret).await;
            stopped = read.is_err();
            out.push(read);
        }
        out
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.name.clone()),
                namespace: Some(secret.namespace.clone()),
                labels: Some(new.labels.clone()).filter(|l| !l.is_empty()),
                annotations: Some(new.annotations.clone()).filter(|a| !a.is_empty()),
                ..ObjectMeta::default()
            },
            type_: Some(new.secret_type.clone()),
            data: Some(
                new.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                    .collect(),
            ),
            ..Secret::default()
        };
        let params = self.post_params();
        let created = match self.retry(|| api.create(&params, &object)).await {
            Ok(created) => created,
            // A create answered 404 found no collection to create in: the namespace is
            // missing. That is not a stale observation (re-planning would loop on it).
            Err(StoreError::NotFound) => {
                return Err(StoreError::Backend(
                    format!("NotFound: namespaces \"{}\" not found", secret.namespace).into(),
                ));
            }
            Err(e) => return Err(e),
        };
        Ok(created.metadata.resource_version.unwrap_or_default())
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
        let patched = self
            .patch_merge(&api, &secret.name, &secret_patch(expected_version, update))
            .await?;
        Ok(patched.metadata.resource_version.unwrap_or_default())
    }
}

impl Store for KubeStore {
    fn describe(&self) -> String {
        let mut s = match &self.endpoint {
            Some(endpoint) => format!("kubernetes {endpoint}"),
            None => "kubernetes".to_owned(),
        };
        if self.dry_run {
            s.push_str(" (server-side dry run)");
        }
        s
    }
}

/// A cluster URL as a kubeconfig spells it: `https://127.0.0.1:6443`, without the `/`
/// an empty path is shown as.
fn server_url(uri: &http::Uri) -> String {
    let text = uri.to_string();
    match text.strip_suffix('/') {
        Some(trimmed) if uri.path() == "/" && uri.query().is_none() => trimmed.to_owned(),
        _ => text,
    }
}
