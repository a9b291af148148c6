//! What tests do on a running control plane: server-side apply of manifests (Envoy
//! Gateway's chart among them), waiting for a rollout, fresh namespaces, ServiceAccount
//! tokens and the kubeconfigs that use them.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery;

use crate::{
    ControlPlane, Deadline, ENVOY_GATEWAY_WEBHOOK, Error, NODE_NAME, certs, io_err, kube_err,
};

impl ControlPlane {
    /// Server-side applies `objects` as `kubectl apply --server-side` does (field manager
    /// `certrotate-e2e`, conflicts forced), in order; each kind is found through discovery,
    /// and a namespaced object without a namespace goes to `namespace`. Returns them as the
    /// API server answered.
    pub async fn apply(
        &self,
        objects: &[serde_json::Value],
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>, Error> {
        let client = self.client()?;
        let mut applied = Vec::with_capacity(objects.len());
        for value in objects {
            let object: DynamicObject =
                serde_json::from_value(value.clone()).map_err(|e| Error::Manifest {
                    what: "an object to apply".into(),
                    message: e.to_string(),
                })?;
            let types = object.types.clone().unwrap_or_default();
            let name = object.metadata.name.clone().unwrap_or_default();
            let what = format!("applying {} {name}", types.kind);
            let gvk = GroupVersionKind::try_from(&types).map_err(|e| Error::Manifest {
                what: what.clone(),
                message: e.to_string(),
            })?;
            let (resource, caps) = discovery::pinned_kind(&client, &gvk)
                .await
                .map_err(kube_err(format!("{what}: discovery")))?;
            let api: Api<DynamicObject> = if caps.scope == discovery::Scope::Namespaced {
                let ns = object
                    .metadata
                    .namespace
                    .as_deref()
                    .or(namespace)
                    .unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &resource)
            } else {
                Api::all_with(client.clone(), &resource)
            };
            let params = PatchParams::apply("certrotate-e2e").force();
            applied.push(
                api.patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map_err(kube_err(what))?,
            );
        }
        Ok(applied)
    }

