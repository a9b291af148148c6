//! Webhook configurations, read as raw JSON (no Rust type drops a field it does not know)
//! and changed with an RFC 6902 patch of their `caBundle`s alone.

use certrotate_core::plan::{ObservedWebhook, WebhookRef};
use certrotate_core::profile::WebhookKind;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, ApiResource, DynamicObject, Patch};
use serde_json::{Value, json};

use super::{KubeStore, api_status};
use crate::error::StoreError;
use crate::store::WebhookStore;

/// The API resource of a webhook configuration kind, for reading it as raw JSON.
fn webhook_resource(kind: WebhookKind) -> (ApiResource, &'static str) {
    match kind {
        WebhookKind::Mutating => (
            ApiResource::erase::<MutatingWebhookConfiguration>(&()),
            "MutatingWebhookConfiguration",
        ),
        WebhookKind::Validating => (
            ApiResource::erase::<ValidatingWebhookConfiguration>(&()),
            "ValidatingWebhookConfiguration",
        ),
    }
}

/// A field of an object that is not what certrotate reads: the kind, the name and the
/// field, never its value.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: {field} {problem}")]
struct FieldError {
    kind: &'static str,
    name: String,
    field: String,
    problem: &'static str,
}

/// The webhooks of a configuration read as raw JSON, each with its name and `caBundle`
/// (empty if it has none).
struct RawWebhooks<'a> {
    kind: &'static str,
    name: &'a str,
    hooks: &'a [Value],
}

impl<'a> RawWebhooks<'a> {
    fn of(
        kind: &'static str,
        name: &'a str,
        object: &'a DynamicObject,
    ) -> Result<Self, FieldError> {
        let hooks = match object.data.get("webhooks") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(hooks)) => hooks.as_slice(),
            Some(_) => return Err(Self::error(kind, name, "webhooks".into(), "is not a list")),
        };
        Ok(Self { kind, name, hooks })
    }

    fn error(kind: &'static str, name: &str, field: String, problem: &'static str) -> FieldError {
        FieldError {
            kind,
            name: name.to_owned(),
            field,
            problem,
        }
    }

    /// Webhook `i`'s `caBundle` as bytes; empty when absent.
    fn ca_bundle(&self, i: usize) -> Result<Vec<u8>, FieldError> {
        let field = || format!("webhooks[{i}].clientConfig.caBundle");
        match self.hooks[i].pointer("/clientConfig/caBundle") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v @ Value::String(_)) => serde_json::from_value::<ByteString>(v.clone())
                .map(|b| b.0)
                .map_err(|_| Self::error(self.kind, self.name, field(), "is not base64")),
            Some(_) => Err(Self::error(
                self.kind,
                self.name,
                field(),
                "is not a string",
            )),
        }
    }

    /// Webhook `i`'s name (required by the API server).
    fn hook_name(&self, i: usize) -> Result<&'a str, FieldError> {
        self.hooks[i]
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Self::error(
                    self.kind,
                    self.name,
                    format!("webhooks[{i}].name"),
                    "is not a string",
                )
            })
    }
}

