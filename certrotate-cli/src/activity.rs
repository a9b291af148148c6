//! The run's deadline (`--timeout`) and what the run is doing, so a run stopped by it
//! says where it was: "timed out after 20s while reading secret ns/envoy".

use std::sync::Mutex;
use std::time::Duration;

/// What the run is doing now, in words ("reading the profile's objects").
static DOING: Mutex<String> = Mutex::new(String::new());

/// Records what the run does from now on.
pub(crate) fn doing(what: impl Into<String>) {
    // A panic while holding the lock left only a string behind: keep using it.
    *DOING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = what.into();
}

fn current() -> String {
    let doing = DOING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if doing.is_empty() {
        "starting".to_owned()
    } else {
        doing.clone()
    }
}

/// A run stopped by `--timeout` (exit 6).
#[derive(Debug)]
pub(crate) struct TimedOut {
    limit: Duration,
    doing: String,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timed out after {} (--timeout) while {}; what was done is kept, and a rerun \
             continues from it",
            show(self.limit),
            self.doing
        )
    }
}

impl std::error::Error for TimedOut {}

/// Runs `run`, ending it at `limit` with [`TimedOut`].
pub(crate) async fn within<T>(
    limit: Duration,
    run: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(limit, run).await {
        Ok(done) => done,
        Err(_) => Err(TimedOut {
            limit,
            doing: current(),
        }
        .into()),
    }
}

/// `90s` as `1m 30s`, `300ms` as it is.
pub(crate) fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_as_given() {
        assert_eq!(show(Duration::from_secs(20)), "20s");
        assert_eq!(show(Duration::from_secs(3600)), "1h");
        assert_eq!(show(Duration::from_secs(90)), "1m 30s");
        assert_eq!(show(Duration::from_millis(300)), "300ms");
    }
}
