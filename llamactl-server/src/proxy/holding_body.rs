//! A response body that holds something until the body is gone: a router model's lease lives
//! as long as the answer streams, so that the model is not unloaded under it.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

struct Holding<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> hyper::body::Body for Holding<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `response` with `guard` kept alive until its body has been sent or dropped.
pub fn hold<G: Send + Unpin + 'static>(response: Response<Body>, guard: G) -> Response<Body> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(Holding { inner: body, _guard: guard }))
}
