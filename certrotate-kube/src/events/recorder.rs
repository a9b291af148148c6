//! The Kubernetes Events sink: [`KubeEvents`] (an [`EventSink`]) and the
//! [`EventRecorder`] that publishes [`Notice`]s with kube-runtime's `Recorder`.

use certrotate_core::plan::ObjectRef;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use certrotate_core::Profile;
use certrotate_core::plan::ProfileObjects;

use super::{Notice, NoticeStream, REPORTING_CONTROLLER, Severity, error_notice};
use crate::engine::{Event, EventSink, Recording, RunEvents, RunReport};
use crate::error::Error;

/// The [`EventSink`] of Kubernetes Events: each run's events become `events.k8s.io/v1`
/// Events on its profile's CA Secret ([`NoticeStream`] decides which, and when;
/// [`EventRecorder`] publishes them), reported by `certrotate` from `instance`.
///
/// A failure to publish is logged (a warning) and never fails the run: the rotation's
/// own outcome is what matters. Needs the RBAC of [`EventRecorder`].
#[derive(Clone)]
pub struct KubeEvents {
    client: Client,
    instance: Option<String>,
}

impl std::fmt::Debug for KubeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEvents")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl KubeEvents {
    /// Events reported from `instance` (the Pod's name in a Job or an operator, the
    /// host name elsewhere; `None`: `certrotate`).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        Self { client, instance }
    }
}

impl EventSink for KubeEvents {
    fn start(&self, profile: &Profile) -> Box<dyn RunEvents> {
        Box::new(KubeRun {
            recorder: EventRecorder::new(
                self.client.clone(),
                ProfileObjects::of(profile).ca_secret,
                self.instance.clone(),
            ),
            stream: NoticeStream::default(),
        })
    }
}

/// One run's Events.
struct KubeRun {
    recorder: EventRecorder,
    stream: NoticeStream,
}

impl KubeRun {
    async fn publish(&self, notices: Vec<Notice>) {
        if let Err(e) = self.recorder.publish(&notices).await {
            // The API server's message is outside text: control characters escaped.
            tracing::warn!(
                "recording Kubernetes Events on the CA Secret {}: {}",
                self.recorder.ca_secret,
                certrotate_core::error_chain(&e).escape_debug()
            );
        }
    }
}

impl RunEvents for KubeRun {
    fn record<'a>(&'a mut self, event: &'a Event) -> Recording<'a> {
        let notices = self.stream.push(event);
        Box::pin(self.publish(notices))
    }

    fn finish<'a>(&'a mut self, outcome: Result<&'a RunReport, &'a Error>) -> Recording<'a> {
        let notices = match outcome {
            Ok(_) => self.stream.finish(),
            Err(e) => vec![error_notice(e)],
        };
        Box::pin(self.publish(notices))
    }
}

/// Publishes [`Notice`]s as `events.k8s.io/v1` Events regarding the CA Secret (or
/// the Secret a notice names instead, [`Notice::regarding`]).
///
/// Needs `create` and `patch` on `events.k8s.io` `events` in the Secret's namespace
/// (a repeated Event is a patch of its series), and `get` on the Secret (its UID,
/// which `kubectl describe` matches Events by).
pub struct EventRecorder {
    client: Client,
    recorder: Recorder,
    ca_secret: ObjectRef,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("ca_secret", &self.ca_secret)
            .finish_non_exhaustive()
    }
}

impl EventRecorder {
    /// A recorder for Events on `ca_secret`, reported by `certrotate` from `instance`
    /// (the Pod's name in a Job, the host name elsewhere; `None`: `certrotate`).
    pub fn new(client: Client, ca_secret: ObjectRef, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            ca_secret,
        }
    }

    /// Publishes `notices` in order; stops at the first one the API server refuses.
    pub async fn publish(&self, notices: &[Notice]) -> Result<(), kube::Error> {
        if notices.is_empty() {
            return Ok(());
        }
        let ca_secret = self.regarding(&self.ca_secret).await?;
        for notice in notices {
            let regarding = match &notice.regarding {
                Some(other) if *other != self.ca_secret => &self.regarding(other).await?,
                Some(_) | None => &ca_secret,
            };
            let event = KubeEvent {
                type_: match notice.severity {
                    Severity::Normal => EventType::Normal,
                    Severity::Warning => EventType::Warning,
                },
                reason: notice.reason.into(),
                note: Some(notice.note.clone()),
                action: notice.action.into(),
                secondary: None,
            };
            self.recorder.publish(&event, regarding).await?;
        }
        Ok(())
    }

    /// `secret` (the CA Secret, or the one a [`Notice::regarding`] names) as an Event's
    /// `regarding`, with its UID when it exists (`kubectl describe` selects Events by
    /// it); by name alone before it is created.
    async fn regarding(&self, secret: &ObjectRef) -> Result<ObjectReference, kube::Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
        Ok(match api.get_opt(&secret.name).await? {
            Some(secret) => {
                let mut reference = secret.object_ref(&());
                // The Event is about the Secret, not one version of it.
                reference.resource_version = None;
                reference
            }
            None => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
                namespace: Some(secret.namespace.clone()),
                name: Some(secret.name.clone()),
                ..ObjectReference::default()
            },
        })
    }
}
