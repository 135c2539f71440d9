//! The room registry: who is in which room, and fan-out.
//!
//! A published message is serialised once into a [`Frame`], the whole
//! WebSocket frame as it goes on the wire, reference-counted: 10,000
//! members cost 10,000 pointer copies, not 10,000 copies or encodings of
//! the bytes. [`Outbox::push`] writes the frame straight to an idle
//! member's socket without waiting, or queues it in the member's bounded
//! queue, so no member can delay a room. A room exists here while it has
//! members: the last one to leave removes it, and its history (the
//! [`history::Store`]) stays for `--history-ttl`.
//!
//! Each message gets the next offset of the room's history before it is
//! encoded (the offset is in the frame) and delivered; a member is told the
//! room's latest offset when it joins and gets every message above it
//! (`Entry::after`), and a rejoin with `since` has the missed messages
//! queued right behind its `joined`.
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
use std::time::Duration;

use duplex_protocol::{ClientId, LeaveReason, Member, Position, RoomInfo, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use super::history::{self, Recovery};
use super::outbox::Outbox;
use super::post::Post;
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
    /// Every room's history (`--history-size`, `--history-ttl`).
    history: history::Store,
}

/// One room with members.
#[derive(Debug)]
struct Room {
    name: Arc<str>,
    /// By id, so member lists come out in a stable order. Read-locked by
    /// publishers, write-locked by joins and leaves.
    members: RwLock<BTreeMap<ClientId, Entry>>,
    /// Held by the publish being delivered. tokio's lock is fair (first
    /// come, first served), and a publisher waiting for its turn waits as
    /// a task, not as a blocked worker thread. It guards the position of
    /// the last delivery.
    turn: tokio::sync::Mutex<Delivered>,
    history: history::Shared,
}

/// The room's last message delivered to its members.
#[derive(Debug)]
struct Delivered {
    epoch: Arc<str>,
    offset: u64,
}

/// A member as the hub keeps it.
#[derive(Debug)]
struct Entry {
    name: String,
    outbox: Arc<Outbox>,
    /// The epoch this member counts offsets in, and the offset after which
    /// it gets every message: the room's latest when it joined (what came
    /// before, it was told about in `joined` or recovered).
    epoch: Arc<str>,
    after: u64,
}

/// What a member learns when it joins.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The first `--presence-limit` members, the new one included.
    pub(crate) members: Vec<Member>,
    pub(crate) member_count: usize,
    pub(crate) epoch: Arc<str>,
    /// The room's latest offset.
    pub(crate) offset: u64,
    /// With `since`: whether the missed messages follow.
    pub(crate) recovered: Option<bool>,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    AlreadyJoined,
}

impl Hub {
    pub(crate) fn new(presence_limit: usize, history_size: usize, history_ttl: Duration) -> Self {
        Self {
            rooms: Mutex::default(),
            last_id: AtomicU64::new(0),
            presence_limit,
            history: history::Store::new(history_size, history_ttl),
        }
    }

