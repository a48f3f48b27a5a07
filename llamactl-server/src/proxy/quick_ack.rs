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
//! to give (its [`LeasedBody`](super::LeasedBody) is polled and must wait), through the
//! connection's [`AckRequest`] (found in every response's extensions), right there in the
//! caller's task. Doing it after every read instead costs an ACK packet of its own for every
//! response (one `setsockopt` sending it through the network stack, about 8 % of the proxy's
//! CPU time per request); answers read whole (the usual case) now need none. A backend that
//! splits the response *head* itself into several writes with Nagle on is not helped (none
//! known does).
//!
//! So that the request can reach the socket while the connection's task owns it, the stream is
//! shared: the connection reads and writes through an `Arc`, the requests hold a `Weak` (so a
//! connection's socket is closed when the connection is done with, as before).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
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
        Box::pin(async move {
            let stream = Arc::new(connecting.await?.into_inner());
            Ok(QuickAckStream { inner: TokioIo::new(Shared(stream)) })
        })
    }
}

/// A handle on one backend connection, to have it send the ACK of what it has received now.
#[derive(Debug, Clone)]
pub struct AckRequest(Weak<TcpStream>);

impl AckRequest {
    /// Sends the pending ACK now (and quick ACKs until the kernel leaves that mode again), if
    /// the connection is still open.
    pub fn acknowledge(&self) {
        if let Some(stream) = self.0.upgrade() {
            // Failing only means the ACK may be delayed as before.
            let _ = socket2::SockRef::from(&*stream).set_tcp_quickack(true);
        }
    }
}

/// A backend connection whose socket [`AckRequest`]s can reach.
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TokioIo<Shared>,
}

/// The connection's socket, shared with its [`AckRequest`]s.
#[derive(Debug)]
struct Shared(Arc<TcpStream>);

impl AsyncRead for Shared {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // As tokio's own stream does: a read that did not fill the buffer emptied the
            // socket, so its readiness is cleared (the next read waits for new bytes instead of
            // asking the kernel in vain). A `WouldBlock` from the closure is what clears it.
            let mut short_read = false;
            let read = self.0.try_io(Interest::READABLE, || {
                let room = buf.remaining();
                let n = self.0.try_read_buf(buf)?;
                short_read = n > 0 && n < room;
                if short_read { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
            });
            match read {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if short_read {
                        return Poll::Ready(Ok(()));
                    }
                    // Readiness was stale (it is cleared now): wait again.
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for Shared {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

impl Read for QuickAckStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
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
        let stream = &self.inner.inner().0;
        stream.connected().extra(AckRequest(Arc::downgrade(stream)))
    }
}
