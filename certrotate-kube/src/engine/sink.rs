//! Where a run's [`Event`]s go as they happen: an [`EventSink`] starts one [`RunEvents`]
//! per run (Kubernetes Events: [`KubeEvents`](crate::events::KubeEvents); a log, a
//! metric, a test's list: anything).

use std::future::Future;
use std::pin::Pin;

use certrotate_core::Profile;

use super::report::{Event, RunReport, event};
use crate::error::Error;

/// The future of an [`RunEvents`] method: boxed, so a sink can be shared as
/// `Arc<dyn EventSink>` by every reconcile of an [`Engine`](crate::Engine).
pub type Recording<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Receives the [`Event`]s of every run of an [`Engine`](crate::Engine).
///
/// The engine calls [`Self::start`] when a run begins, then the [`RunEvents`] it returns
/// with each event as it happens, and [`RunEvents::finish`] when the run ends. A run's
/// recorder holds what one run needs to remember (the Kubernetes sink holds a plan's
/// Events until its writes are made), so one sink serves every reconcile at once.
pub trait EventSink: Send + Sync {
    /// Starts recording one run on `profile`'s objects.
    fn start(&self, profile: &Profile) -> Box<dyn RunEvents>;
}

/// The events of one run (from [`EventSink::start`]).
///
/// The engine awaits each call before it goes on, so events arrive in order and a run that
/// fails has recorded everything up to the failure. A recorder that talks to a server
/// bounds its own time and never fails the run: it logs its own failures.
pub trait RunEvents: Send {
    /// `event`, as it happens: a write's event comes after the write succeeded.
    fn record<'a>(&'a mut self, event: &'a Event) -> Recording<'a>;

    /// The run ended: with its report, or with the error it failed with.
    fn finish<'a>(&'a mut self, outcome: Result<&'a RunReport, &'a Error>) -> Recording<'a>;
}

/// The sink of an engine built without one: events are only logged (`tracing`) and kept
/// in the [`RunReport`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoEvents;

impl EventSink for NoEvents {
    fn start(&self, _: &Profile) -> Box<dyn RunEvents> {
        Box::new(NoEvents)
    }
}

impl RunEvents for NoEvents {
    fn record<'a>(&'a mut self, _: &'a Event) -> Recording<'a> {
        Box::pin(std::future::ready(()))
    }

    fn finish<'a>(&'a mut self, _: Result<&'a RunReport, &'a Error>) -> Recording<'a> {
        Box::pin(std::future::ready(()))
    }
}

/// What one run is building: its report, and its sink's recorder.
pub(super) struct Record {
    pub(super) report: RunReport,
    events: Box<dyn RunEvents>,
}

impl Record {
    pub(super) fn new(report: RunReport, events: Box<dyn RunEvents>) -> Self {
        Self { report, events }
    }

    /// Passes `e` to the sink, then logs it and keeps it in the report.
    pub(super) async fn emit(&mut self, e: Event) {
        self.events.record(&e).await;
        event(&mut self.report, e);
    }

    /// Ends the run: the sink is told how, and the report (or the error) returned.
    pub(super) async fn finish(mut self, outcome: Result<(), Error>) -> Result<RunReport, Error> {
        match outcome {
            Ok(()) => {
                self.events.finish(Ok(&self.report)).await;
                Ok(self.report)
            }
            Err(e) => {
                self.events.finish(Err(&e)).await;
                Err(e)
            }
        }
    }
}
