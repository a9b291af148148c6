//! One retry budget per step of a run.
//!
//! A step is one observation (every read of the profile's objects) or one write call of
//! the engine (a batch of Secret writes, a webhook update, a restart). A store that
//! retries transient failures draws every retry of a step from one budget, so a step
//! that meets a storm of 429s makes a bounded number of requests however many objects it
//! reads: without it, each Secret read after a failed LIST had a budget of its own
//! (red-team round 3: `check` took 9 minutes).
//!
//! The engine marks steps ([`step`]); a store asks [`take_retry`] before each retry.
//! Outside a step (a library user calling a store method directly) each call has its own
//! budget, as before.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    /// The retries the current step has made.
    static STEP_RETRIES: Cell<u32>;
}

/// Runs `f` as one step: every store call in it shares one retry budget.
pub(crate) async fn step<F: Future>(f: F) -> F::Output {
    STEP_RETRIES.scope(Cell::new(0), f).await
}

/// Whether a store may retry once more, counting the retry if so: within a step, while the
/// step has made fewer than `max` retries; outside one, while this call has
/// (`call_retries`, the retries the call made so far).
// Only the Kubernetes store retries; the steps are marked in every build.
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub(crate) fn take_retry(max: u32, call_retries: u32) -> bool {
    STEP_RETRIES
        .try_with(|used| {
            let allowed = used.get() < max;
            if allowed {
                used.set(used.get() + 1);
            }
            allowed
        })
        .unwrap_or(call_retries < max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_shares_one_budget_and_a_bare_call_has_its_own() {
        // Two calls of one step: the second finds the budget spent by the first.
        let (first, second) = step(async {
            let first = (0..5).filter(|n| take_retry(3, *n)).count();
            let second = (0..5).filter(|n| take_retry(3, *n)).count();
            (first, second)
        })
        .await;
        assert_eq!((first, second), (3, 0));
        // Outside a step, each call counts its own retries.
        assert_eq!((0..5).filter(|n| take_retry(3, *n)).count(), 3);
        assert_eq!((0..5).filter(|n| take_retry(3, *n)).count(), 3);
    }
}
