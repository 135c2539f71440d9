//! The TCP stream under a WebSocket, with these additions.
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
//! - It follows the frame boundaries in what it hands to tungstenite
//!   ([`FrameScan`]), so the session can tell when tungstenite's codec
//!   holds nothing and may be replaced, to give back the buffer a large
//!   frame left behind.
//! - Its socket can be shared with one other writer of whole frames, the
//!   rooms hub ([`SharedWriter`]): a delivery is written straight to an
//!   idle member's socket by the publisher, without waking the member's
//!   task. Each of our writes first takes the socket over, so frames never
//!   interleave.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::frame_scan::FrameScan;

/// The read buffer tungstenite itself gets (`WebSocketConfig`'s
/// `read_buffer_size`): what it zero-fills before each read call. Small,
/// because zeroing is wasted work; large enough that a typical message is
/// parsed in one or two calls. Messages bigger than this are read from
/// [`Wire`]'s buffer in chunks of this size, without system calls.
pub(crate) const FRAME_CHUNK: usize = 2 * 1024;

/// Another writer of whole frames to a connection's socket, between the
/// session's own writes: the rooms hub, which writes a delivery straight
/// to an idle member's socket (`rooms::outbox`).
pub(crate) trait SharedWriter: Send + Sync + fmt::Debug {
    /// Called before each write of the session: from now on the other
    /// writer leaves the socket alone, and a frame it left half written
    /// (the socket was full) is finished first. Pending until it is.
    fn poll_take_over(&self, tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Called when the session has no frame partly written: the other
    /// writer may write again (once it has nothing queued for the session
    /// to write).
    fn hand_back(&self);
}

/// A `TcpStream` that remembers whether it has read anything since the
/// last [`Wire::take_heard`] and reads ahead into a buffer of its own.
#[derive(Debug)]
pub(crate) struct Wire {
    /// Shared with the [`SharedWriter`], if any.
    tcp: Arc<TcpStream>,
    /// Who else writes to `tcp`.
    shared: Option<Arc<dyn SharedWriter>>,
    /// Bytes arrived since the last keepalive tick.
    heard: bool,
    /// Read from the socket, not yet handed to tungstenite. Allocated while
    /// the peer sends (allocating it per read cost 10% of the instructions
    /// per message in malloc and free); released when the peer goes quiet.
    ahead: BytesMut,
    /// Most bytes one socket read may bring in (`--read-buffer-size`).
    read_size: usize,
    /// Frame boundaries in the bytes handed to tungstenite so far.
    scan: FrameScan,
}

impl Wire {
    /// `early`: bytes the HTTP layer read past the upgrade request, the
    /// start of the WebSocket stream.
    pub(crate) fn new(tcp: TcpStream, read_size: usize, early: &[u8]) -> Self {
        Self::on(Arc::new(tcp), read_size, BytesMut::from(early))
    }

    /// A Wire on the same socket, holding nothing, to stand in while this
    /// one moves to a new codec ([`Wire::codec_worth_renewing`]).
    pub(crate) fn stand_in(&self) -> Self {
        Self::on(Arc::clone(&self.tcp), self.read_size, BytesMut::new())
    }