    /// A fresh client id.
    pub(crate) fn next_id(&self) -> ClientId {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A room without members yet, with its history (kept or new).
    fn new_room(&self, room: &str) -> Arc<Room> {
        let name: Arc<str> = Arc::from(room);
        let history = self.history.get(&name);
        let (epoch, offset) = self.history.lock(&history).position();
        Arc::new(Room {
            name,
            members: RwLock::default(),
            turn: tokio::sync::Mutex::new(Delivered { epoch, offset }),
            history,
        })
    }

    /// Adds client `id` to `room` (creating it), tells the other members,
    /// and returns the member list (the first `--presence-limit` members),
    /// the new member included, the member count and the room's position.
    /// With `since`, the messages after it are queued in `outbox` (held by
    /// the caller, so they follow `joined`) if the history holds them all.
    ///
    /// The position is read and the member added under the members' write
    /// lock, while a publish gives its message an offset before it
    /// collects members under the read lock: a message either has an
    /// offset above the one the member is told, and reaches it, or is in
    /// the history the member was told about (and replayed, if it asked).
    /// Its entry's `after` keeps a publish already under way from
    /// delivering the message twice.
    pub(crate) fn join(
        &self,
        room: &str,
        id: ClientId,
        name: &str,
        outbox: &Arc<Outbox>,
        since: Option<&Position>,
    ) -> Result<Joined, JoinError> {
        let mut rooms = self.rooms();
        let found = match rooms.get(room) {
            Some(found) => Arc::clone(found),
            None => {
                let created = self.new_room(room);
                rooms.insert(Arc::clone(&created.name), Arc::clone(&created));
                created
            }
        };
        let mut members = found
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        drop(rooms);
        if members.contains_key(&id) {
            return Err(JoinError::AlreadyJoined);
        }
        let history = self.history.lock(&found.history);
        let (epoch, offset) = history.position();
        let recovery = since.map(|since| history.since(since));
        drop(history);
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
                epoch: Arc::clone(&epoch),
                after: offset,
            },
        );
        let recovered = recovery.map(|recovery| match recovery {
            Recovery::Recovered(frames) => {
                outbox.push_replay(&frames);
                true
            }
            Recovery::Lost => false,
        });
        Ok(Joined {
            members: list(&members, self.presence_limit),
            member_count: members.len(),
            epoch,
            offset,
            recovered,
        })
    }

    /// Removes client `id` from `room`, tells the others why, and removes
    /// the room if it is now empty (its history stays, for
    /// `--history-ttl`). Returns whether it was a member.
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

    /// Gives `post` the room's next offset, keeps it in the history and
    /// delivers it to every member (written or queued, see
    /// [`Outbox::push`]); returns to how many, or `None` if the room has
    /// no members.
    ///
    /// Members are taken [`PUBLISH_CHUNK`] at a time, in id order, each
    /// chunk collected under the read lock and written to after it: a
    /// publish to 10,000 members writes to 10,000 sockets (~40-80 ms), and
    /// neither a join waiting for the write lock nor the other connections
    /// of the publisher's worker thread may wait that long. Between chunks
    /// members come and go: one that leaves before its chunk misses the
    /// message, one that joins does not get it (it was told an offset at
    /// or above it).
    ///
    /// Publishes to one room take turns in the order they arrive, so the
    /// room's messages reach every member in one order; a publisher waits
    /// for the deliveries before its own (at most one per other publisher
    /// waiting: each waits for its own).
    pub(crate) async fn publish(&self, room: &str, post: Post) -> Option<usize> {
        let room = Arc::clone(self.rooms().get(room)?);
        let mut delivered = room.turn.lock().await;
        let (epoch, offset, frame) = self
            .history
            .lock(&room.history)
            .append(self.history.size(), |offset| post.frame(&room.name, offset));
        Some(room.deliver(&mut delivered, &epoch, offset, &frame).await)
    }

    /// Forgets the expired histories of rooms without members, every
    /// little while, until the server stops (then the task is dropped).
    pub(crate) async fn sweep_history(&self) {
        let mut every = tokio::time::interval(self.history.sweep_interval());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.history.sweep();
        }
    }
}

