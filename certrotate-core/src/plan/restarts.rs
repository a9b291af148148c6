//! Restarts of the start-only workloads: which to restart for the Secrets as a plan leaves
//! them (a digest of every component's `ca.crt` and `tls.crt`, recorded in
//! `certrotate.io/restarted-for`), which were restarted already, and which restarts did
//! not happen and are asked for again.

use super::planner::*;
use super::*;
use crate::error::Error;
use crate::fingerprint::Fingerprint;

impl Planner<'_> {
    /// Restarts the start-only workloads whose pods have not yet been restarted for the
    /// component Secrets as they will be after this plan. With `changed` false (nothing of
    /// theirs changed in this run), only workloads certrotate restarted before are checked.
    pub(super) fn restarts(&mut self, reason: StepReason, changed: bool) -> Result<(), Error> {
        self.restarts_of(reason, changed, false)
    }

    /// Asks again for each restart that did not happen
    /// ([`ObservedWorkload::restart_pending`](super::ObservedWorkload::restart_pending)),
    /// and for no other.
    pub(super) fn pending_restarts(&mut self) -> Result<(), Error> {
        self.restarts_of(StepReason::UnfinishedRestart, false, true)
    }

    fn restarts_of(
        &mut self,
        reason: StepReason,
        changed: bool,
        only_pending: bool,
    ) -> Result<(), Error> {
        let token = self.mounted_state_token();
        let restarted_at = crate::rfc3339(self.now.replace_nanosecond(0).unwrap_or(self.now));
        for workload in self.objects.workloads.clone() {
            let Some(observed) = self.observed.workloads.get(&workload) else {
                if changed {
                    let note = self.absent(workload);
                    self.steps.push(Step::Note(note));
                }
                continue;
            };
            let previous = observed.template_annotations.get(ANNOTATION_RESTARTED_FOR);
            let pending = observed.restart_pending;
            if only_pending && !pending {
                continue;
            }
            if previous == Some(&token) && !pending {
                self.steps.push(Step::Note(Note::new(
                    workload,
                    NoteReason::AlreadyRestarted,
                )));
                continue;
            }
            if !changed && previous.is_none() && !pending {
                continue;
            }
            self.steps.push(Step::Restart(Restart {
                workload,
                restarted_at: restarted_at.clone(),
                token: token.clone(),
                reason,
            }));
        }
        Ok(())
    }

    /// A digest of every component's `ca.crt` and `tls.crt` as they will be after the
    /// steps planned so far: the state start-only workloads must be restarted into.
    pub(super) fn mounted_state_token(&self) -> String {
        let mut input = Vec::new();
        for secret in &self.objects.components {
            let planned = self.steps.iter().rev().find_map(|s| match s {
                Step::Secret(c) if &c.secret == secret => Some(c),
                _ => None,
            });
            let observed = self.observed.secrets.get(secret);
            for key in [KEY_TRUST, KEY_TLS_CRT] {
                let value = planned
                    .and_then(|c| c.data.get(key))
                    .map(|v| {
                        v.as_ref()
                            .map(SecretValue::expose_secret)
                            .unwrap_or_default()
                    })
                    .or_else(|| observed.and_then(|s| s.data.get(key)).map(Vec::as_slice))
                    .unwrap_or_default();
                input.extend_from_slice(secret.name.as_bytes());
                input.push(0);
                input.extend_from_slice(Fingerprint::of(value).as_bytes());
            }
        }
        Fingerprint::of(&input).short()
    }
}
