//! Backend connections that acknowledge what they read at once.
//!
//! Many custom backends (Python's `http.server` with HTTP/1.1, for one) write a response's
//! headers and body in two writes with Nagle's algorithm on: the body waits until the headers
//! are acknowledged. On a kept-alive connection in request/response rhythm the kernel delays
//! that ACK (40 ms at least on Linux), so every proxied request after a connection's first
//! would take 40 ms more. Turning `TCP_QUICKACK` on after each read sends the pending ACK
//! there and then; the kernel clears the flag by itself, hence once per read. One `setsockopt`
//! per read costs about a microsecond.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An [`HttpConnector`] whose connections acknowledge every read at once.
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
        Box::pin(async move { Ok(QuickAckStream { inner: connecting.await? }) })
    }
}

/// A backend connection that sends the ACK of what it read without delay.
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TokioIo<TcpStream>,
}

/// Sends the pending ACK now (and quick ACKs until the kernel leaves that mode again).
fn acknowledge_now(stream: &TcpStream) {
    // Failing only means the ACK may be delayed as before.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

impl Read for QuickAckStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) {
            acknowledge_now(this.inner.inner());
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
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}
