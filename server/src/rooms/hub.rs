//! The room registry: who is in which room, and fan-out.
//!
//! A published message is serialised once into a [`Frame`], the whole
//! WebSocket frame as it goes on the wire, reference-counted: 10,000
//! members cost 10,000 pointer copies, not 10,000 copies or encodings of
//! the bytes. [`Outbox::push`] writes the frame straight to an idle
//! member's socket without waiting, or queues it in the member's bounded
//! queue, so no member can delay a room. A room exists while it has
//! members: the last one to leave removes it.
//!
//! A room has one order: publishes take turns (a fair async lock per room),
//! so every member gets the room's messages in the same order, even when
//! members publish at the same moment on different worker threads. Without
//! it, two publishes delivered side by side reached the members of each
//! chunk in whichever order the two threads got there (test:
//! `rooms_order.rs`).
//!
//! Presence costs O(members) per join or leave, so a join storm costs
//! O(members²): rooms larger than `--presence-limit` send no join/leave
//! events and answer `joined` with the first members only (and the count).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use duplex_protocol::{ClientId, LeaveReason, Member, RoomInfo, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use super::outbox::Outbox;
use crate::wire::Frame;

/// Members a publish delivers to between two yields (~1-2 ms of socket
/// writes on loopback). Their outboxes are collected under the room's read
/// lock and written to after it is released, so a join or leave waits at
/// most for the collection; between chunks the publisher yields, so other
/// connections on its worker thread get a turn during a large fan-out
/// (issue 10, defect 2: a 10,000-member publish held its worker ~80 ms).
const PUBLISH_CHUNK: usize = 256;

/// Every room of the server.
#[derive(Debug)]
pub(crate) struct Hub {
    /// Held only to find, create or remove a room (and across a join or
    /// leave, so a room cannot be removed while someone joins it);
    /// publishing takes it just long enough to clone the room's `Arc`.
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    /// The last client id handed out; ids start at 1 (0 means "the HTTP
    /// API" in binary deliveries).
    last_id: AtomicU64,
    /// Rooms with more members than this get no presence events
    /// (`--presence-limit`).
    presence_limit: usize,
}

/// One room.
#[derive(Debug, Default)]
struct Room {
    /// By id, so member lists come out in a stable order. Read-locked by
    /// publishers, write-locked by joins and leaves.
    members: RwLock<BTreeMap<ClientId, Entry>>,
    /// Held by the publish being delivered. tokio's lock is fair (first
    /// come, first served), and a publisher waiting for its turn waits as
    /// a task, not as a blocked worker thread.
    turn: tokio::sync::Mutex<()>,
}

/// A member as the hub keeps it.
#[derive(Debug)]
struct Entry {
    name: String,
    outbox: Arc<Outbox>,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    AlreadyJoined,
}

impl Hub {
    pub(crate) fn new(presence_limit: usize) -> Self {
        Self {
            rooms: Mutex::default(),
            last_id: AtomicU64::new(0),
            presence_limit,
        }
    }