impl Room {
    /// Delivers the message at `offset` of `epoch` to every member that
    /// counts in that epoch and has not had it, [`PUBLISH_CHUNK`] at a
    /// time, yielding between chunks; returns to how many. Called in
    /// offset order, with the turn held.
    ///
    /// A new epoch (the history was lost under the members) is announced
    /// first, with `history_reset`, to every member still counting in an
    /// older one.
    async fn deliver(
        &self,
        delivered: &mut Delivered,
        epoch: &Arc<str>,
        offset: u64,
        frame: &Frame,
    ) -> usize {
        if *delivered.epoch != **epoch {
            self.reset(epoch, offset.saturating_sub(1));
            delivered.epoch = Arc::clone(epoch);
        }
        delivered.offset = offset;
        let mut count = 0;
        let mut after = None;
        let mut chunk: Vec<Arc<Outbox>> = Vec::new();
        loop {
            let mut seen = 0;
            {
                let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
                let range = match after {
                    None => members.range(..),
                    Some(last) => members.range((Bound::Excluded(last), Bound::Unbounded)),
                };
                // Sized by the room, once: a room of two allocates two.
                chunk.reserve(members.len().min(PUBLISH_CHUNK));
                for (id, member) in range.take(PUBLISH_CHUNK) {
                    seen += 1;
                    after = Some(*id);
                    if member.after < offset && *member.epoch == **epoch {
                        chunk.push(Arc::clone(&member.outbox));
                    }
                }
            }
            count += chunk.len();
            for outbox in chunk.drain(..) {
                outbox.push(frame);
            }
            if seen < PUBLISH_CHUNK {
                return count;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Moves every member counting in another epoch to `epoch`, from
    /// `after`, and tells it.
    fn reset(&self, epoch: &Arc<str>, after: u64) {
        let event = frame(&ServerMessage::HistoryReset {
            room: self.name.to_string(),
            epoch: epoch.to_string(),
            offset: after,
        });
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        for member in members.values_mut() {
            if *member.epoch != **epoch {
                member.epoch = Arc::clone(epoch);
                member.after = after;
                member.outbox.push(&event);
            }
        }
    }
}

impl Hub {
    /// Every room with members and its member count, by name.
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

    fn hub(presence_limit: usize) -> Hub {
        Hub::new(presence_limit, 100, Duration::from_secs(300))
    }

    fn join(hub: &Hub, id: ClientId, outbox: &Arc<Outbox>) -> Result<Joined, JoinError> {
        hub.join("r", id, "m", outbox, None)
    }

    fn post(text: &str) -> Post {
        Post {
            from: None,
            body: super::super::post::Body::Text(text.to_owned()),
        }
    }

    /// The JSON texts queued for `outbox`.
    fn queued(outbox: &Outbox) -> Vec<ServerMessage> {
        outbox
            .take(1000)
            .messages
            .iter()
            .map(|frame| serde_json::from_slice(frame.payload()).expect("a JSON server message"))
            .collect()
    }

    #[test]
    fn the_last_member_leaving_removes_the_room() {
        let hub = hub(usize::MAX);
        let (a, b) = (outbox(), outbox());
        join(&hub, 1, &a).expect("join a");
        let joined = join(&hub, 2, &b).expect("join b");
        assert_eq!((joined.members.len(), joined.member_count), (2, 2));
        assert_eq!(join(&hub, 2, &b).map(|_| ()), Err(JoinError::AlreadyJoined));
        // a heard b join.
        assert_eq!(a.take(10).messages.len(), 1);
        assert!(hub.leave("r", 1, LeaveReason::Left));
        assert!(!hub.leave("r", 1, LeaveReason::Left));
        assert_eq!(hub.list().len(), 1);
        assert!(hub.leave("r", 2, LeaveReason::Left));
        assert!(hub.list().is_empty());
        assert_eq!(block_on(hub.publish("r", post("x"))), None);
    }

    #[test]
    fn rooms_over_the_presence_limit_send_no_presence() {
        let hub = hub(2);
        let outboxes: Vec<_> = (0..4).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            let joined = join(&hub, id, outbox).expect("join");
            assert_eq!(joined.member_count, id as usize);
            assert!(joined.members.len() <= 2);
        }
        // Member 1 heard member 2 join (room of 1 < 2), nobody else's.
        assert_eq!(outboxes[0].take(10).messages.len(), 1);
        assert!(hub.leave("r", 4, LeaveReason::Left));
        assert!(outboxes[0].take(10).messages.is_empty());
    }

    #[tokio::test]
    async fn a_publish_reaches_every_member_of_a_room_larger_than_a_chunk() {
        let hub = hub(0);
        let members = 2 * PUBLISH_CHUNK + 3;
        let outboxes: Vec<_> = (0..members).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            hub.join("r", id, "m", outbox, None).expect("join");
        }
        assert_eq!(hub.publish("r", post("x")).await, Some(members));
        for (i, outbox) in outboxes.iter().enumerate() {
            assert_eq!(outbox.take(10).messages.len(), 1, "member {i}");
        }
    }

    /// Defect 2 of issue 10: a large fan-out gives the other tasks of its
    /// worker thread a turn between chunks, instead of holding the thread
    /// for the whole room.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_publish_lets_other_tasks_run_between_chunks() {
        let hub = Arc::new(hub(0));
        let members = 3 * PUBLISH_CHUNK;
        let outboxes: Arc<Vec<_>> = Arc::new((0..members).map(|_| outbox()).collect());
        for (id, outbox) in (1..).zip(outboxes.iter()) {
            hub.join("r", id, "m", outbox, None).expect("join");
        }
        let publish = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.publish("r", post("x")).await }
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
        let hub = hub(usize::MAX);
        let outboxes: Vec<_> = (1..=3).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            join(&hub, id, outbox).expect("join");
        }
        for outbox in &outboxes {
            outbox.take(10);
        }
        assert_eq!(block_on(hub.publish("r", post("hello"))), Some(3));
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

    fn offset_of(message: &ServerMessage) -> u64 {
        match message {
            ServerMessage::Message { offset, .. } => *offset,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_rejoin_since_an_offset_gets_exactly_what_it_missed() {
        let hub = Hub::new(usize::MAX, 3, Duration::from_secs(300));
        let (a, b) = (outbox(), outbox());
        let first = join(&hub, 1, &a).expect("join a");
        assert_eq!(first.offset, 0);
        for i in 1..=5 {
            block_on(hub.publish("r", post(&format!("m{i}"))));
        }
        let offsets: Vec<u64> = queued(&a).iter().map(offset_of).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        let since = |offset| Position {
            epoch: first.epoch.to_string(),
            offset,
        };
        // Missed 3 (the history size): recovered, in order, after `joined`.
        let joined = hub.join("r", 2, "b", &b, Some(&since(2))).expect("join b");
        assert_eq!((joined.offset, joined.recovered), (5, Some(true)));
        let replayed: Vec<u64> = queued(&b).iter().map(offset_of).collect();
        assert_eq!(replayed, [3, 4, 5]);
        // The next message is the next offset, once.
        block_on(hub.publish("r", post("m6")));
        assert_eq!(queued(&b).iter().map(offset_of).collect::<Vec<_>>(), [6]);
        assert!(hub.leave("r", 2, LeaveReason::Left));
        // Missed 4: not recovered, nothing replayed.
        let c = outbox();
        let joined = hub.join("r", 3, "c", &c, Some(&since(2))).expect("join c");
        assert_eq!((joined.offset, joined.recovered), (6, Some(false)));
        assert!(queued(&c).is_empty());
        // The latest, another epoch, past the latest.
        for (id, position, recovered) in [
            (4, since(6), true),
            (5, since(7), false),
            (
                6,
                Position {
                    epoch: "old".into(),
                    offset: 6,
                },
                false,
            ),
        ] {
            let d = outbox();
            let joined = hub.join("r", id, "d", &d, Some(&position)).expect("join");
            assert_eq!(joined.recovered, Some(recovered), "since {position:?}");
            assert!(queued(&d).is_empty());
        }
    }

    #[test]
    fn a_room_without_members_keeps_its_history() {
        let hub = hub(usize::MAX);
        let a = outbox();
        let joined = join(&hub, 1, &a).expect("join");
        block_on(hub.publish("r", post("kept")));
        assert!(hub.leave("r", 1, LeaveReason::Left));
        assert!(hub.list().is_empty());
        let b = outbox();
        let since = Position {
            epoch: joined.epoch.to_string(),
            offset: 0,
        };
        let again = hub.join("r", 2, "b", &b, Some(&since)).expect("rejoin");
        assert_eq!(
            (&again.epoch, again.offset, again.recovered),
            (&joined.epoch, 1, Some(true))
        );
        assert_eq!(queued(&b).iter().map(offset_of).collect::<Vec<_>>(), [1]);
    }

    /// The history expires under the members: they are told before the
    /// first message of the new epoch, which has offset 1.
    #[test]
    fn members_hear_of_a_new_epoch_before_its_first_message() {
        let hub = Hub::new(usize::MAX, 10, Duration::from_millis(30));
        let a = outbox();
        let joined = join(&hub, 1, &a).expect("join");
        block_on(hub.publish("r", post("old")));
        assert_eq!(queued(&a).iter().map(offset_of).collect::<Vec<_>>(), [1]);
        std::thread::sleep(Duration::from_millis(40));
        block_on(hub.publish("r", post("new")));
        let got = queued(&a);
        match &got[..] {
            [
                ServerMessage::HistoryReset {
                    epoch, offset: 0, ..
                },
                ServerMessage::Message { offset: 1, .. },
            ] => assert_ne!(**epoch, *joined.epoch),
            other => panic!("expected a reset then offset 1, got {other:?}"),
        }
        // Only once.
        block_on(hub.publish("r", post("newer")));
        assert_eq!(queued(&a).iter().map(offset_of).collect::<Vec<_>>(), [2]);
    }

    /// A member that joins while a publish is being delivered, chunk by
    /// chunk, is told an offset that includes it, and so must not get it
    /// live as well (no duplicate at the seam).
    #[tokio::test(flavor = "current_thread")]
    async fn a_join_during_a_delivery_gets_the_message_once() {
        let hub = Arc::new(hub(0));
        let members = 2 * PUBLISH_CHUNK;
        let outboxes: Vec<_> = (0..members).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            hub.join("r", id, "m", outbox, None).expect("join");
        }
        let publish = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.publish("r", post("x")).await }
        });
        // Runs when the publish yields after its first chunk.
        let late = outbox();
        let joined = tokio::spawn({
            let hub = Arc::clone(&hub);
            let late = Arc::clone(&late);
            async move {
                let id = ClientId::try_from(members).expect("an id") + 1;
                hub.join("r", id, "late", &late, None).expect("join")
            }
        })
        .await
        .expect("join task");
        assert_eq!(publish.await.expect("publish"), Some(members));
        assert_eq!(joined.offset, 1, "joined before the message had an offset");
        assert!(queued(&late).is_empty(), "got offset 1 twice over");
    }
}