    fn on(tcp: Arc<TcpStream>, read_size: usize, ahead: BytesMut) -> Self {
        Self {
            tcp,
            shared: None,
            heard: false,
            ahead,
            read_size,
            scan: FrameScan::default(),
        }
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

    /// The socket, for a [`SharedWriter`] to write to.
    pub(crate) fn socket(&self) -> &Arc<TcpStream> {
        &self.tcp
    }

    /// From now on `writer` writes to the socket too, between our writes.
    pub(crate) fn share_with(&mut self, writer: Arc<dyn SharedWriter>) {
        self.shared = Some(writer);
    }

    /// Tells the other writer, if any, that our frames are all written.
    fn hand_back(&self) {
        if let Some(shared) = &self.shared {
            shared.hand_back();
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

    /// Ready when a read would find input: bytes read ahead, or a socket
    /// the runtime knows to be readable; otherwise the task is woken when
    /// the socket becomes readable.
    pub(crate) fn poll_input_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ahead.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.tcp.poll_read_ready(cx)
    }

    /// Whether a read would find input right now: bytes read ahead, or a
    /// socket the runtime knows to be readable. Costs no system call; used
    /// to decide whether to look for another message before flushing.
    pub(crate) fn input_pending(&self) -> bool {
        self.poll_input_ready(&mut Context::from_waker(Waker::noop()))
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

/// The header of a whole, unfragmented, unmasked data frame (the server
/// side of RFC 6455, section 5.2) and how many of its bytes are used.
fn frame_header(opcode: DataOpcode, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x80 | opcode as u8; // FIN, no RSV bits
    let used = match len {
        0..=125 => {
            header[1] = len as u8;
            2
        }
        126..=0xffff => {
            header[1] = 126;
            header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (header, used)
}

/// A whole data frame, header included, encoded once and shared.
///
/// Server frames are never masked, so the bytes on the wire are the same
/// for every receiver: a room's fan-out encodes a message once and writes
/// that one buffer to each member (a clone is a reference count).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    bytes: Bytes,
    /// Bytes of `bytes` that are the header.
    header_len: u8,
}

impl Frame {
    pub(crate) fn new(opcode: DataOpcode, payload: &[u8]) -> Self {
        let (header, header_len) = frame_header(opcode, payload.len());
        let mut bytes = BytesMut::with_capacity(header_len + payload.len());
        bytes.extend_from_slice(&header[..header_len]);
        bytes.extend_from_slice(payload);
        Self {
            bytes: bytes.freeze(),
            header_len: header_len as u8,
        }
    }

    pub(crate) fn text(text: &str) -> Self {
        Self::new(DataOpcode::Text, text.as_bytes())
    }

    pub(crate) fn binary(payload: &[u8]) -> Self {
        Self::new(DataOpcode::Binary, payload)
    }

    /// The end of a frame whose beginning is already on the wire.
    pub(crate) fn rest(bytes: Bytes) -> Self {
        Self {
            bytes,
            header_len: 0,
        }
    }

    /// Whether this is a whole frame, not the [`Frame::rest`] of one.
    pub(crate) fn is_whole(&self) -> bool {
        self.header_len > 0
    }

    /// The bytes on the wire.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The payload's length (what the traffic counters count).
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - usize::from(self.header_len)
    }

    /// The payload, for tests.
    #[cfg(test)]
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[usize::from(self.header_len)..]
    }
}

/// Most buffers handed to one vectored write (Linux allows 1024).
const MAX_IOVECS: usize = 64;

impl Wire {
    /// Writes one whole, unfragmented, unmasked data frame: the header and
    /// the payload go out in one vectored write, the payload straight from
    /// its shared buffer.
    ///
    /// The caller must have flushed tungstenite first, so frames leave in
    /// order; tungstenite never holds part of a frame after a flush.
    pub(crate) async fn write_frame(
        &mut self,
        opcode: DataOpcode,
        payload: &[u8],
    ) -> io::Result<()> {
        let (header, header_len) = frame_header(opcode, payload.len());
        self.write_all_vectored(&[&header[..header_len], payload])
            .await
    }

    /// Writes encoded frames back to back, as few system calls as the
    /// socket allows (one, usually). Same ordering rule as
    /// [`Wire::write_frame`]. Hands the socket back to the other writer
    /// when done.
    pub(crate) async fn write_frames(&mut self, frames: &[Frame]) -> io::Result<()> {
        self.write_all_vectored(frames).await?;
        self.hand_back();
        Ok(())
    }

    /// Writes every byte of `parts`, in order, with vectored writes.
    ///
    /// The `IoSlice` array lives only inside each poll, on the stack: kept
    /// across the `.await` it would be 1 KiB of every connection's future
    /// (it was: 6.4 → 7.1 KiB per idle connection).
    async fn write_all_vectored<T: AsRef<[u8]>>(&mut self, parts: &[T]) -> io::Result<()> {
        let mut parts = parts;
        // How much of `parts[0]` has been written.
        let mut offset = 0;
        while let Some(first) = parts.first() {
            let written = std::future::poll_fn(|cx| {
                let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
                let n = parts.len().min(MAX_IOVECS);
                slices[0] = io::IoSlice::new(&first.as_ref()[offset..]);
                for (slice, part) in slices[1..n].iter_mut().zip(&parts[1..n]) {
                    *slice = io::IoSlice::new(part.as_ref());
                }
                // Through our own `poll_write_vectored`: it takes the
                // socket over from the other writer first.
                Pin::new(&mut *self).poll_write_vectored(cx, &slices[..n])
            })
            .await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            // Step past what was written: whole parts, then into one.
            let mut written = written;
            while let Some(first) = parts.first() {
                let left = first.as_ref().len() - offset;
                if written < left {
                    offset += written;
                    break;
                }
                written -= left;
                offset = 0;
                parts = &parts[1..];
            }
        }
        Ok(())
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
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
            // Into the uninitialised spare capacity: no zeroing.
            let read = poll_io(&this.tcp, cx, TcpStream::poll_read_ready, |tcp| {
                tcp.try_read_buf(&mut this.ahead)
            });
            match ready!(read)? {
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

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(shared) = &this.shared {
            ready!(shared.poll_take_over(&this.tcp, cx))?;
        }
        poll_io(&this.tcp, cx, TcpStream::poll_write_ready, |tcp| {
            tcp.try_write(buf)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(shared) = &this.shared {
            ready!(shared.poll_take_over(&this.tcp, cx))?;
        }
        poll_io(&this.tcp, cx, TcpStream::poll_write_ready, |tcp| {
            tcp.try_write_vectored(bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// TCP has nothing to flush. tungstenite calls this only once its whole
    /// buffer is written, so none of its frames is partly written: the
    /// other writer may have the socket back.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().hand_back();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket is shared, so no `&mut TcpStream` to call its own.
        let socket = socket2::SockRef::from(&*self.tcp);
        Poll::Ready(socket.shutdown(std::net::Shutdown::Write))
    }
}

/// One non-blocking operation on the shared socket, retried until it does
/// not report `WouldBlock` (readiness is cleared by the failed attempt, so
/// the retry waits for the next readiness event).
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    /// The bytes tungstenite itself would write for a final, unmasked frame.
    fn reference(opcode: Data, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        WsFrame::message(payload.to_vec(), OpCode::Data(opcode), true)
            .format(&mut out)
            .expect("formats into a Vec");
        out
    }

    #[test]
    fn frames_encode_like_tungstenite_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x1_0000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = Frame::binary(&payload);
            assert_eq!(&frame.bytes[..], reference(Data::Binary, &payload), "{len}");
            assert_eq!(frame.payload_len(), len);
            assert_eq!(frame.payload(), &payload[..]);
        }
        let text = Frame::text("héllo");
        assert_eq!(&text.bytes[..], reference(Data::Text, "héllo".as_bytes()));
    }

    /// More frames than one vectored write takes, and more bytes than the
    /// socket buffers, so writes come back partial: every byte must still
    /// arrive once and in order.
    #[tokio::test]
    async fn write_frames_survives_partial_writes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let frames: Vec<Frame> = (0..3 * MAX_IOVECS)
            .map(|i| Frame::binary(&vec![i as u8; 1 + i * 997]))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.bytes.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut peer = TcpStream::connect(address).await.expect("connect");
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut wire = Wire::new(tcp, 1024, &[]);
        wire.write_frames(&frames).await.expect("write");
        wire.shutdown().await.expect("shutdown");
        drop(wire);
        let got = reader.await.expect("reader");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }
}
