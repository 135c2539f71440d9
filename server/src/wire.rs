//! The TCP stream under a WebSocket, with two additions.
//!
//! - It notes when bytes arrive. Liveness is about the peer sending anything
//!   at all, and tungstenite only reports whole messages, so a slow
//!   fragmented message or a large frame trickling in would otherwise look
//!   like silence.
//! - It writes large data frames itself, header and payload in one
//!   vectored system call, instead of letting tungstenite copy the payload
//!   into its write buffer first (at 16 KiB echoes, tungstenite's copies
//!   were the largest cost left; see [`Wire::write_frame`]).
//! - It reads ahead. tungstenite zero-fills its read buffer before every
//!   read call (measured with callgrind: 74% of the server's instructions
//!   at 20-byte echoes with an 8 KiB buffer), so we give it a small buffer,
//!   [`FRAME_CHUNK`], and serve its reads from our own, filled by the kernel
//!   without zeroing, up to `--read-buffer-size` per system call. That
//!   buffer is kept while the peer is sending and released at the first
//!   keepalive tick with no input, so an idle connection holds none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The read buffer tungstenite itself gets (`WebSocketConfig`'s
/// `read_buffer_size`): what it zero-fills before each read call. Small,
/// because zeroing is wasted work; large enough that a typical message is
/// parsed in one or two calls. Messages bigger than this are read from
/// [`Wire`]'s buffer in chunks of this size, without system calls.
pub(crate) const FRAME_CHUNK: usize = 2 * 1024;

/// A `TcpStream` that remembers whether it has read anything since the
/// last [`Wire::take_heard`] and reads ahead into a buffer of its own.
#[derive(Debug)]
pub(crate) struct Wire {
    tcp: TcpStream,
    /// Bytes arrived since the last keepalive tick.
    heard: bool,
    /// Read from the socket, not yet handed to tungstenite. Allocated while
    /// the peer sends (allocating it per read cost 10% of the instructions
    /// per message in malloc and free); released when the peer goes quiet.
    ahead: BytesMut,
    /// Most bytes one socket read may bring in (`--read-buffer-size`).
    read_size: usize,
}

impl Wire {
    pub(crate) fn new(tcp: TcpStream, read_size: usize) -> Self {
        Self {
            tcp,
            heard: false,
            ahead: BytesMut::new(),
            read_size,
        }
    }

    /// Whether bytes arrived since the last call (once per keepalive
    /// tick). A quiet connection gives its read-ahead buffer back.
    pub(crate) fn take_heard(&mut self) -> bool {
        let heard = std::mem::take(&mut self.heard);
        if !heard && self.ahead.is_empty() {
            self.ahead = BytesMut::new();
        }
        heard
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Whether a read would find input right now: bytes read ahead, or a
    /// socket the runtime knows to be readable. Costs no system call; used
    /// to decide whether to look for another message before flushing.
    pub(crate) fn input_pending(&self) -> bool {
        !self.ahead.is_empty()
            || self
                .tcp
                .poll_read_ready(&mut Context::from_waker(Waker::noop()))
                .is_ready()
    }
}

/// Data frames at least this large are written by [`Wire::write_frame`]
/// without the copy into tungstenite's buffer; smaller ones are cheaper to
/// batch there with their neighbours.
pub(crate) const DIRECT_WRITE_MIN: usize = 4 * 1024;

/// The opcode of a data frame (RFC 6455, section 5.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DataOpcode {
    Text = 0x1,
    Binary = 0x2,
}

impl Wire {
    /// Writes one whole, unfragmented, unmasked data frame (the server side
    /// of RFC 6455, section 5.2): the header and the payload go out in one
    /// vectored write, the payload straight from its shared buffer.
    ///
    /// The caller must have flushed tungstenite first, so frames leave in
    /// order; tungstenite never holds part of a frame after a flush.
    pub(crate) async fn write_frame(
        &mut self,
        opcode: DataOpcode,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut header = [0u8; 10];
        header[0] = 0x80 | opcode as u8; // FIN, no RSV bits
        let header_len = match payload.len() {
            len @ 0..=125 => {
                header[1] = len as u8;
                2
            }
            len @ 126..=0xffff => {
                header[1] = 126;
                header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                header[1] = 127;
                header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        let (mut head, mut body) = (&header[..header_len], payload);
        while !head.is_empty() || !body.is_empty() {
            let slices = [io::IoSlice::new(head), io::IoSlice::new(body)];
            let written = self.tcp.write_vectored(&slices).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let from_head = written.min(head.len());
            head = &head[from_head..];
            body = &body[written - from_head..];
        }
        Ok(())
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ahead.is_empty() {
            this.ahead.reserve(this.read_size);
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut this.tcp), cx, &mut this.ahead);
            match read {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())), // end of stream
                Poll::Ready(Ok(_)) => this.heard = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.ahead.len().min(buf.remaining());
        buf.put_slice(&this.ahead[..n]);
        this.ahead.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
