//! The socket's turn: who may write to a rooms member's socket, and when.
//!
//! Two writers share the socket of a `/ws` member: its session (replies,
//! pongs, queued deliveries, the Close) and the hub, which writes a room's
//! message straight to an idle member's socket from the publisher's task
//! (`rooms::outbox`), saving the member's task a wake-up per message. Three
//! promises rest on who writes when:
//!
//! 1. frames never interleave: every frame is written whole, or its rest
//!    is the next bytes on the wire, whoever writes next;
//! 2. a member's answers keep their place: once the session is handling
//!    an event (say a `join`, whose `joined` must precede the room's
//!    messages) the hub writes nothing until the session is done;
//! 3. nothing follows the Close, and the Close follows only whole frames.
//!
//! [`Turn`] is that decision, as a state machine. Its keeper (the outbox)
//! holds it under the lock that also guards the delivery queue, so "the
//! queue is empty and the hub may write" is one atomic look; the session's
//! [`Wire`](super::Wire) takes the turn before each of its writes
//! ([`TurnKeeper::claim`]), and holds it while an answer of its own must
//! keep its place ([`Turn::hold`]).
//!
//! ```text
//!          claim (the session writes) or hold (it will answer a join)
//!        ┌───────────────────────────────────────────────┐
//!        │                                               ▼
//!       Hub ◄──── release (waiting, all written, ──── Session
//!        │         none queued)                          ▲
//!        │                                               │ claim: the rest
//!        └── hub_send: part written ──► HubPartial(rest) ┘ goes to the Wire,
//!                                                          written first
//!   close, from any state ──► Closed (a HubPartial rest goes to the Wire)
//! ```
//!
//! Invariants, each tested below:
//! - the hub writes only in [`Turn::Hub`], one frame per `send(2)`; when the
//!   socket takes only part of it, the rest is held and the hub writes no
//!   more until the session has written that rest;
//! - [`Turn::Hub`] is entered only from [`Turn::Session`], by the session,
//!   when it waits with nothing to write (its caller checks tungstenite's
//!   buffer, the Wire's rest and the queue);
//! - [`Turn::Closed`] is never left.

use std::fmt;

use bytes::Bytes;
use tokio::net::TcpStream;

/// Who may write to a shared socket next.
#[derive(Debug, Default)]
pub(crate) enum Turn {
    /// The session: it is handling an event or has bytes to write. The hub
    /// queues. A connection starts here: its greeting goes first.
    #[default]
    Session,
    /// The hub: the session waits with nothing to write, so a delivery is
    /// written straight to the socket.
    Hub,
    /// The hub wrote part of a frame (the socket was full). These bytes
    /// must be the next on the wire; the session writes them once it
    /// claims the turn, and the hub queues until then.
    HubPartial(Bytes),
    /// The session is closing: the hub never writes or queues again.
    Closed,
}

/// What [`Turn::hub_send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HubSend {
    /// The whole frame is on the wire.
    Written,
    /// Part of it: the session must be woken to write the rest.
    Partial,
    /// Nothing: the turn is not the hub's, or the socket is full or
    /// failing (the session's own write then waits, or meets the error).
    /// Queue the frame.
    NotNow,
}

impl Turn {
    /// Whether the hub may write now.
    pub(crate) fn hub_may_write(&self) -> bool {
        matches!(self, Self::Hub)
    }

    /// Whether the session has started closing.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// The hub writes one whole, encoded frame, if the turn is its own.
    /// Never waits.
    pub(crate) fn hub_send(&mut self, tcp: &TcpStream, frame: &Bytes) -> HubSend {
        if !self.hub_may_write() {
            return HubSend::NotNow;
        }
        // Straight to send(2), not `try_write`: that first reads the
        // runtime's readiness record, one more cache miss per member (perf:
        // 10% of a 10,000-member fan-out). A stale readiness is harmless:
        // the session's next write finds the socket full and waits.
        match socket2::SockRef::from(tcp).send(frame) {
            Ok(written) if written == frame.len() => HubSend::Written,
            Ok(written) if written > 0 => {
                *self = Self::HubPartial(frame.slice(written..));
                HubSend::Partial
            }
            Ok(_) | Err(_) => HubSend::NotNow,
        }
    }

    /// The session takes the turn (it woke up, or is about to write).
    /// Returns the rest of a frame the hub left partly written: it must be
    /// the next bytes on the wire.
    pub(crate) fn claim(&mut self) -> Option<Bytes> {
        match self {
            Self::Closed | Self::Session => None,
            Self::Hub => {
                *self = Self::Session;
                None
            }
            Self::HubPartial(_) => match std::mem::replace(self, Self::Session) {
                Self::HubPartial(rest) => Some(rest),
                _ => None,
            },
        }
    }

    /// The session is about to buffer an answer that must keep its place
    /// before the room's messages (a `joined`, before the join takes
    /// effect): the hub writes no more. Unlike [`Turn::claim`] it hands
    /// nothing over: a rest the hub left stays for the Wire's next claim.
    pub(crate) fn hold(&mut self) {
        if matches!(self, Self::Hub) {
            *self = Self::Session;
        }
    }