    /// Installs what certrotate touches of Envoy Gateway, from its chart as `build.sh`
    /// rendered it, into `envoy-gateway-system`: the controller's ServiceAccount,
    /// ConfigMap, Service and Deployment, the topology-injector webhook configuration as
    /// shipped (no `caBundle`), and the rate-limit Deployment of upstream's golden file
    /// (the controller makes it at run time), owned by the controller's Deployment. Pods
    /// are pinned to the KWOK node (no scheduler). `Ok(false)` where the chart is not
    /// rendered.
    pub async fn install_envoy_gateway(&self) -> Result<bool, Error> {
        const NS: &str = "envoy-gateway-system";
        let dir = self.binaries().envoy_gateway();
        if !dir.join("install.yaml").is_file() {
            return Ok(false);
        }
        let docs = yaml_documents(&dir.join("install.yaml"))?;
        let pick = |kind: &str, name: &str| -> Result<serde_json::Value, Error> {
            docs.iter()
                .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
                .cloned()
                .ok_or_else(|| Error::Manifest {
                    what: "Envoy Gateway's chart".into(),
                    message: format!("no {kind} {name}"),
                })
        };
        let mut controller = pick("Deployment", "envoy-gateway")?;
        controller["spec"]["template"]["spec"]["nodeName"] = NODE_NAME.into();
        let namespace = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NS },
        });
        let applied = self
            .apply(
                &[
                    namespace,
                    pick("ServiceAccount", "envoy-gateway")?,
                    pick("ConfigMap", "envoy-gateway-config")?,
                    pick("Service", "envoy-gateway")?,
                    pick("MutatingWebhookConfiguration", ENVOY_GATEWAY_WEBHOOK)?,
                    controller,
                ],
                Some(NS),
            )
            .await?;
        let owner_uid = applied
            .last()
            .and_then(|d| d.metadata.uid.clone())
            .unwrap_or_default();
        // The rate-limit Deployment as the controller makes it: owned by the controller's
        // Deployment (the golden file's placeholder uid would have the garbage collector
        // delete it), with its own ServiceAccount.
        let mut ratelimit = yaml_documents(&dir.join("ratelimit-deployment.yaml"))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Manifest {
                what: "ratelimit-deployment.yaml".into(),
                message: "empty".into(),
            })?;
        ratelimit["metadata"]["ownerReferences"][0]["uid"] = owner_uid.into();
        ratelimit["spec"]["template"]["spec"]["nodeName"] = NODE_NAME.into();
        let sa = serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "envoy-ratelimit" },
        });
        self.apply(&[sa, ratelimit], Some(NS)).await?;
        Ok(true)
    }

    /// Waits (at most `bound`) until Deployment `namespace/name` is rolled out: its
    /// controller saw the newest generation and every replica is updated and ready.
    pub async fn wait_rolled_out(
        &self,
        namespace: &str,
        name: &str,
        bound: Duration,
    ) -> Result<(), Error> {
        let deployments =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(self.client()?, namespace);
        let deadline = Deadline::new(format!("{namespace}/{name} to be rolled out"), bound);
        loop {
            let d = deployments
                .get(name)
                .await
                .map_err(kube_err(format!("reading Deployment {namespace}/{name}")))?;
            let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            if status.observed_generation == d.metadata.generation
                && status.ready_replicas == Some(wanted)
                && status.updated_replicas == Some(wanted)
                && status.replicas == Some(wanted)
            {
                return Ok(());
            }
            deadline.tick().await?;
        }
    }

    /// Creates a fresh namespace named `PREFIX-N` and waits (bounded) until its `default`
    /// ServiceAccount exists, so pods can be created in it.
    pub async fn namespace(&self, prefix: &str) -> Result<String, Error> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let client = self.client()?;
        let ns: Namespace = json_object(serde_json::json!({
            "metadata": { "name": name }
        }));
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(kube_err(format!("creating namespace {name}")))?;
        let sas = Api::<ServiceAccount>::namespaced(client, &name);
        let deadline = Deadline::new(
            format!("the default ServiceAccount of namespace {name}"),
            Duration::from_secs(60),
        );
        while sas.get_opt("default").await.ok().flatten().is_none() {
            deadline.tick().await?;
        }
        Ok(name)
    }

    /// A token for ServiceAccount `namespace/name` (created if missing), through the
    /// TokenRequest API, valid for an hour.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
        let sas = Api::<ServiceAccount>::namespaced(self.client()?, namespace);
        if sas
            .get_opt(name)
            .await
            .map_err(kube_err(format!(
                "reading ServiceAccount {namespace}/{name}"
            )))?
            .is_none()
        {
            let sa: ServiceAccount =
                json_object(serde_json::json!({ "metadata": { "name": name } }));
            sas.create(&PostParams::default(), &sa)
                .await
                .map_err(kube_err(format!(
                    "creating ServiceAccount {namespace}/{name}"
                )))?;
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = sas
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(kube_err(format!(
                "requesting a token for {namespace}/{name}"
            )))?;
        answer
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Kubeconfig {
                path: format!("TokenRequest for {namespace}/{name}"),
                message: "the answer has no status".into(),
            })
    }

    /// Writes a kubeconfig that authenticates with `token` (and trusts the API server's CA)
    /// to `path`: what a Job's ServiceAccount gets, for running the CLI as it.
    pub fn write_token_kubeconfig(
        &self,
        token: &str,
        namespace: &str,
        path: &Path,
    ) -> Result<(), Error> {
        certs::write_kubeconfig(
            path,
            &self.info.server,
            &self.info.dir.join("ca.crt"),
            certs::Credentials::Token(token),
            Some(namespace),
        )
    }
}

/// A typed object from JSON written in this file (the shapes are fixed, so a failure is a
/// bug here).
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    #[allow(clippy::expect_used)]
    serde_json::from_value(value).expect("the harness's object literals match their types")
}

/// The documents of a multi-document YAML file (empty ones, such as Helm's comment-only
/// documents, skipped).
pub fn yaml_documents(path: &Path) -> Result<Vec<serde_json::Value>, Error> {
    let text =
        std::fs::read_to_string(path).map_err(io_err(format!("reading {}", path.display())))?;
    parse_yaml_documents(&text, path)
}

/// The documents of `text`, read from `path` (named in errors); empty ones skipped.
pub(crate) fn parse_yaml_documents(
    text: &str,
    path: &Path,
) -> Result<Vec<serde_json::Value>, Error> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| Error::Manifest {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}
