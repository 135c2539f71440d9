//! One client's bounded queue of room messages, the slow-client policy, and
//! the direct path to its socket.
//!
//! Publishers never wait on a receiver: [`Outbox::push`] only takes a short
//! lock, so a client that stops reading cannot delay its room.
//!
//! **Direct writes.** When the client's session is not writing and nothing
//! is queued, `push` writes the frame straight to the socket (one
//! non-blocking system call) instead of queueing it and waking the session.
//! At 10,000 members that saves 10,000 task wake-ups per publish: perf put
//! the queue-and-wake path at ~7.6 µs per delivery on one core against
//! ~3.9 µs for a bare loop of socket writes. The session takes the socket
//! back before each write of its own ([`SharedWriter`]), and finishes
//! first any frame `push` could only partly write, so frames never
//! interleave; anything that cannot be written at once is queued as before,
//! in order. When the
//! queue is full the oldest message is dropped and counted; the client is
//! told how many it missed before its next message. Once it has missed more
//! than the configured threshold without catching up, the outbox is
//! *kicked*: its session closes the connection with 1013.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use duplex_protocol::ServerMessage;
use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::hub::frame;
use crate::stats::Traffic;
use crate::wire::{Frame, SharedWriter};

/// A client's queue of messages from its rooms.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Set by a push, cleared by the session when it looks: a push while
    /// the session is busy is not overlooked.
    signal: AtomicBool,
    /// The session's waker, woken by the push that sets `signal`. Cheaper
    /// than a `Notify` (no waiter list under a lock, nothing to allocate
    /// per wait): the wake-up is paid once per delivery, so at 10,000
    /// members it is paid 10,000 times per publish.
    waker: AtomicWaker,
    /// Set when the client falls too far behind. An atomic, not a
    /// `CancellationToken`: it is read on every push, and the token's
    /// `is_cancelled` takes a lock (9% of the server's time in a 10,000
    /// member fan-out).
    kicked: AtomicBool,
    /// Wakes a session blocked writing to the client's full socket when
    /// `kicked` is set.
    kick: Notify,
    /// Most messages queued (`--client-queue`).
    capacity: usize,
    /// Missed messages that get the client closed (`--slow-client-missed`).
    max_missed: u64,
    /// The client's socket, once its session shares it.
    socket: OnceLock<Arc<TcpStream>>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    /// Dropped since the session last took from the queue.
    missed: u64,
    /// Whether the session holds the socket: it is writing, or has frames
    /// to write. `push` writes directly only when it does not.
    session_writes: bool,
    /// The rest of a frame `push` wrote partly: the next bytes on the
    /// wire, whoever writes next.
    partial: Option<Bytes>,
    /// Set when the session starts closing: nothing is written or queued
    /// after its Close frame.
    closed: bool,
    /// Messages `push` wrote directly, for the session's log line.
    sent: Traffic,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, max_missed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(16)),
                missed: 0,
                // Until it hands the socket over after its first write.
                session_writes: true,
                partial: None,
                closed: false,
                sent: Traffic::default(),
            }),
            signal: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            kicked: AtomicBool::new(false),
            kick: Notify::new(),
            capacity,
            max_missed,
            socket: OnceLock::new(),
        }
    }

    /// Lets `push` write to `socket` directly, between the session's
    /// writes. Until then (and in unit tests) every frame is queued.
    pub(crate) fn share_socket(&self, socket: Arc<TcpStream>) {
        let _ = self.socket.set(socket);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the queue inconsistent: every
        // critical section is a single push or take.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `frame` to the socket if the session is not writing and
    /// nothing is queued; otherwise queues it (a cheap clone of shared
    /// bytes), dropping the oldest if the queue is full. Never waits.
    pub(crate) fn push(&self, frame: Frame) {
        if self.is_kicked() {
            return;
        }
        let mut state = self.state();
        if state.closed {
            return;
        }
        if !state.session_writes
            && state.queue.is_empty()
            && self.write_directly(&mut state, &frame)
        {
            if state.partial.is_some() {
                // The socket is full: the session finishes the frame.
                drop(state);
                self.wake();
            }
            return;
        }
        if state.queue.len() >= self.capacity {
            state.queue.pop_front();
            state.missed += 1;
            if state.missed > self.max_missed {
                // The session closes with 1013: nothing more to tell it.
                state.queue.clear();
                state.missed = 0;
                drop(state);
                self.kicked.store(true, Ordering::Release);
                // Wake the session, idle or blocked in a write.
                self.kick.notify_one();
                self.wake();
                return;
            }
        }
        state.queue.push_back(frame);
        drop(state);
        self.wake();
    }

    /// Writes `frame` to the socket without waiting; false if nothing could
    /// be written (the socket is full, or failing: then the session's own
    /// write waits for room, or meets the error and ends the connection).
    /// What the socket could not take is left in `partial`, and the session
    /// holds the socket until it has written it.
    fn write_directly(&self, state: &mut State, frame: &Frame) -> bool {
        let Some(socket) = self.socket.get() else {
            return false;
        };
        let bytes = frame.bytes();
        // Straight to send(2), not `try_write`: that first reads the
        // runtime's readiness record, one more cache miss per member (perf:
        // 10% of a 10,000-member fan-out). A stale readiness is harmless:
        // the session's next write finds the socket full and waits.
        let Ok(written) = socket2::SockRef::from(&**socket).send(bytes) else {
            return false;
        };
        state.sent.sent(frame.payload_len());
        if written < bytes.len() {
            state.partial = Some(bytes.slice(written..));
            state.session_writes = true;
        }
        true
    }

    /// Tells the session to look, waking it unless a signal is pending
    /// already (then it has not looked yet and will see this push too).
    fn wake(&self) {
        if !self.signal.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Moves what the session must write next into `into` (a buffer it
    /// reuses, so taking allocates nothing): the rest of a partly written
    /// frame, a `missed` notice if messages were dropped, then up to `max`
    /// messages, oldest first. Returns how many were missed. The session
    /// holds the socket from here until it hands it back; if more remain,
    /// it is woken again for them.
    pub(crate) fn take_into(&self, max: usize, into: &mut Vec<Frame>) -> u64 {
        let mut state = self.state();
        state.session_writes = true;
        into.extend(state.partial.take().map(Frame::rest));
        let missed = std::mem::take(&mut state.missed);
        if missed > 0 {
            into.push(frame(&ServerMessage::Missed { count: missed }));
        }
        let n = state.queue.len().min(max);
        into.extend(state.queue.drain(..n));
        let more = !state.queue.is_empty();
        drop(state);
        if more {
            // The session is the caller: setting the flag is enough for its
            // next look.
            self.signal.store(true, Ordering::Release);
        }
        missed
    }

    /// Ready when messages may be waiting (possibly spuriously: take then
    /// finds none). Only the session polls this; each poll registers its
    /// waker, so it may be polled from a new task context at any time.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A push between the swap and the registration woke no one.
        if self.signal.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// The session has started buffering messages of its own (replies, in
    /// tungstenite): deliveries queue behind them until it hands the socket
    /// back, so a `joined` still buffered reaches the client before the
    /// room's messages.
    pub(crate) fn hold(&self) {
        self.state().session_writes = true;
    }

    /// Stops deliveries for good: the session is closing the connection,
    /// and no data frame may follow its Close.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.queue.clear();
    }

    /// What `push` wrote directly, for the session's log line.
    pub(crate) fn sent(&self) -> Traffic {
        self.state().sent
    }

    /// Whether the slow-client threshold was crossed.
    pub(crate) fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }

    /// Resolves when the slow-client threshold is crossed. Cancel-safe:
    /// the kick is a stored permit until a call here consumes it.
    pub(crate) async fn kicked(&self) {
        if self.is_kicked() {
            return;
        }
        self.kick.notified().await;
    }
}

