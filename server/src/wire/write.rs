//! The Wire's own writes: whole data frames that skip tungstenite's write
//! buffer (a room's encoded deliveries, large replies), and the rest of a
//! frame a write could take only part of.
//!
//! **Cancel-safe at every await.** A write may be given up half way: a
//! slow member's delivery loses the race against its kick, a write meets
//! its timeout. Whatever part of a frame is on the wire by then, its rest
//! is already in [`Wire`]'s `rest`, moved there in the same poll as the
//! partial write, and every later write (tungstenite's Close included)
//! writes it first. Frames not yet started are simply not written. So the
//! peer never sees a frame cut short by another (issue 10, defect 1: a
//! kick used to leave a local offset behind, and the Close went into the
//! middle of a data frame).

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll, ready};

use super::Wire;
use super::frame::{DataOpcode, Frame, frame_header};
use crate::transport::Transport;
use bytes::{Buf, Bytes};

/// Most buffers handed to one vectored write (Linux allows 1024). The
/// `IoSlice` array lives on the stack of one poll, never in a future: kept
/// across an `.await` it would be 1 KiB of every connection's future.
pub(super) const MAX_IOVECS: usize = 64;

impl Wire {
    /// Writes whole, encoded frames back to back, in as few system calls
    /// as the socket allows (one, usually), after the rest of any frame
    /// partly written. With no frames, writes only that rest.
    ///
    /// The caller must have flushed tungstenite first, so frames leave in
    /// order ([`Wire::owes`]).
    pub(crate) async fn write_frames(&mut self, frames: &[Frame]) -> io::Result<()> {
        let mut frames = frames;
        poll_fn(|cx| {
            loop {
                ready!(self.poll_write_rest(cx))?;
                if frames.is_empty() {
                    return self.transport.poll_flush(cx);
                }
                let (slices, n) = io_slices(frames.iter().map(|frame| &frame.bytes()[..]));
                let written = ready!(writev(&mut self.transport, cx, &slices[..n]))?;
                // Step past whole frames; the rest of a cut one is kept.
                let mut written = written;
                while let Some(frame) = frames.first() {
                    let len = frame.bytes().len();
                    if written < len {
                        if written > 0 {
                            self.rest.push_back(frame.bytes().slice(written..));
                            frames = &frames[1..];
                        }
                        break;
                    }
                    written -= len;
                    frames = &frames[1..];
                }
            }
        })
        .await
    }

    /// Writes one whole, unfragmented, unmasked data frame: the header and
    /// the payload in one vectored write, the payload straight from its
    /// shared buffer (no copy into tungstenite's), RSV1 set if the payload
    /// is `compressed` (permessage-deflate). Same ordering rule as
    /// [`Wire::write_frames`].
    pub(crate) async fn write_frame(
        &mut self,
        opcode: DataOpcode,
        payload: Bytes,
        compressed: bool,
    ) -> io::Result<()> {
        let (header, header_len) = frame_header(opcode, payload.len(), compressed);
        let header = &header[..header_len];
        let mut started = false;
        poll_fn(|cx| {
            loop {
                ready!(self.poll_write_rest(cx))?;
                if started {
                    return self.transport.poll_flush(cx);
                }
                let slices = [io::IoSlice::new(header), io::IoSlice::new(&payload)];
                let written = ready!(writev(&mut self.transport, cx, &slices))?;
                started = true;
                if written < header.len() {
                    // Rare: the socket took less than a header.
                    self.rest
                        .push_back(Bytes::copy_from_slice(&header[written..]));
                    self.rest.push_back(payload.clone());
                } else if written - header.len() < payload.len() {
                    self.rest.push_back(payload.slice(written - header.len()..));
                }
            }
        })
        .await
    }

    /// Writes the rest of a partly written frame, if any, before anything
    /// else goes out; takes the turn from the hub first (and with it the
    /// rest of a frame the hub wrote partly).
    #[inline]
    pub(super) fn poll_write_rest(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.claim();
        if self.rest.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_rest_now(cx)
    }

