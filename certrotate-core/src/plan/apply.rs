//! One model of "the state after a plan": what every store does with each step (a create,
//! a merge update of a Secret, every `caBundle` of a webhook configuration replaced, a
//! restart's pod-template annotations set). The trust gate judges the state it gives,
//! `simulate` walks through it, the engine keeps its carried observation with it, and the
//! planner's tests step with it.

use super::{Observed, ObservedSecret, RotationPlan, SecretAction, SecretChange, Step};
use crate::wire::{ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTED_FOR};

impl ObservedSecret {
    /// Applies `change`'s keys, labels and annotations with merge semantics: listed keys
    /// are set or removed, everything else is kept. The version is the store's: it stays
    /// as it was.
    pub fn apply_change(&mut self, change: &SecretChange) {
        for (k, v) in &change.data {
            match v {
                Some(v) => self.data.insert(k.clone(), v.expose_secret().to_vec()),
                None => self.data.remove(k),
            };
        }
        for (k, v) in &change.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &change.annotations {
            match v {
                Some(v) => self.annotations.insert(k.clone(), v.clone()),
                None => self.annotations.remove(k),
            };
        }
    }

    /// The Secret `change` creates (with no version: the store gives it one).
    pub fn created_by(change: &SecretChange) -> Self {
        let mut created = Self::new(change.secret_type.clone(), Default::default(), "");
        created.apply_change(change);
        created
    }
}

impl Observed {
    /// Applies one step as every store applies it. Versions are the stores': an object's
    /// stays as observed (a created Secret has none) until a store answers with its own.
    /// A restart sets the pod-template annotations it writes and leaves the rollout's
    /// progress as observed (that is the cluster's); a note changes nothing. A step on an
    /// object the observation does not hold changes nothing, but a create.
    pub fn apply_step(&mut self, step: &Step) {
        match step {
            Step::Secret(change) => match change.action {
                SecretAction::Create => {
                    self.secrets
                        .insert(change.secret.clone(), ObservedSecret::created_by(change));
                }
                SecretAction::Update { .. } => {
                    if let Some(s) = self.secrets.get_mut(&change.secret) {
                        s.apply_change(change);
                    }
                }
                SecretAction::Unchanged => {}
            },
            Step::Webhook(change) => {
                if let Some(w) = self.webhooks.get_mut(&change.webhook) {
                    w.ca_bundles = change.ca_bundles.clone();
                }
            }
            Step::Restart(restart) => {
                if let Some(w) = self.workloads.get_mut(&restart.workload) {
                    w.template_annotations.insert(
                        ANNOTATION_RESTARTED_AT.to_owned(),
                        restart.restarted_at.clone(),
                    );
                    w.template_annotations
                        .insert(ANNOTATION_RESTARTED_FOR.to_owned(), restart.token.clone());
                    w.restart_pending = false;
                }
            }
            Step::Note(_) => {}
        }
    }

    /// Applies every step of `plan` in order ([`Observed::apply_step`]).
    pub fn apply(&mut self, plan: &RotationPlan) {
        for step in &plan.steps {
            self.apply_step(step);
        }
    }

    /// The state after `plan` ([`Observed::apply`] on a copy).
    pub fn after(&self, plan: &RotationPlan) -> Self {
        let mut after = self.clone();
        after.apply(plan);
        after
    }
}
