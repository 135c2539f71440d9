//! The TCP stream under a WebSocket, with these additions.
//!
//! - It notes when bytes arrive. Liveness is about the peer sending anything
//!   at all, and tungstenite only reports whole messages, so a slow
//!   fragmented message or a large frame trickling in would otherwise look
//!   like silence.
//! - It reads ahead. tungstenite zero-fills its read buffer before every
//!   read call (measured with callgrind: 74% of the server's instructions
//!   at 20-byte echoes with an 8 KiB buffer), so we give it a small buffer,
//!   [`FRAME_CHUNK`](crate::config::FRAME_CHUNK), and serve its reads from our own, filled by the kernel
//!   without zeroing, up to `--read-buffer-size` per system call. Only a
//!   read that fills tungstenite's buffer starts reading ahead: input that
//!   fits one read (a small message, a pong) goes straight into
//!   tungstenite's buffer. The read-ahead is kept while the peer is sending
//!   and released at the first keepalive tick with no input, so an idle
//!   connection holds none, whether or not it ever sent anything.
//! - It follows the frame boundaries in what it hands to tungstenite
//!   ([`FrameScan`]), so the session can tell when tungstenite's codec
//!   holds nothing and may be replaced, to give back the buffer a large
//!   frame left behind.
//! - It writes data frames itself ([`write`](mod@write)): a room's encoded
//!   deliveries, and large replies in one vectored system call instead of
//!   a copy into tungstenite's write buffer (at 16 KiB echoes, those copies
//!   were the largest cost left). Every write, tungstenite's too, first
//!   finishes the rest of a frame left partly written, so a write given up
//!   half way never leaves a cut frame behind.
//! - For a connection that negotiated permessage-deflate, it inflates
//!   compressed messages into plain frames before tungstenite sees them
//!   ([`Inflate`]), and writes compressed frames with RSV1 set.
//! - Its socket can be shared with the rooms hub, which writes deliveries
//!   straight to an idle member's socket; who may write when is the
//!   socket's turn ([`shared`]), taken before each of our writes.

mod frame;
pub(crate) mod frame_scan;
mod inflate;
pub(crate) mod shared;
mod tungstenite;
mod write;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::transport::Transport;

pub(crate) use frame::{DataOpcode, Frame};
pub(crate) use inflate::Inflate;
use shared::TurnKeeper;

use frame_scan::FrameScan;

/// Data frames at least this large are written by [`Wire::write_frame`]
/// without the copy into tungstenite's buffer; smaller ones are cheaper to
/// batch there with their neighbours.
pub(crate) const DIRECT_WRITE_MIN: usize = 4 * 1024;

/// A stream (plain TCP or TLS, [`Transport`]) that remembers whether it
/// has read anything since the last [`Wire::take_heard`], reads ahead into
/// a buffer of its own, and never leaves a frame cut short.
#[derive(Debug)]
pub(crate) struct Wire {
    /// A plain socket is shared with the hub, for a rooms connection.
    transport: Transport,
    /// Who keeps the socket's turn, when the socket is shared.
    keeper: Option<Arc<dyn TurnKeeper>>,
    /// The rest of a frame partly written (by us, or by the hub before we
    /// took the turn): the next bytes on the wire, before anything else.
    rest: VecDeque<Bytes>,
    /// tungstenite wrote part of its buffer and holds the rest: it may have
    /// a frame partly on the wire until it flushes (it flushes only once
    /// its buffer is written).
    tungstenite_owes: bool,
    /// Bytes arrived since the last keepalive tick.
    heard: bool,
    /// Read from the socket, not yet handed to tungstenite. Allocated while
    /// the peer sends (allocating it per read cost 10% of the instructions
    /// per message in malloc and free); released when the peer goes quiet.
    ahead: BytesMut,
    /// Whether reads go through `ahead` (a read filled tungstenite's
    /// buffer since the last quiet tick), rather than straight into
    /// tungstenite's buffer. Its own flag: `ahead`'s capacity is also 0
    /// when a read exactly filled it and all of it has been handed on.
    reading_ahead: bool,
    /// Most bytes one socket read may bring in (`--read-buffer-size`).
    read_size: usize,
    /// Frame boundaries in the bytes handed to tungstenite so far.
    scan: FrameScan,
    /// Inflates compressed messages, when the connection negotiated
    /// permessage-deflate.
    inflate: Option<Box<Inflate>>,
}

impl Wire {
    /// `early`: bytes the HTTP layer read past the upgrade request, the
    /// start of the WebSocket stream.
    pub(crate) fn new(transport: Transport, read_size: usize, early: &[u8]) -> Self {
        Self::on(transport, read_size, BytesMut::from(early))
    }

    /// A Wire on the same socket, holding nothing, to stand in while this
    /// one moves to a new codec ([`Wire::codec_worth_renewing`]).
    pub(crate) fn stand_in(&self) -> Self {
        Self::on(self.transport.stand_in(), self.read_size, BytesMut::new())
    }