    /// The session waits with nothing to write and nothing queued: the hub
    /// may write again. Returns whether the hub holds the turn now.
    pub(crate) fn release(&mut self) -> bool {
        if matches!(self, Self::Session) {
            *self = Self::Hub;
        }
        self.hub_may_write()
    }

    /// The session starts closing. Returns the rest of a frame the hub left
    /// partly written, which must precede the Close.
    pub(crate) fn close(&mut self) -> Option<Bytes> {
        match std::mem::replace(self, Self::Closed) {
            Self::HubPartial(rest) => Some(rest),
            Self::Session | Self::Hub | Self::Closed => None,
        }
    }
}

/// What the session's [`Wire`](super::Wire) needs of the turn's keeper (the
/// rooms outbox, which keeps the [`Turn`] under its queue's lock).
pub(crate) trait TurnKeeper: Send + Sync + fmt::Debug {
    /// [`Turn::claim`] under the keeper's lock.
    fn claim(&self) -> Option<Bytes>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A connected pair: the server side (whose send buffer is small, so it
    /// fills) and the peer.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        socket2::SockRef::from(&tcp)
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF");
        (tcp, peer)
    }

    /// A turn whose hub wrote part of a frame of `byte`s too big for the
    /// socket, and the frame.
    fn hub_partial(tcp: &TcpStream, byte: u8) -> (Turn, Bytes) {
        let mut turn = Turn::default();
        turn.release();
        let big = Bytes::from(vec![byte; 8 << 20]);
        assert_eq!(turn.hub_send(tcp, &big), HubSend::Partial);
        (turn, big)
    }

    #[test]
    fn a_connection_starts_with_the_session_and_the_hub_waits() {
        let mut turn = Turn::default();
        assert!(!turn.hub_may_write(), "the greeting goes first");
        assert_eq!(turn.claim(), None);
        assert!(turn.release());
        assert!(turn.hub_may_write());
    }

    #[tokio::test]
    async fn the_hub_writes_only_when_the_turn_is_its_own() {
        let (tcp, mut peer) = pair().await;
        let mut turn = Turn::default();
        let frame = Bytes::from_static(b"\x81\x02hi");
        assert_eq!(turn.hub_send(&tcp, &frame), HubSend::NotNow);
        turn.release();
        assert_eq!(turn.hub_send(&tcp, &frame), HubSend::Written);
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"\x81\x02hi");
        // The session wakes: the hub waits again.
        assert_eq!(turn.claim(), None);
        assert_eq!(turn.hub_send(&tcp, &frame), HubSend::NotNow);
    }

    #[tokio::test]
    async fn holding_stops_the_hub_and_leaves_a_rest_for_the_claim() {
        let (tcp, _peer) = pair().await;
        let mut turn = Turn::default();
        turn.release();
        turn.hold();
        assert!(!turn.hub_may_write(), "held: the hub queues");
        assert!(turn.release(), "released once the answer is written");
        let big = Bytes::from(vec![2u8; 8 << 20]);
        assert_eq!(turn.hub_send(&tcp, &big), HubSend::Partial);
        turn.hold();
        assert!(matches!(turn, Turn::HubPartial(_)), "the rest is kept");
        assert!(turn.claim().is_some());
        turn.close();
        turn.hold();
        assert!(turn.is_closed(), "closed for good");
    }

    #[tokio::test]
    async fn a_partly_written_frame_stops_the_hub_and_its_rest_goes_to_the_session() {
        let (tcp, _peer) = pair().await;
        let (mut turn, big) = hub_partial(&tcp, 7);
        assert!(!turn.hub_may_write(), "the hub waits for the rest");
        assert_eq!(turn.hub_send(&tcp, &big), HubSend::NotNow);
        assert!(!turn.release(), "release does not skip the rest");
        let rest = turn.claim().expect("the rest");
        assert!(!rest.is_empty() && rest.len() < big.len());
        assert!(rest.iter().all(|&b| b == 7));
        assert_eq!(turn.claim(), None, "handed over once");
    }

    #[tokio::test]
    async fn a_full_socket_is_not_a_write() {
        let (tcp, _peer) = pair().await;
        // Fill the socket until it takes nothing more.
        let chunk = vec![1u8; 64 << 10];
        for _ in 0..10_000 {
            if socket2::SockRef::from(&tcp).send(&chunk).is_err() {
                break;
            }
        }
        let mut turn = Turn::default();
        turn.release();
        // Nothing fits: nothing is written, the turn stays the hub's.
        let frame = Bytes::from_static(b"\x81\x02hi");
        assert_eq!(turn.hub_send(&tcp, &frame), HubSend::NotNow);
        assert!(turn.hub_may_write());
    }

    #[tokio::test]
    async fn closing_ends_the_hubs_turn_for_good_and_keeps_a_rest_first() {
        let (tcp, _peer) = pair().await;
        let (mut turn, big) = hub_partial(&tcp, 3);
        assert!(turn.close().is_some(), "the rest precedes the Close");
        assert!(turn.is_closed());
        assert_eq!(turn.claim(), None);
        assert!(!turn.release());
        assert_eq!(turn.hub_send(&tcp, &big), HubSend::NotNow);
        assert!(turn.is_closed());
    }
}
