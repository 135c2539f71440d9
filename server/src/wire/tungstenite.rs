//! What Duplex relies on in tungstenite, beyond its documented API.
//!
//! The Wire works around, or leans on, these behaviours of tungstenite
//! 0.30 (pinned exactly, with tokio-tungstenite, in the workspace's
//! Cargo.toml). Each has a test here, so an upgrade that changes one fails
//! loudly instead of silently costing speed, memory or correctness:
//!
//! 1. **It zero-fills its read buffer before every read call**, as much of
//!    it as `read_buffer_size` allows. Hence [`FRAME_CHUNK`](crate::config::FRAME_CHUNK): a small buffer
//!    for tungstenite, and the Wire's own read-ahead filled by the kernel
//!    without zeroing. If this changes, the read-ahead may be pointless.
//! 2. **It calls flush on the stream only once its write buffer is
//!    written**, so at a flush it holds no part of a frame
//!    (`Wire::owes` is cleared there).
//! 3. **Nothing stays buffered after a flush returns**: our own frames may
//!    follow at once without overtaking any of its.
//! 4. **It writes during reads**: a read answers a ping (or a Close) by
//!    writing the pong itself, so the Wire takes the socket's turn on every
//!    write, not only when the session writes.
//! 5. **Its read buffer never shrinks** after a large frame. Hence the codec
//!    renewal (`frame_scan`); the test is `tests/large_frame_memory.rs`,
//!    which measures the server's memory after large messages.

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use duplex_protocol::frame::{Header, OpCode, encode_frame};
    use futures_util::{FutureExt, SinkExt, StreamExt};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use crate::config::Config;
    use crate::config::FRAME_CHUNK;

    /// A stream that serves `input`, takes at most `max_write` bytes per
    /// write, and records what tungstenite asked of it.
    #[derive(Default)]
    struct Probe {
        input: Vec<u8>,
        written: Vec<u8>,
        max_write: usize,
        /// Per read call: the buffer's size and how much of it was
        /// initialised (zeroed) when we got it.
        reads: Vec<(usize, usize)>,
        /// Per flush call: bytes written by then.
        flushes: Vec<usize>,
    }

    impl Probe {
        fn new(input: Vec<u8>, max_write: usize) -> Self {
            Self {
                input,
                max_write,
                ..Self::default()
            }
        }
    }

    impl AsyncRead for Probe {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let (size, zeroed) = (
                buf.remaining(),
                buf.initialized().len() - buf.filled().len(),
            );
            self.reads.push((size, zeroed));
            if self.input.is_empty() {
                return Poll::Pending;
            }
            let n = self.input.len().min(buf.remaining());
            buf.put_slice(&self.input[..n]);
            self.input.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Probe {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max_write);
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let written = self.written.len();
            self.flushes.push(written);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A masked client frame, from the one frame codec.
    fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = Header::new(opcode, payload.len() as u64).masked([0x37, 0xfa, 0x21, 0x3d]);
        let mut out = Vec::new();
        encode_frame(&mut out, &header, payload);
        out
    }

    async fn server_over(probe: Probe) -> WebSocketStream<Probe> {
        let config = Config::default().websocket();
        WebSocketStream::from_raw_socket(probe, Role::Server, Some(config)).await
    }

    #[tokio::test]
    async fn reads_come_with_a_zeroed_buffer_of_frame_chunk_bytes() {
        let probe = Probe::new(client_frame(OpCode::Text, b"hello"), usize::MAX);
        let mut ws = server_over(probe).await;
        let message = ws.next().await.expect("a message").expect("valid");
        assert_eq!(message, Message::text("hello"));
        let reads = &ws.get_ref().reads;
        assert!(!reads.is_empty());
        for &(size, zeroed) in reads {
            assert_eq!(size, FRAME_CHUNK, "tungstenite's read size changed");
            assert_eq!(
                zeroed, size,
                "tungstenite no longer zero-fills: revisit the read-ahead"
            );
        }
    }

    #[tokio::test]
    async fn flush_reaches_the_stream_only_once_everything_is_written() {
        // Every frame goes out in pieces.
        let probe = Probe::new(Vec::new(), 7);
        let mut ws = server_over(probe).await;
        for n in 0..20 {
            ws.feed(Message::text(format!("message {n}")))
                .await
                .expect("feed");
        }
        ws.flush().await.expect("flush");
        let probe = ws.get_ref();
        // Where each frame ends in the byte stream: a flush may only come
        // at one of these, with every frame fed before it written.
        let ends: Vec<usize> = (0..20)
            .scan(0, |end, n| {
                *end += 2 + format!("message {n}").len();
                Some(*end)
            })
            .collect();
        let total = probe.written.len();
        assert_eq!(Some(&total), ends.last(), "not everything was written");
        assert_eq!(
            probe.flushes.last(),
            Some(&total),
            "the last flush left bytes behind"
        );
        assert!(
            probe.flushes.iter().all(|at| *at == 0 || ends.contains(at)),
            "a flush came while tungstenite held part of a frame: {:?}",
            probe.flushes
        );
    }

    #[tokio::test]
    async fn a_read_writes_the_answer_to_a_ping() {
        let probe = Probe::new(client_frame(OpCode::Ping, b"are you there"), usize::MAX);
        let mut ws = server_over(probe).await;
        // The ping is a message; the next read answers it, and then finds
        // no more input.
        let ping = ws.next().await.expect("a message").expect("valid");
        assert!(ping.is_ping());
        assert!(ws.next().now_or_never().is_none(), "no more input");
        let written = &ws.get_ref().written;
        assert_eq!(
            written.first(),
            Some(&0x8A),
            "no pong written during the read"
        );
        assert!(written.ends_with(b"are you there"));
    }
}