/// The RFC 6902 patch that sets each webhook's `caBundle` to `ca_bundles[i]` in the
/// configuration read as `current` at `version`: `test`s of the version and of each
/// webhook's name (the API server applies the patch to the object as it is then: if it
/// changed, a `test` fails and nothing is written), then a `replace` of each `caBundle`
/// that changes (`add` where it is absent). Nothing else is named, so nothing else
/// changes. `None`: nothing to change.
fn webhook_patch(
    hooks: &RawWebhooks<'_>,
    version: &str,
    ca_bundles: &[Vec<u8>],
) -> Result<Option<json_patch::Patch>, FieldError> {
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, PatchOperation, ReplaceOperation, TestOperation};

    let pointer = |tokens: &[&str]| PointerBuf::from_tokens(tokens.iter().copied());
    let mut tests = vec![PatchOperation::Test(TestOperation {
        path: pointer(&["metadata", "resourceVersion"]),
        value: json!(version),
    })];
    let mut changes = Vec::new();
    for (i, bundle) in ca_bundles.iter().enumerate() {
        let index = i.to_string();
        tests.push(PatchOperation::Test(TestOperation {
            path: pointer(&["webhooks", &index, "name"]),
            value: json!(hooks.hook_name(i)?),
        }));
        if hooks.ca_bundle(i)? == *bundle {
            continue;
        }
        let value = serde_json::to_value(ByteString(bundle.clone())).map_err(|_| {
            RawWebhooks::error(
                hooks.kind,
                hooks.name,
                format!("webhooks[{i}].clientConfig.caBundle"),
                "cannot be encoded",
            )
        })?;
        let config = &hooks.hooks[i].get("clientConfig");
        changes.push(match config {
            Some(Value::Object(c)) if c.get("caBundle").is_some_and(|v| !v.is_null()) => {
                PatchOperation::Replace(ReplaceOperation {
                    path: pointer(&["webhooks", &index, "clientConfig", "caBundle"]),
                    value,
                })
            }
            Some(Value::Object(_)) => PatchOperation::Add(AddOperation {
                path: pointer(&["webhooks", &index, "clientConfig", "caBundle"]),
                value,
            }),
            _ => PatchOperation::Add(AddOperation {
                path: pointer(&["webhooks", &index, "clientConfig"]),
                value: json!({ "caBundle": value }),
            }),
        });
    }
    if changes.is_empty() {
        return Ok(None);
    }
    tests.extend(changes);
    Ok(Some(json_patch::Patch(tests)))
}

impl KubeStore {
    fn webhook_api(&self, webhook: &WebhookRef) -> (Api<DynamicObject>, &'static str) {
        let (resource, kind) = webhook_resource(webhook.kind);
        (Api::all_with(self.client.clone(), &resource), kind)
    }
}

fn field_error(e: FieldError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl WebhookStore for KubeStore {
    /// Read as raw JSON: only the `caBundle`s and the version are taken from it.
    async fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> Result<Option<ObservedWebhook>, StoreError> {
        let (api, kind) = self.webhook_api(webhook);
        let Some(object) = self.get_opt_dynamic(&api, &webhook.name).await? else {
            return Ok(None);
        };
        let hooks = RawWebhooks::of(kind, &webhook.name, &object).map_err(field_error)?;
        let bundles = (0..hooks.hooks.len())
            .map(|i| hooks.ca_bundle(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(field_error)?;
        Ok(Some(ObservedWebhook::new(
            bundles,
            object.metadata.resource_version.clone().unwrap_or_default(),
        )))
    }

    /// A GET (as raw JSON) and one JSON patch of the changed `caBundle`s, tested against
    /// the version and the webhooks' names (`webhook_patch`). A failed `test` (the
    /// API server's 422) is a conflict when the object changed since `expected_version`.
    async fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        let (api, kind) = self.webhook_api(webhook);
        let Some(current) = self.get_opt_dynamic(&api, &webhook.name).await? else {
            return Err(StoreError::NotFound);
        };
        if current.metadata.resource_version.as_deref() != Some(expected_version) {
            return Err(StoreError::Conflict);
        }
        let hooks = RawWebhooks::of(kind, &webhook.name, &current).map_err(field_error)?;
        if hooks.hooks.len() != ca_bundles.len() {
            return Err(StoreError::Conflict);
        }
        let Some(patch) =
            webhook_patch(&hooks, expected_version, ca_bundles).map_err(field_error)?
        else {
            return Ok(expected_version.to_owned());
        };
        let params = self.patch_params();
        let patch = Patch::<()>::Json(patch);
        match self
            .retry(|| api.patch(&webhook.name, &params, &patch))
            .await
        {
            Ok(patched) => Ok(patched.metadata.resource_version.unwrap_or_default()),
            // 422 is a failed `test` or a change the API server refused: which one, the
            // object as it is now says (its status text is not a contract).
            Err(e) if api_status(&e) == Some(422) => {
                let now = self.get_opt_dynamic(&api, &webhook.name).await?;
                let changed = now.as_ref().is_none_or(|o| {
                    o.metadata.resource_version.as_deref() != Some(expected_version)
                });
                if changed {
                    Err(StoreError::Conflict)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}
