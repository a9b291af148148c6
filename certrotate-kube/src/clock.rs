//! Where "now" comes from, and how to wait: the system clock, or a manual one for tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current time and a way to wait until a later one (as rustls's
/// `TimeProvider`, plus sleeping).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;

    /// Waits until `at` (returns at once if it has passed).
    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// Waits until `at` for what `next` says (a phase converging, rollouts): the engine's
    /// waits between phases. A clock that shows progress overrides it to say what it waits
    /// for; by default it is [`Self::sleep_until`].
    fn wait_for(
        &self,
        at: OffsetDateTime,
        next: &certrotate_core::plan::Next,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let _ = next;
        self.sleep_until(at)
    }
}

/// The system clock and tokio's timer. The only place in certrotate that reads the clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one clock implementation
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let left = at - self.now();
        let left = std::time::Duration::try_from(left).unwrap_or_default();
        Box::pin(tokio::time::sleep(left))
    }
}

/// A clock that only moves when told to, and whose sleeps jump straight to their end.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock that reads `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(Mutex::new(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        // A poisoned clock only means a test panicked while holding it; the time is intact.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut now = self.lock();
        if at > *now {
            *now = at;
        }
        Box::pin(std::future::ready(()))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        (**self).sleep_until(at)
    }
}