impl SharedWriter for Outbox {
    fn poll_take_over(&self, tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state();
        state.session_writes = true;
        while let Some(rest) = state.partial.as_mut() {
            match tcp.try_write(rest) {
                Ok(written) if written == rest.len() => state.partial = None,
                Ok(written) => rest.advance(written),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // `push` leaves the socket alone meanwhile.
                    drop(state);
                    ready!(tcp.poll_write_ready(cx))?;
                    state = self.state();
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn hand_back(&self) {
        let mut state = self.state();
        // Queued frames are the session's to write, in order, first.
        if state.queue.is_empty() && state.partial.is_none() && state.missed == 0 {
            state.session_writes = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one take returns: the messages and the missed count.
    pub(crate) struct Batch {
        pub(crate) messages: Vec<Frame>,
        pub(crate) missed: u64,
    }

    impl Outbox {
        pub(crate) fn take(&self, max: usize) -> Batch {
            let mut messages = Vec::new();
            let missed = self.take_into(max, &mut messages);
            Batch { messages, missed }
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let outbox = Outbox::new(2, 10);
        for i in 0..5 {
            outbox.push(Frame::text(&i.to_string()));
        }
        let batch = outbox.take(10);
        assert_eq!(batch.missed, 3);
        let texts: Vec<_> = batch.messages.iter().map(Frame::payload).collect();
        // The notice comes first, then the newest messages.
        assert_eq!(texts, [&br#"{"type":"missed","count":3}"#[..], b"3", b"4"]);
        assert_eq!(outbox.take(10).missed, 0, "the count resets once told");
        assert!(!outbox.is_kicked());
    }

    #[test]
    fn missing_more_than_the_threshold_kicks() {
        let outbox = Outbox::new(1, 3);
        for i in 0..4 {
            outbox.push(Frame::text(&i.to_string()));
        }
        assert!(
            !outbox.is_kicked(),
            "3 missed is the threshold, not over it"
        );
        outbox.push(Frame::text("4"));
        assert!(outbox.is_kicked());
        assert!(outbox.take(10).messages.is_empty());
    }

    /// Counts wake-ups, standing in for the session's task.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_push_wakes_the_waiting_session_once_and_is_never_missed() {
        let outbox = Outbox::new(8, 8);
        let count = std::sync::Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(std::sync::Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let woken = || count.0.load(Ordering::SeqCst);
        assert!(outbox.poll_ready(&mut cx).is_pending());
        outbox.push(Frame::text("a"));
        outbox.push(Frame::text("b"));
        assert_eq!(woken(), 1, "the second push finds the signal set");
        assert!(outbox.poll_ready(&mut cx).is_ready());
        // Taking one of two leaves the signal set for the rest.
        assert_eq!(outbox.take(1).messages.len(), 1);
        assert!(outbox.poll_ready(&mut cx).is_ready());
        assert_eq!(outbox.take(1).messages.len(), 1);
        assert!(outbox.poll_ready(&mut cx).is_pending());
        // The pending look registered the waker again: a later push wakes.
        outbox.push(Frame::text("c"));
        assert!(outbox.poll_ready(&mut cx).is_ready());
        assert_eq!(woken(), 2);
    }

    /// The window the session's take-over closes: a frame of the session
    /// is partly on the wire, the peer reads and the socket has room
    /// again, and a delivery comes. It must be queued behind the rest of
    /// the session's frame, not written into the middle of it.
    #[tokio::test]
    async fn a_delivery_waits_while_a_session_frame_is_partly_written() {
        use std::pin::Pin;
        use std::task::Waker;
        use tokio::io::{AsyncReadExt, AsyncWrite};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut peer = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut wire = crate::wire::Wire::new(tcp, 1024, &[]);
        let outbox = Arc::new(Outbox::new(8, 8));
        outbox.share_socket(Arc::clone(wire.socket()));
        wire.share_with(Arc::clone(&outbox) as _);
        outbox.hand_back(); // the session's start-up writes are done

        // The session writes a big frame until the socket is full.
        let big = vec![7u8; 64 << 20];
        let mut cx = Context::from_waker(Waker::noop());
        let mut written = 0;
        while let Poll::Ready(result) = Pin::new(&mut wire).poll_write(&mut cx, &big[written..]) {
            written += result.expect("write");
            assert!(written < big.len(), "the socket took 64 MiB");
        }
        assert!(written > 0, "nothing of the frame was written");
        // The peer reads half of what is on the wire: the socket has room
        // again, and the session's frame is still unfinished.
        let mut buf = vec![0u8; 64 << 10];
        let mut read = 0;
        while read < written / 2 {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), peer.read(&mut buf))
                .await
                .expect("read timed out")
                .expect("read");
            assert!(n > 0, "the connection ended");
            read += n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        outbox.push(Frame::text("delivery"));
        let batch = outbox.take(8);
        assert_eq!(batch.messages.len(), 1, "written into the session's frame");
        assert_eq!(batch.messages[0].payload(), b"delivery");
    }

    #[test]
    fn catching_up_resets_the_count() {
        let outbox = Outbox::new(1, 2);
        for round in 0..10 {
            outbox.push(Frame::text(&format!("{round}a")));
            outbox.push(Frame::text(&format!("{round}b")));
            assert_eq!(outbox.take(10).missed, 1);
        }
        assert!(!outbox.is_kicked());
    }
}
