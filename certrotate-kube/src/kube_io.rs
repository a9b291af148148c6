//! The bounds of every request the Kubernetes client makes: a deadline for the whole
//! request (connection, headers and body) and a cap on the size of an answer.
//!
//! kube's `Config` has connect, read and write timeouts, but a read timeout bounds one
//! read: a server that trickles a byte every few seconds holds a request forever. The
//! layer here starts a deadline when a request is sent and holds its answer's body to
//! it, and counts the body's bytes, dropping an answer past [`ClientLimits::max_answer_bytes`]
//! (an API server's answer for the few objects of a profile is kilobytes; a larger one is
//! an attack or a bug, and would be held in memory whole).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use kube::client::Body;

use crate::error::BoxError;

/// The bounds of each request of a [`KubeStore`](crate::KubeStore)'s client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientLimits {
    /// The most time one request may take, from sending it to the last byte of its
    /// answer (default 30 s).
    pub request_timeout: Duration,
    /// The largest answer read (default 16 MiB); a larger one is dropped with an error.
    pub max_answer_bytes: u64,
}

impl Default for ClientLimits {
    /// 30 s: the API server answers a GET or a LIST of a profile's objects in
    /// milliseconds, and its own handler timeout (`kube-apiserver --request-timeout`) is
    /// one minute; half of that leaves a retry inside the API server's window. 16 MiB:
    /// far above the objects certrotate reads (a Secret is at most 1 MiB, the API server's
    /// own limit), far below what would strain memory.
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_answer_bytes: 16 << 20,
        }
    }
}

impl ClientLimits {
    /// These limits with another request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// These limits with another answer size.
    pub fn with_max_answer_bytes(mut self, bytes: u64) -> Self {
        self.max_answer_bytes = bytes;
        self
    }
}

/// A kube client for `config` whose every request is held to `limits`.
///
/// The connect timeout becomes the request timeout if it was longer (or unset), and so
/// does the read timeout: neither can then outlast the request.
pub fn bounded_client(
    mut config: kube::Config,
    limits: ClientLimits,
) -> Result<kube::Client, kube::Error> {
    let shorter = |t: Option<Duration>| {
        Some(t.map_or(limits.request_timeout, |t| t.min(limits.request_timeout)))
    };
    config.connect_timeout = shorter(config.connect_timeout);
    config.read_timeout = shorter(config.read_timeout);
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&BoundsLayer(limits))
        .build())
}

/// A request took longer than the client's request timeout.
#[derive(Debug, thiserror::Error)]
#[error("no complete answer to {request} within {timeout:?} (the request timeout)")]
pub(crate) struct RequestTimedOut {
    /// `METHOD /path` (no query).
    request: Arc<str>,
    timeout: Duration,
}

/// An answer was larger than the client reads.
#[derive(Debug, thiserror::Error)]
#[error("the answer to {request} is larger than the limit of {limit} bytes; it was dropped")]
pub(crate) struct AnswerTooLarge {
    /// `METHOD /path` (no query).
    request: Arc<str>,
    limit: u64,
}

/// The tower layer of [`bounded_client`].
#[derive(Clone, Copy, Debug)]
struct BoundsLayer(ClientLimits);

impl<S> tower::Layer<S> for BoundsLayer {
    type Service = Bounded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bounded {
            inner,
            limits: self.0,
        }
    }
}

/// A service whose requests end by a deadline and whose answers are counted.
#[derive(Clone, Debug)]
struct Bounded<S> {
    inner: S,
    limits: ClientLimits,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<Request<Body>> for Bounded<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoundedBody<B>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let limits = self.limits;
        let what: Arc<str> = format!("{} {}", request.method(), request.uri().path()).into();
        let deadline = tokio::time::Instant::now() + limits.request_timeout;
        let sent = self.inner.call(request);
        Box::pin(async move {
            let timed_out = || RequestTimedOut {
                request: Arc::clone(&what),
                timeout: limits.request_timeout,
            };
            let response = tokio::time::timeout_at(deadline, sent)
                .await
                .map_err(|_| timed_out())?
                .map_err(Into::into)?;
            let too_large = || AnswerTooLarge {
                request: Arc::clone(&what),
                limit: limits.max_answer_bytes,
            };
            // A declared length past the limit is refused before a byte is read.
            if http_body::Body::size_hint(response.body()).lower() > limits.max_answer_bytes {
                return Err(too_large().into());
            }
            Ok(response.map(|body| BoundedBody {
                inner: Box::pin(body),
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                read: 0,
                timed_out: Some(timed_out()),
                too_large: Some(too_large()),
            }))
        })
    }
}

/// An answer's body, read until the request's deadline and up to the size limit.
struct BoundedBody<B> {
    inner: Pin<Box<B>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    read: u64,
    /// The errors to return (each at most once: a body ends after its error).
    timed_out: Option<RequestTimedOut>,
    too_large: Option<AnswerTooLarge>,
}

impl<B> http_body::Body for BoundedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(this.timed_out.take().map(|e| Err(e.into())));
        }
        if this.too_large.is_none() {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len() as u64);
                    if let Some(e) = this.too_large.take_if(|e| this.read > e.limit) {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `e`'s chain holds an answer dropped for its size (never worth retrying).
pub(crate) fn too_large<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a AnswerTooLarge> {
    chain(e).find_map(|c| c.downcast_ref::<AnswerTooLarge>())
}

/// Whether `e`'s chain holds a request that ran out of time.
pub(crate) fn timed_out<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a RequestTimedOut> {
    chain(e).find_map(|c| c.downcast_ref::<RequestTimedOut>())
}

fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |c| c.source())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use http_body_util::BodyExt as _;
    use tower::{Layer as _, Service as _};

    use super::*;

    type Answer = fn(Request<Body>) -> std::future::Ready<Result<Response<Body>, BoxError>>;

    fn bounded(limits: ClientLimits, answer: Answer) -> Bounded<tower::util::ServiceFn<Answer>> {
        BoundsLayer(limits).layer(tower::service_fn(answer))
    }

    fn get() -> Request<Body> {
        Request::get("/api/v1/namespaces/ns/secrets/big?x=1")
            .body(Body::empty())
            .unwrap()
    }

    /// A declared length past the limit is refused before its body is read (an undeclared
    /// one is cut where it passes the limit: `certrotate-cli/tests/hostile_api.rs`); an
    /// answer at the limit is read whole.
    #[tokio::test]
    async fn an_answer_past_the_limit_is_dropped_naming_the_request() {
        let limits = ClientLimits::default().with_max_answer_bytes(10);
        let mut service = bounded(limits, |_| {
            std::future::ready(Ok(Response::new(Body::from(vec![b'x'; 11]))))
        });
        let error = service.call(get()).await.err().unwrap();
        assert_eq!(
            error.to_string(),
            "the answer to GET /api/v1/namespaces/ns/secrets/big is larger than the limit of \
             10 bytes; it was dropped"
        );
        let mut service = bounded(limits, |_| {
            std::future::ready(Ok(Response::new(Body::from(vec![b'x'; 10]))))
        });
        let body = service.call(get()).await.unwrap().into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 10);
    }
}
