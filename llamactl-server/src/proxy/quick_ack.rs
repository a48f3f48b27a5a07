//! Backend connections that acknowledge what they have received at once when the proxy waits
//! for more of an answer.
//!
//! Many custom backends (Python's `http.server` with HTTP/1.1, for one) write a response's
//! headers and body in two writes with Nagle's algorithm on: the body waits until the headers
//! are acknowledged. On a kept-alive connection in request/response rhythm the kernel delays
//! that ACK (40 ms at least on Linux), so every proxied request after a connection's first
//! would take 40 ms more. Turning `TCP_QUICKACK` on sends the pending ACK there and then (the
//! kernel clears the flag by itself).
//!
//! It is done only when it can matter: when the body of a response being forwarded has nothing
//! to give (its [`LeasedBody`](super::LeasedBody) is polled and must wait), which asks the
//! connection through its [`AckRequest`] (found in every response's extensions). Doing it
//! after every read instead costs an ACK packet of its own for every response (one `setsockopt`
//! sending it through the network stack, about 8 % of the proxy's CPU time per request);
//! answers read whole (the usual case) now need none. A backend that splits the response
//! *head* itself into several writes with Nagle on is not helped (none known does).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An [`HttpConnector`] whose connections acknowledge at once when asked.
#[derive(Debug, Clone)]
pub struct QuickAckConnector {
    inner: HttpConnector,
}

impl QuickAckConnector {
    /// Wraps `inner`.
    pub fn new(inner: HttpConnector) -> Self {
        Self { inner }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Uri> for QuickAckConnector {
    type Response = QuickAckStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAckStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        Box::pin(async move { Ok(QuickAckStream { inner: connecting.await?, ack: AckRequest::default() }) })
    }
}

/// A handle on one backend connection, to ask it to send the ACK of what it has received now.
#[derive(Debug, Clone, Default)]
pub struct AckRequest(Arc<AckShared>);

#[derive(Debug, Default)]
struct AckShared {
    wanted: AtomicBool,
    /// The connection's task while it waits for bytes.
    reader: AtomicWaker,
}

impl AckRequest {
    /// Asks the connection to acknowledge now (its task wakes up to do it).
    pub fn request(&self) {
        self.0.wanted.store(true, Ordering::Release);
        self.0.reader.wake();
    }

    fn take(&self) -> bool {
        self.0.wanted.swap(false, Ordering::AcqRel)
    }
}

/// A backend connection that sends the ACK of what it read without delay when asked.
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TokioIo<TcpStream>,
    ack: AckRequest,
}

/// Sends the pending ACK now (and quick ACKs until the kernel leaves that mode again).
fn acknowledge_now(stream: &TcpStream) {
    // Failing only means the ACK may be delayed as before.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

impl Read for QuickAckStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ack.take() {
            acknowledge_now(this.inner.inner());
        }
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if read.is_pending() {
            this.ack.0.reader.register(cx.waker());
            // Asked between the first look and the registration: no wake-up will come for it.
            if this.ack.take() {
                acknowledge_now(this.inner.inner());
            }
        }
        read
    }
}

impl Write for QuickAckStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

impl Connection for QuickAckStream {
    /// The connection's [`AckRequest`] goes into the extensions of every response it carries.
    fn connected(&self) -> Connected {
        self.inner.connected().extra(self.ack.clone())
    }
}