    /// The rare part of [`Wire::poll_write_rest`], out of line: its `IoSlice`
    /// array would cost every write of every connection a larger frame
    /// (callgrind: +74 instructions per 20-byte echo when inlined).
    #[inline(never)]
    fn poll_write_rest_now(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.rest.is_empty() {
            let (slices, n) = io_slices(self.rest.iter().map(|part| &part[..]));
            let written = ready!(writev(&mut self.transport, cx, &slices[..n]))?;
            let mut written = written;
            while let Some(first) = self.rest.front_mut() {
                if written < first.len() {
                    first.advance(written);
                    break;
                }
                written -= first.len();
                self.rest.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// One vectored write (retried until the socket is not `WouldBlock`).
/// Fails with `WriteZero` if nothing could be written.
fn writev(
    transport: &mut Transport,
    cx: &mut Context<'_>,
    slices: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let written = ready!(transport.poll_writev(cx, slices))?;
    if written == 0 && slices.iter().any(|slice| !slice.is_empty()) {
        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
    }
    Poll::Ready(Ok(written))
}

/// The first [`MAX_IOVECS`] of `parts` as an array of `IoSlice`s on the
/// stack, and how many there are.
fn io_slices<'a>(parts: impl Iterator<Item = &'a [u8]>) -> ([io::IoSlice<'a>; MAX_IOVECS], usize) {
    let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
    let mut n = 0;
    for (slice, part) in slices.iter_mut().zip(parts) {
        *slice = io::IoSlice::new(part);
        n += 1;
    }
    (slices, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Wire, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let peer = TcpStream::connect(address).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        (Wire::new(Transport::plain(tcp), 1024, &[]), peer)
    }

    /// More frames than one vectored write takes, and more bytes than the
    /// socket buffers, so writes come back partial: every byte must still
    /// arrive once and in order.
    #[tokio::test]
    async fn write_frames_survives_partial_writes() {
        let (mut wire, mut peer) = pair().await;
        let frames: Vec<Frame> = (0..3 * MAX_IOVECS)
            .map(|i| Frame::binary(&vec![i as u8; 1 + i * 997]))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.bytes().to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        wire.write_frames(&frames).await.expect("write");
        wire.shutdown().await.expect("shutdown");
        drop(wire);
        let got = reader.await.expect("reader");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }

    /// A write given up half way (the future dropped while the socket is
    /// full) leaves the rest of its cut frame first in line: the next
    /// write, of anything, finishes it, and frames never started are not
    /// written. This is what lets a kick or a timeout end a write safely.
    #[tokio::test]
    async fn a_write_given_up_half_way_is_finished_by_the_next_one() {
        let (mut wire, mut peer) = pair().await;
        let big = Frame::binary(&vec![5u8; 16 << 20]);
        let never = Frame::binary(b"never started");
        let frames = [big.clone(), never];
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            wire.write_frames(&frames),
        )
        .await;
        assert!(cut.is_err(), "16 MiB fit in the socket");
        assert!(wire.owes(), "the rest is kept");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        // tungstenite's kind of write: plain bytes through AsyncWrite.
        wire.write_all(b"CLOSE").await.expect("write");
        assert!(!wire.owes());
        wire.shutdown().await.expect("shutdown");
        drop(wire);
        let got = reader.await.expect("reader");
        let mut expected = big.bytes().to_vec();
        expected.extend_from_slice(b"CLOSE");
        assert_eq!(got.len(), expected.len(), "the cut frame was not finished");
        assert!(got == expected, "bytes differ");
    }

    #[tokio::test]
    async fn write_frame_sends_header_and_payload_whole_after_a_cut() {
        let (mut wire, mut peer) = pair().await;
        let payload = Bytes::from(vec![9u8; 12 << 20]);
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            wire.write_frame(DataOpcode::Binary, payload.clone(), false),
        )
        .await;
        assert!(cut.is_err(), "12 MiB fit in the socket");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        wire.write_frame(DataOpcode::Text, Bytes::from_static(b"ok"), false)
            .await
            .expect("write");
        wire.shutdown().await.expect("shutdown");
        drop(wire);
        let got = reader.await.expect("reader");
        let mut expected = Frame::binary(&payload).bytes().to_vec();
        expected.extend_from_slice(Frame::text("ok").bytes());
        assert!(got == expected, "bytes differ");
    }
}
