//! Applying a plan: its steps in order, consecutive Secret writes as one batch, each
//! write's event after the write, and the carried observation kept in step with what was
//! written.

use std::collections::BTreeMap;
use std::sync::Arc;

use certrotate_core::RotationPlan;
use certrotate_core::plan::wire::{ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTED_FOR};
use certrotate_core::plan::{
    Note, NoteReason, Observed, ObservedSecret, SecretAction, SecretChange, Step,
};

use super::sink::Record;
use super::{Engine, Event};
use crate::clock::Clock;
use crate::error::{Error, StoreError};
use crate::store::{NewSecret, SecretUpdate, SecretWrite, Store};

impl<S: Store, C: Clock> Engine<S, C> {
    /// Applies the steps of a plan, in order. Stops at the first failure: the persisted
    /// phase is written last, so a rerun repeats the step. Each write is applied to
    /// `carried` too (the observation the plan was made from), or clears it where the
    /// result cannot be known without reading (a restart starts a rollout). Consecutive
    /// Secret steps go to the store as one batch ([`SecretStore::write_secrets`], which
    /// keeps their order across a crash).
    ///
    /// [`SecretStore::write_secrets`]: crate::SecretStore::write_secrets
    pub(super) async fn apply_steps(
        &self,
        plan: &RotationPlan,
        record: &mut Record,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        let mut steps = plan.steps.iter().peekable();
        while let Some(step) = steps.next() {
            match step {
                Step::Secret(change) => {
                    let mut changes = vec![change];
                    while let Some(Step::Secret(next)) = steps.peek() {
                        changes.push(next);
                        steps.next();
                    }
                    self.apply_secrets(&changes, record, carried).await?;
                }
                Step::Webhook(change) => {
                    let store = Arc::clone(&self.store);
                    let (webhook, version, bundles) = (
                        change.webhook.clone(),
                        change.expected_version.clone(),
                        change.ca_bundles.clone(),
                    );
                    let version = self
                        .store_call(async move {
                            store.update_webhook(&webhook, &version, &bundles).await
                        })
                        .await?
                        .map_err(|source| Error::UpdateWebhook {
                            webhook: change.webhook.clone(),
                            source,
                        })?;
                    match carried
                        .as_mut()
                        .and_then(|o| o.webhooks.get_mut(&change.webhook))
                    {
                        Some(observed) => {
                            observed.ca_bundles = change.ca_bundles.clone();
                            observed.version = version;
                        }
                        None => *carried = None,
                    }
                    record.report.writes += 1;
                    record
                        .emit(Event::WebhookUpdated {
                            webhook: change.webhook.clone(),
                            reason: change.reason,
                        })
                        .await;
                }
                Step::Restart(restart) => {
                    let annotations = BTreeMap::from([
                        (
                            ANNOTATION_RESTARTED_AT.to_owned(),
                            restart.restarted_at.clone(),
                        ),
                        (ANNOTATION_RESTARTED_FOR.to_owned(), restart.token.clone()),
                    ]);
                    // Its rollout status changes: the next round reads it.
                    *carried = None;
                    let store = Arc::clone(&self.store);
                    let workload = restart.workload.clone();
                    let result = self
                        .store_call(
                            async move { store.restart_workload(&workload, &annotations).await },
                        )
                        .await?;
                    match result {
                        Ok(()) => {
                            record.report.writes += 1;
                            record
                                .emit(Event::WorkloadRestarted {
                                    workload: restart.workload.clone(),
                                    reason: restart.reason,
                                })
                                .await;
                        }
                        // Deleted since it was observed: nothing to restart any more.
                        Err(StoreError::NotFound) => {
                            record
                                .emit(Event::Note(Note::new(
                                    restart.workload.clone(),
                                    NoteReason::Absent,
                                )))
                                .await
                        }
                        Err(StoreError::NotApplicable(_)) => {
                            record
                                .emit(Event::Note(Note::new(
                                    restart.workload.clone(),
                                    NoteReason::NotHeldByStore,
                                )))
                                .await
                        }
                        Err(
                            source @ (StoreError::Conflict
                            | StoreError::AlreadyExists
                            | StoreError::GaveUp { .. }
                            | StoreError::Backend(_)),
                        ) => {
                            return Err(Error::RestartWorkload {
                                workload: restart.workload.clone(),
                                source,
                            });
                        }
                    }
                }
                Step::Note(note) => record.emit(Event::Note(note.clone())).await,
            }
        }
        Ok(())
    }

    /// Applies consecutive Secret steps: their writes in one batch, then, in step order,
    /// their events and their effect on `carried`, up to the first failed write.
    async fn apply_secrets(
        &self,
        changes: &[&SecretChange],
        record: &mut Record,
        carried: &mut Option<Observed>,
    ) -> Result<(), Error> {
        let writes: Vec<SecretWrite> = changes
            .iter()
            .filter_map(|change| secret_write(change))
            .collect();
        let (writes, results) = if writes.is_empty() {
            (writes, Vec::new())
        } else {
            let store = Arc::clone(&self.store);
            self.store_call(async move {
                let results = store.write_secrets(&writes).await;
                (writes, results)
            })
            .await?
        };
        let mut written = writes.into_iter().zip(results);
        for change in changes {
            let write_error = |source| Error::WriteSecret {
                secret: change.secret.clone(),
                source,
            };
            if change.action == SecretAction::Unchanged {
                record
                    .emit(Event::SecretUnchanged {
                        secret: change.secret.clone(),
                    })
                    .await;
                continue;
            }
            // The store answers every write up to the first failure.
            let (write, result) = written.next().ok_or_else(|| {
                write_error(StoreError::Backend(
                    "the store did not answer this write".into(),
                ))
            })?;
            let version = result.map_err(write_error)?;
            match write {
                SecretWrite::Create { .. } => {
                    if let Some(observed) = carried.as_mut() {
                        let mut created = ObservedSecret::created_by(change);
                        created.version = version;
                        observed.secrets.insert(change.secret.clone(), created);
                    }
                    record.report.writes += 1;
                    record
                        .emit(Event::SecretCreated {
                            secret: change.secret.clone(),
                            reason: change.reason,
                        })
                        .await;
                }
                SecretWrite::Update { .. } => {
                    match carried
                        .as_mut()
                        .and_then(|o| o.secrets.get_mut(&change.secret))
                    {
                        Some(observed) => {
                            observed.apply_change(change);
                            observed.version = version;
                        }
                        None => *carried = None,
                    }
                    record.report.writes += 1;
                    record
                        .emit(Event::SecretUpdated {
                            secret: change.secret.clone(),
                            keys: change.data.keys().cloned().collect(),
                            reason: change.reason,
                        })
                        .await;
                }
            }
        }
        Ok(())
    }
}

/// The store write of a Secret step; `None` if the Secret is already as the step wants it.
fn secret_write(change: &SecretChange) -> Option<SecretWrite> {
    let secret = change.secret.clone();
    match &change.action {
        SecretAction::Unchanged => None,
        SecretAction::Create => Some(SecretWrite::Create {
            secret,
            new: NewSecret {
                secret_type: change.secret_type.clone(),
                data: change
                    .data
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_ref()?.expose_secret().to_vec())))
                    .collect(),
                labels: change.labels.clone(),
                annotations: change
                    .annotations
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                    .collect(),
            },
        }),
        SecretAction::Update { expected_version } => Some(SecretWrite::Update {
            secret,
            expected_version: expected_version.clone(),
            update: SecretUpdate::of(change),
        }),
    }
}
