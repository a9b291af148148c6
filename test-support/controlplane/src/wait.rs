//! Bounded waits on real programs.

use std::time::{Duration, Instant};

use crate::Error;

/// A bounded wait: call [`Deadline::tick`] once per failed check; it sleeps 100 ms, or
/// fails with [`Error::Timeout`] naming what was awaited once the bound has passed.
#[derive(Debug)]
pub struct Deadline {
    what: String,
    bound: Duration,
    start: Instant,
}

impl Deadline {
    /// Starts a wait for `what`, of at most `bound`.
    pub fn new(what: impl Into<String>, bound: Duration) -> Self {
        // Test support bounding waits on real programs: real time is the point.
        #[allow(clippy::disallowed_methods)]
        Deadline {
            what: what.into(),
            bound,
            start: Instant::now(),
        }
    }

    /// Sleeps before the next check, or fails once the bound has passed.
    pub async fn tick(&self) -> Result<(), Error> {
        if self.start.elapsed() > self.bound {
            return Err(Error::Timeout {
                what: self.what.clone(),
                after: self.bound,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}