    /// A fresh client id.
    pub(crate) fn next_id(&self) -> ClientId {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds client `id` to `room` (creating it), tells the other members,
    /// and returns the member list (the first `--presence-limit` members),
    /// the new member included, and the member count.
    pub(crate) fn join(
        &self,
        room: &str,
        id: ClientId,
        name: &str,
        outbox: &Arc<Outbox>,
    ) -> Result<(Vec<Member>, usize), JoinError> {
        let mut rooms = self.rooms();
        let entry = rooms.entry(Arc::from(room)).or_default();
        let mut members = entry
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if members.contains_key(&id) {
            return Err(JoinError::AlreadyJoined);
        }
        let member = Member {
            id,
            name: name.to_owned(),
        };
        if members.len() < self.presence_limit {
            let event = frame(&ServerMessage::MemberJoined {
                room: room.to_owned(),
                member,
            });
            for other in members.values() {
                other.outbox.push(&event);
            }
        }
        members.insert(
            id,
            Entry {
                name: name.to_owned(),
                outbox: Arc::clone(outbox),
            },
        );
        Ok((list(&members, self.presence_limit), members.len()))
    }

    /// Removes client `id` from `room`, tells the others why, and removes
    /// the room if it is now empty. Returns whether it was a member.
    pub(crate) fn leave(&self, room: &str, id: ClientId, reason: LeaveReason) -> bool {
        let mut rooms = self.rooms();
        let Some(entry) = rooms.get(room) else {
            return false;
        };
        let mut members = entry
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(gone) = members.remove(&id) else {
            return false;
        };
        if members.is_empty() {
            drop(members);
            rooms.remove(room);
            return true;
        }
        if members.len() >= self.presence_limit {
            return true;
        }
        let event = frame(&ServerMessage::MemberLeft {
            room: room.to_owned(),
            member: Member {
                id,
                name: gone.name,
            },
            reason,
        });
        for other in members.values() {
            other.outbox.push(&event);
        }
        true
    }

    /// Delivers `frame` to every member of `room` (written or queued, see
    /// [`Outbox::push`]); returns to how many, or `None` if there is no
    /// such room.
    ///
    /// Members are taken [`PUBLISH_CHUNK`] at a time, in id order, each
    /// chunk collected under the read lock and written to after it: a
    /// publish to 10,000 members writes to 10,000 sockets (~40-80 ms), and
    /// neither a join waiting for the write lock nor the other connections
    /// of the publisher's worker thread may wait that long. Between chunks
    /// members come and go; a member that joins with a higher id gets the
    /// message, one that leaves before its chunk does not.
    ///
    /// Publishes to one room take turns in the order they arrive, so the
    /// room's messages reach every member in one order; a publisher waits
    /// for the deliveries before its own (at most one per other publisher
    /// waiting: each waits for its own).
    pub(crate) async fn publish(&self, room: &str, frame: &Frame) -> Option<usize> {
        let room = Arc::clone(self.rooms().get(room)?);
        let _turn = room.turn.lock().await;
        Some(room.deliver(frame).await)
    }
}

impl Room {
    /// Pushes `frame` to every member, [`PUBLISH_CHUNK`] at a time,
    /// yielding between chunks; returns to how many.
    async fn deliver(&self, frame: &Frame) -> usize {
        let mut delivered = 0;
        let mut after = None;
        let mut chunk: Vec<Arc<Outbox>> = Vec::new();
        loop {
            {
                let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
                let range = match after {
                    None => members.range(..),
                    Some(last) => members.range((Bound::Excluded(last), Bound::Unbounded)),
                };
                // Sized by the room, once: a room of two allocates two.
                chunk.reserve(members.len().min(PUBLISH_CHUNK));
                for (id, member) in range.take(PUBLISH_CHUNK) {
                    chunk.push(Arc::clone(&member.outbox));
                    after = Some(*id);
                }
            }
            let taken = chunk.len();
            for outbox in chunk.drain(..) {
                outbox.push(frame);
            }
            delivered += taken;
            if taken < PUBLISH_CHUNK {
                return delivered;
            }
            tokio::task::yield_now().await;
        }
    }
}

impl Hub {
    /// Every room and its member count, by name.
    pub(crate) fn list(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms()
            .iter()
            .map(|(name, room)| RoomInfo {
                room: name.to_string(),
                members: room
                    .members
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }
}

fn list(members: &BTreeMap<ClientId, Entry>, limit: usize) -> Vec<Member> {
    members
        .iter()
        .take(limit)
        .map(|(id, entry)| Member {
            id: *id,
            name: entry.name.clone(),
        })
        .collect()
}

/// A server message as a text message, for a direct answer.
pub(crate) fn text(message: &ServerMessage) -> Message {
    Message::text(message.to_json())
}

/// A server message as an encoded text frame, for an outbox.
pub(crate) fn frame(message: &ServerMessage) -> Frame {
    Frame::text(&message.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// Runs a publish that has nobody to wait for: done at the first poll.
    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        future
            .now_or_never()
            .expect("an uncontended publish completes at once")
    }

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(16, 16, None, None))
    }

