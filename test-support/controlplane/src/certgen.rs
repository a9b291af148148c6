//! Envoy Gateway's own `certgen`, run against the control plane as its Helm chart's
//! pre-install hook runs it: the upstream behaviour certrotate is compared with and adopts.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::{ControlPlane, Error, io_err, skip_or_fail};

/// The namespace `build.sh` renders Envoy Gateway's chart for.
const RENDERED_NAMESPACE: &str = "envoy-gateway-system";

/// How long one `certgen` run may take.
const CERTGEN_TIMEOUT: Duration = Duration::from_secs(120);

/// What one `certgen` run did.
#[derive(Debug)]
pub struct CertgenRun {
    /// Whether it exited 0.
    pub success: bool,
    /// Its standard output and error, in that order.
    pub output: String,
}

impl ControlPlane {
    /// Upstream's `envoy-gateway` binary, or `None` after one line saying why the tests that
    /// need it did not run (a panic under `CERTROTATE_REQUIRE_CONTROLPLANE=1`).
    pub fn envoy_gateway_binary(&self) -> Option<PathBuf> {
        let bin = self.binaries().envoy_gateway_controller();
        if bin.is_file() {
            Some(bin)
        } else {
            skip_or_fail(
                "the tests against Envoy Gateway's certgen",
                &format!("{} is not built", bin.display()),
            );
            None
        }
    }

    /// Every object of Envoy Gateway's chart (hooks and CRDs included) as `helm template
    /// --namespace NAMESPACE` renders it. `build.sh` rendered it once for
    /// `envoy-gateway-system`; the chart writes the namespace only through
    /// `.Release.Namespace`, so the rendering for another one is that text replaced.
    pub fn envoy_gateway_chart(&self, namespace: &str) -> Result<Vec<serde_json::Value>, Error> {
        let path = self.binaries().envoy_gateway().join("install.yaml");
        let text = std::fs::read_to_string(&path)
            .map_err(io_err(format!("reading {}", path.display())))?;
        let text = text.replace(RENDERED_NAMESPACE, namespace);
        crate::cluster::parse_yaml_documents(&text, &path)
    }

    /// The objects of the chart's `certgen` hook for `namespace`: its ServiceAccount,
    /// ClusterRole and binding (the topology-injector webhook), Role and binding (Secrets),
    /// and the topology-injector MutatingWebhookConfiguration as shipped (no `caBundle`),
    /// which the chart also creates as a pre-install/pre-upgrade hook.
    pub fn certgen_hook_objects(&self, namespace: &str) -> Result<Vec<serde_json::Value>, Error> {
        let chart = self.envoy_gateway_chart(namespace)?;
        let hook = |d: &serde_json::Value| {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let kind = d["kind"].as_str().unwrap_or_default();
            (name.starts_with("eg-gateway-helm-certgen") && kind != "Job")
                || (kind == "MutatingWebhookConfiguration"
                    && name.starts_with("envoy-gateway-topology-injector."))
        };
        let objects: Vec<_> = chart.into_iter().filter(hook).collect();
        if objects.len() != 6 {
            return Err(Error::Manifest {
                what: "Envoy Gateway's chart".into(),
                message: format!(
                    "expected the certgen hook's 5 RBAC objects and the webhook configuration, found {}",
                    objects.len()
                ),
            });
        }
        Ok(objects)
    }

    /// Runs `envoy-gateway certgen ARGS` as the chart's pre-install/pre-upgrade hook does:
    /// the hook's objects applied first ([`ControlPlane::certgen_hook_objects`], so the
    /// webhook configuration is re-created with an empty `caBundle` as `helm upgrade`
    /// does), then upstream's binary run as the hook's ServiceAccount (a token of its own,
    /// its RBAC only), with the Job's environment (`ENVOY_GATEWAY_NAMESPACE`,
    /// `KUBERNETES_CLUSTER_DOMAIN=cluster.local`). Bounded; killed on timeout.
    pub async fn run_certgen_hook(
        &self,
        namespace: &str,
        args: &[&str],
    ) -> Result<CertgenRun, Error> {
        let objects = self.certgen_hook_objects(namespace)?;
        // Re-created as Helm does with a hook: deleted, then created (an apply would keep a
        // caBundle set since).
        let client = self.client()?;
        let webhooks: kube::Api<
            k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
        > = kube::Api::all(client);
        let webhook_name = format!("envoy-gateway-topology-injector.{namespace}");
        match webhooks
            .delete(&webhook_name, &kube::api::DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(crate::kube_err(format!("deleting {webhook_name}"))(e)),
        }
        self.apply(&objects, Some(namespace)).await?;
        let token = self
            .service_account_token(namespace, "eg-gateway-helm-certgen")
            .await?;
        let home = tempfile::tempdir().map_err(io_err("making a HOME for certgen"))?;
        let kubeconfig = home.path().join("kubeconfig");
        self.write_token_kubeconfig(&token, namespace, &kubeconfig)?;
        self.run_envoy_gateway(
            &[&["certgen"], args].concat(),
            &[
                ("KUBECONFIG", kubeconfig.as_os_str()),
                ("ENVOY_GATEWAY_NAMESPACE", namespace.as_ref()),
                ("KUBERNETES_CLUSTER_DOMAIN", "cluster.local".as_ref()),
                ("HOME", home.path().as_os_str()),
            ],
        )
        .await
    }

    /// Runs upstream's `envoy-gateway ARGS` with only `env` (and `PATH`) in its environment,
    /// bounded by a timeout (killed then).
    pub async fn run_envoy_gateway(
        &self,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<CertgenRun, Error> {
        let bin = self.binaries().envoy_gateway_controller();
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let what = format!("running {} {}", bin.display(), args.join(" "));
        let output: Output = tokio::time::timeout(CERTGEN_TIMEOUT, cmd.output())
            .await
            .map_err(|_| Error::Timeout {
                what: what.clone(),
                after: CERTGEN_TIMEOUT,
            })?
            .map_err(io_err(what))?;
        Ok(CertgenRun {
            success: output.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}
