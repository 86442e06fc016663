//! The response future: the service's future, run inside the request's context, with the
//! request id echoed into the response when the layer was asked to.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use authtel_core::context::{RequestContext, WithContext};
use http::{HeaderName, HeaderValue, Response};

pin_project_lite::pin_project! {
    /// The future [`RequestContextService`](crate::RequestContextService) returns: the
    /// wrapped service's response future, polled inside the request's context.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithContext<F>,
        echo: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: WithContext<F>, echo: Option<(HeaderName, HeaderValue)>) -> Self {
        ResponseFuture { inner, echo }
    }

    /// The request's context.
    pub fn context(&self) -> &RequestContext {
        self.inner.context()
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("context", self.inner.context())
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut output = ready!(this.inner.poll(cx));
        if let (Ok(response), Some((name, value))) = (&mut output, this.echo.take())
            && !response.headers().contains_key(&name)
        {
            response.headers_mut().insert(name, value);
        }
        Poll::Ready(output)
    }
}