    fn on(transport: Transport, read_size: usize, ahead: BytesMut) -> Self {
        Self {
            transport,
            keeper: None,
            rest: VecDeque::new(),
            tungstenite_owes: false,
            heard: false,
            reading_ahead: !ahead.is_empty(),
            ahead,
            read_size,
            scan: FrameScan::default(),
            inflate: None,
        }
    }

    /// From now on compressed messages are inflated before tungstenite
    /// reads them (the connection negotiated permessage-deflate).
    pub(crate) fn inflate_with(&mut self, inflate: Inflate) {
        self.inflate = Some(Box::new(inflate));
    }

    /// Whether tungstenite's codec is worth replacing, and safe to replace
    /// provided its last read found no whole frame and it has nothing
    /// left to write: a large frame grew its read buffer (which it never
    /// shrinks), and everything handed to it ends at a message boundary,
    /// so that buffer holds no bytes and no message is half assembled.
    pub(crate) fn codec_worth_renewing(&self) -> bool {
        self.scan.saw_large_frame() && self.scan.at_message_boundary()
    }

    /// The codec was replaced: the frames seen so far are its concern no
    /// more.
    pub(crate) fn codec_renewed(&mut self) {
        self.scan.reset_large();
    }

    /// The socket, for the hub to write to; `None` for TLS, whose bytes
    /// only the session's own writes may encrypt.
    pub(crate) fn socket(&self) -> Option<&Arc<TcpStream>> {
        self.transport.socket()
    }

    /// From now on the socket is shared: `keeper` keeps its turn.
    pub(crate) fn share_with(&mut self, keeper: Arc<dyn TurnKeeper>) {
        self.keeper = Some(keeper);
    }

    /// Takes the socket's turn, if it is shared: the hub writes nothing
    /// until the session releases it, and the rest of a frame the hub left
    /// partly written becomes ours to write first.
    #[inline]
    fn claim(&mut self) {
        if let Some(rest) = self.keeper.as_ref().and_then(|keeper| keeper.claim()) {
            self.rest.push_front(rest);
        }
    }

    /// Takes a rest the turn handed over another way (on close).
    pub(crate) fn write_first(&mut self, rest: Bytes) {
        self.rest.push_front(rest);
    }

    /// Whether part of a frame is on the wire and its rest is still to be
    /// written, by us or by tungstenite: nobody else may write meanwhile.
    pub(crate) fn owes(&self) -> bool {
        !self.rest.is_empty() || self.tungstenite_owes
    }

    /// Whether bytes arrived since the last call (once per keepalive
    /// tick). A quiet connection gives its read-ahead buffer back.
    pub(crate) fn take_heard(&mut self) -> bool {
        let heard = std::mem::take(&mut self.heard);
        if !heard && self.ahead.is_empty() {
            self.ahead = BytesMut::new();
            self.reading_ahead = false;
        }
        heard
    }

