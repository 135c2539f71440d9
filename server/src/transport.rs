//! The byte stream under HTTP and WebSocket: plain TCP, or TLS over it.
//!
//! One type from accept to close: hyper serves the HTTP phase over it and
//! hands it back at the upgrade, and the [`Wire`](crate::wire::Wire) reads
//! and writes the WebSocket stream through it.
//!
//! A plain socket is shared ([`Transport::socket`]): the rooms hub writes
//! deliveries straight to an idle member's socket. A TLS stream cannot be
//! shared (every byte goes through its session's encryption), so a TLS
//! member's deliveries are written by its own session.
//!
//! TLS buffers: rustls may hold decrypted input the socket no longer
//! shows as readable ([`Transport::poll_read_ready`] looks), and encrypted
//! output the socket did not take yet ([`Transport::poll_flush`] writes
//! it; the Wire flushes before each write and whenever a write is meant to
//! be complete).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Plain TCP or TLS; see the module docs.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP, shareable with the rooms hub.
    Plain(Arc<TcpStream>),
    /// TLS (`--tls-cert`); boxed, it holds rustls's session and buffers.
    Tls(Box<TlsStream<TcpStream>>),
    /// Nothing: stands in for a moment while the Wire moves to a new codec.
    /// Reads end the stream, writes fail.
    Detached,
}

impl Transport {
    /// A plain TCP connection.
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self::Plain(Arc::new(tcp))
    }

    /// The TCP socket, if it may be shared with the hub (plain only).
    pub(crate) fn socket(&self) -> Option<&Arc<TcpStream>> {
        match self {
            Self::Plain(tcp) => Some(tcp),
            Self::Tls(_) | Self::Detached => None,
        }
    }

    /// A second handle on a plain socket; a TLS stream has only one, so
    /// it is [`Transport::Detached`] (see [`Transport::Detached`]).
    pub(crate) fn stand_in(&self) -> Self {
        match self {
            Self::Plain(tcp) => Self::Plain(Arc::clone(tcp)),
            Self::Tls(_) | Self::Detached => Self::Detached,
        }
    }

    /// Ready when a read would find input: the socket is readable, or
    /// rustls holds decrypted bytes not read yet.
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => tcp.poll_read_ready(cx),
            Self::Tls(tls) => {
                let (tcp, session) = tls.get_ref();
                // rustls stops asking for socket bytes while it holds
                // plaintext (or has ended): a read returns at once then.
                if !session.wants_read() {
                    return Poll::Ready(Ok(()));
                }
                tcp.poll_read_ready(cx)
            }
            Self::Detached => Poll::Ready(Ok(())),
        }
    }

    /// Reads into `buf`; 0 is the end of the stream.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => poll_io(tcp, cx, TcpStream::poll_read_ready, |tcp| {
                tcp.try_read(&mut *buf)
            }),
            Self::Tls(tls) => {
                let mut read = ReadBuf::new(buf);
                ready!(Pin::new(tls.as_mut()).poll_read(cx, &mut read))?;
                Poll::Ready(Ok(read.filled().len()))
            }
            Self::Detached => Poll::Ready(Ok(0)),
        }
    }

    /// Reads into the spare capacity of `buf` (no zeroing for plain TCP);
    /// 0 is the end of the stream.
    pub(crate) fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => poll_io(tcp, cx, TcpStream::poll_read_ready, |tcp| {
                tcp.try_read_buf(&mut *buf)
            }),
            Self::Tls(tls) => tokio_util::io::poll_read_buf(Pin::new(tls.as_mut()), cx, buf),
            Self::Detached => Poll::Ready(Ok(0)),
        }
    }

    /// One vectored write; TLS may keep some of it encrypted, not yet on
    /// the socket, until [`Transport::poll_flush`].
    pub(crate) fn poll_writev(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => poll_io(tcp, cx, TcpStream::poll_write_ready, |tcp| {
                tcp.try_write_vectored(bufs)
            }),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
            Self::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// One write; as [`Transport::poll_writev`].
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => poll_io(tcp, cx, TcpStream::poll_write_ready, |tcp| {
                tcp.try_write(buf)
            }),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Self::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// Writes out whatever TLS holds encrypted; nothing to do for TCP.
    #[inline]
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(_) | Self::Detached => Poll::Ready(Ok(())),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    /// Ends the write side: TLS sends its close_notify first. A shared
    /// socket has no `&mut TcpStream`, so it is shut down by reference.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => {
                Poll::Ready(socket2::SockRef::from(&**tcp).shutdown(std::net::Shutdown::Write))
            }
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Self::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// For hyper, which serves the HTTP phase over the transport.
impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(Transport::poll_read(
            self.get_mut(),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Transport::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_writev(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Transport::poll_flush(self.get_mut(), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Transport::poll_shutdown(self.get_mut(), cx)
    }
}

/// One non-blocking operation on a shared socket, retried until it does
/// not report `WouldBlock` (readiness is cleared by the failed attempt, so
/// the retry waits for the next readiness event).
#[inline]
fn poll_io<T>(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    poll_ready: fn(&TcpStream, &mut Context<'_>) -> Poll<io::Result<()>>,
    mut operation: impl FnMut(&TcpStream) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        ready!(poll_ready(tcp, cx))?;
        match operation(tcp) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}