    #[test]
    fn the_last_member_leaving_removes_the_room() {
        let hub = Hub::new(usize::MAX);
        let (a, b) = (outbox(), outbox());
        hub.join("r", 1, "a", &a).expect("join a");
        let (members, count) = hub.join("r", 2, "b", &b).expect("join b");
        assert_eq!((members.len(), count), (2, 2));
        assert_eq!(hub.join("r", 2, "b", &b), Err(JoinError::AlreadyJoined));
        // a heard b join.
        assert_eq!(a.take(10).messages.len(), 1);
        assert!(hub.leave("r", 1, LeaveReason::Left));
        assert!(!hub.leave("r", 1, LeaveReason::Left));
        assert_eq!(hub.list().len(), 1);
        assert!(hub.leave("r", 2, LeaveReason::Left));
        assert!(hub.list().is_empty());
        assert_eq!(block_on(hub.publish("r", &Frame::text("x"))), None);
    }

    #[test]
    fn rooms_over_the_presence_limit_send_no_presence() {
        let hub = Hub::new(2);
        let outboxes: Vec<_> = (0..4).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            let (members, count) = hub.join("r", id, "m", outbox).expect("join");
            assert_eq!(count, id as usize);
            assert!(members.len() <= 2);
        }
        // Member 1 heard member 2 join (room of 1 < 2), nobody else's.
        assert_eq!(outboxes[0].take(10).messages.len(), 1);
        assert!(hub.leave("r", 4, LeaveReason::Left));
        assert!(outboxes[0].take(10).messages.is_empty());
    }

    #[tokio::test]
    async fn a_publish_reaches_every_member_of_a_room_larger_than_a_chunk() {
        let hub = Hub::new(0);
        let members = 2 * PUBLISH_CHUNK + 3;
        let outboxes: Vec<_> = (0..members).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            hub.join("r", id, "m", outbox).expect("join");
        }
        assert_eq!(hub.publish("r", &Frame::text("x")).await, Some(members));
        for (i, outbox) in outboxes.iter().enumerate() {
            assert_eq!(outbox.take(10).messages.len(), 1, "member {i}");
        }
    }

    /// Defect 2 of issue 10: a large fan-out gives the other tasks of its
    /// worker thread a turn between chunks, instead of holding the thread
    /// for the whole room.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_publish_lets_other_tasks_run_between_chunks() {
        let hub = Arc::new(Hub::new(0));
        let members = 3 * PUBLISH_CHUNK;
        let outboxes: Arc<Vec<_>> = Arc::new((0..members).map(|_| outbox()).collect());
        for (id, outbox) in (1..).zip(outboxes.iter()) {
            hub.join("r", id, "m", outbox).expect("join");
        }
        let publish = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.publish("r", &Frame::text("x")).await }
        });
        // Runs after the publish task on this one thread: only if the
        // publish yields does it run before the publish has finished.
        let neighbour = tokio::spawn({
            let outboxes = Arc::clone(&outboxes);
            async move {
                outboxes
                    .iter()
                    .filter(|outbox| !outbox.take(10).messages.is_empty())
                    .count()
            }
        });
        let seen = neighbour.await.expect("neighbour");
        assert_eq!(publish.await.expect("publish"), Some(members));
        assert!(
            0 < seen && seen < members,
            "the neighbour ran after {seen} of {members} deliveries"
        );
    }

    #[test]
    fn a_publish_shares_one_buffer_among_members() {
        let hub = Hub::new(usize::MAX);
        let outboxes: Vec<_> = (1..=3).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            hub.join("r", id, "m", outbox).expect("join");
        }
        for outbox in &outboxes {
            outbox.take(10);
        }
        assert_eq!(block_on(hub.publish("r", &Frame::text("hello"))), Some(3));
        let pointers: Vec<*const u8> = outboxes
            .iter()
            .map(|outbox| match &outbox.take(10).messages[..] {
                [frame] => frame.payload().as_ptr(),
                other => panic!("expected one frame, got {other:?}"),
            })
            .collect();
        assert!(
            pointers.windows(2).all(|w| w[0] == w[1]),
            "copied: {pointers:?}"
        );
    }
}