    /// Ready when a read would find input: bytes read ahead, or a socket
    /// the runtime knows to be readable; otherwise the task is woken when
    /// the socket becomes readable.
    pub(crate) fn poll_input_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ahead.is_empty()
            || self
                .inflate
                .as_ref()
                .is_some_and(|inflate| inflate.has_output())
        {
            return Poll::Ready(Ok(()));
        }
        self.transport.poll_read_ready(cx)
    }

    /// Whether a read would find input right now: bytes read ahead, or a
    /// socket the runtime knows to be readable. Costs no system call; used
    /// to decide whether to look for another message before flushing.
    pub(crate) fn input_pending(&self) -> bool {
        self.poll_input_ready(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.inflate.is_some() {
            return this.poll_read_inflating(cx, buf);
        }
        if this.ahead.is_empty() {
            if !this.reading_ahead {
                return this.poll_read_direct(cx, buf);
            }
            this.ahead.reserve(this.read_size);
            // Into the uninitialised spare capacity: no zeroing.
            match ready!(this.transport.poll_read_buf(cx, &mut this.ahead))? {
                0 => return Poll::Ready(Ok(())), // end of stream
                _ => this.heard = true,
            }
        }
        let n = this.ahead.len().min(buf.remaining());
        this.scan.feed(&this.ahead[..n]);
        buf.put_slice(&this.ahead[..n]);
        this.ahead.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Wire {
    /// A read straight into tungstenite's buffer, for a connection with no
    /// read-ahead buffer: one that has only sent what fits in one read
    /// (a small message, a pong) or has been quiet since a keepalive tick
    /// released it. Allocating the read-ahead for such input and freeing it
    /// at a quiet tick left its touched pages in the allocator: 4.5 KiB of
    /// resident memory per connection that had echoed one message or
    /// answered one ping (10.8-11.2 -> 6.3 KiB per connection at 10,000,
    /// `duplex-bench hold --echo-first`, server `--ping-interval 1s`,
    /// `--settle 3s`). Only a read that fills tungstenite's buffer, so more
    /// input is likely waiting, starts reading ahead. Not inlined:
    /// `poll_read`'s read-ahead path stays the code it was (inlined, this
    /// cost busy connections 20-35 instructions per message in callgrind).
    #[inline(never)]
    fn poll_read_direct(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.initialize_unfilled();
        if room.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let n = ready!(self.transport.poll_read(cx, room))?;
        if n == 0 {
            return Poll::Ready(Ok(())); // end of stream
        }
        self.heard = true;
        self.scan.feed(&room[..n]);
        if n == room.len() {
            self.reading_ahead = true;
        }
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Wire {
    /// A read for a connection that negotiated permessage-deflate: socket
    /// bytes go through [`Inflate`], which hands tungstenite plain frames.
    /// Like [`Wire::poll_read_direct`], a connection without read-ahead
    /// reads into a buffer on the stack, not an allocation of its own, and
    /// keeps only what the transformer did not take.
    #[inline(never)]
    fn poll_read_inflating(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let start = buf.filled().len();
        let result = self.poll_fill_inflated(cx, buf);
        self.scan.feed(&buf.filled()[start..]);
        if matches!(&result, Poll::Ready(Err(_))) {
            // The connection is failing: what follows (the lingering
            // read after our Close) is read as it is.
            self.inflate = None;
        }
        result
    }

    fn poll_fill_inflated(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let start = buf.filled().len();
        let Some(inflate) = self.inflate.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            if !self.ahead.is_empty() || inflate.has_output() {
                let used = inflate.fill(&mut self.ahead, buf)?;
                self.ahead.advance(used);
                if buf.filled().len() > start {
                    return Poll::Ready(Ok(()));
                }
            }
            // Everything in hand is used (or is the start of a header):
            // read more.
            if self.reading_ahead || !self.ahead.is_empty() {
                self.ahead.reserve(self.read_size);
                if ready!(self.transport.poll_read_buf(cx, &mut self.ahead))? == 0 {
                    return Poll::Ready(Ok(())); // end of stream
                }
                self.heard = true;
                continue;
            }
            let mut stack = [0u8; crate::config::FRAME_CHUNK];
            let n = ready!(self.transport.poll_read(cx, &mut stack))?;
            if n == 0 {
                return Poll::Ready(Ok(())); // end of stream
            }
            self.heard = true;
            if n == stack.len() {
                self.reading_ahead = true;
            }
            let used = inflate.fill(&mut stack[..n], buf)?;
            if used < n {
                self.ahead.extend_from_slice(&stack[used..n]);
            }
            if buf.filled().len() > start {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl Wire {
    /// One write of `len` bytes of tungstenite's, after the rest of any cut
    /// frame; notes when tungstenite is left holding part of its buffer.
    #[inline]
    fn poll_write_for_tungstenite(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        write: impl FnOnce(&mut Transport, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_write_rest(cx))?;
        let written = ready!(write(&mut self.transport, cx))?;
        self.tungstenite_owes |= written < len;
        Poll::Ready(Ok(written))
    }
}

/// tungstenite's writes: after the rest of any cut frame, straight to the
/// socket. tungstenite keeps what the socket did not take and writes it
/// next; until it flushes, it may owe part of a frame ([`Wire::owes`]).
impl AsyncWrite for Wire {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_for_tungstenite(cx, buf.len(), |transport, cx| {
                transport.poll_write(cx, buf)
            })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|buf| buf.len()).sum();
        self.get_mut()
            .poll_write_for_tungstenite(cx, total, |transport, cx| transport.poll_writev(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// tungstenite calls this only once its whole buffer is written
    /// (`tungstenite_behaviour`), so it owes nothing now. TCP has nothing
    /// to flush; TLS writes out what it holds encrypted.
    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tungstenite_owes = false;
        // A rest of our own is written too (a flush means "all written");
        // one the hub left is the session's to finish when it next writes
        // or settles, so a flush need not take the turn.
        if !this.rest.is_empty() {
            ready!(this.poll_write_rest(cx))?;
        }
        this.transport.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_rest(cx))?;
        this.transport.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FRAME_CHUNK;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Issue 10: input that fits in one read (a small message, a pong)
    /// goes straight into the caller's buffer, without allocating the
    /// read-ahead; a read that fills the buffer starts reading ahead.
    #[tokio::test]
    async fn only_a_full_read_allocates_the_read_ahead() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mut peer = TcpStream::connect(address).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut wire = Wire::new(Transport::plain(tcp), 16 * 1024, &[]);
        let mut buf = [0u8; FRAME_CHUNK];

        peer.write_all(&[7; 26]).await.expect("write");
        let n = wire.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], &[7; 26][..]);
        assert_eq!(wire.ahead.capacity(), 0, "no read-ahead for a small read");
        assert!(wire.take_heard());

        peer.write_all(&[8; 3 * FRAME_CHUNK]).await.expect("write");
        let mut got = 0;
        while got < 3 * FRAME_CHUNK {
            got += wire.read(&mut buf).await.expect("read");
        }
        assert!(
            wire.ahead.capacity() > 0,
            "a full read starts reading ahead"
        );
        assert!(wire.take_heard());
        assert!(!wire.take_heard());
        assert_eq!(wire.ahead.capacity(), 0, "a quiet tick releases it");
    }
}
