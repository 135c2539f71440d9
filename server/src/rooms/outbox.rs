//! One client's bounded queue of room messages, and the slow-client policy.
//!
//! Publishers never wait on a receiver: [`Outbox::push`] only takes a short
//! lock, so a client that stops reading cannot delay its room. When the
//! queue is full the oldest message is dropped and counted; the client is
//! told how many it missed before its next message. Once it has missed more
//! than the configured threshold without catching up, the outbox is
//! *kicked*: its session closes the connection with 1013.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use crate::wire::Frame;

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
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    /// Dropped since the session last took from the queue.
    missed: u64,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, max_missed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(16)),
                missed: 0,
            }),
            signal: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            kicked: AtomicBool::new(false),
            kick: Notify::new(),
            capacity,
            max_missed,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the queue inconsistent: every
        // critical section is a single push or take.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame` (a cheap clone of shared bytes), dropping the
    /// oldest if the queue is full. Never waits.
    pub(crate) fn push(&self, frame: Frame) {
        if self.is_kicked() {
            return;
        }
        let mut state = self.state();
        if state.queue.len() >= self.capacity {
            state.queue.pop_front();
            state.missed += 1;
            if state.missed > self.max_missed {
                state.queue.clear();
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

    /// Tells the session to look, waking it unless a signal is pending
    /// already (then it has not looked yet and will see this push too).
    fn wake(&self) {
        if !self.signal.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Moves up to `max` messages, oldest first, into `into` (a buffer the
    /// session reuses, so taking allocates nothing) and returns how many
    /// were missed before them. If more remain, the session is woken again
    /// for them.
    pub(crate) fn take_into(&self, max: usize, into: &mut Vec<Frame>) -> u64 {
        let mut state = self.state();
        let n = state.queue.len().min(max);
        into.extend(state.queue.drain(..n));
        let missed = std::mem::take(&mut state.missed);
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
        assert_eq!(texts, [b"3", b"4"]);
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
