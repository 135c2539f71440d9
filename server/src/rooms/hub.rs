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
use redis::PushInfo;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::Message;

use super::epoch::Epoch;
use super::history::{self, Recovery};
use super::outbox::Outbox;
use super::post::Post;
use crate::cluster::{Cluster, Event, Unavailable};
use crate::wire::Frame;

/// Members a publish delivers to between two yields (~1-2 ms of socket
/// writes on loopback). Their outboxes are collected under the room's read
/// lock and written to after it is released, so a join or leave waits at
/// most for the collection; between chunks the publisher yields, so other
/// connections on its worker thread get a turn during a large fan-out
/// (issue 10, defect 2: a 10,000-member publish held its worker ~80 ms).
const PUBLISH_CHUNK: usize = 256;

/// How soon to try again to catch up with Redis after losing it.
const RESYNC_RETRY: Duration = Duration::from_millis(200);

/// Every room of the server.
#[derive(Debug)]
pub(crate) struct Hub {
    /// Held only to find, create or remove a room (and across a join or
    /// leave, so a room cannot be removed while someone joins it);
    /// publishing takes it just long enough to clone the room's `Arc`.
    rooms: Arc<Mutex<HashMap<Arc<str>, Arc<Room>>>>,
    /// The last client id handed out; ids start at 1 (0 means "the HTTP
    /// API" in binary deliveries).
    last_id: AtomicU64,
    /// Rooms with more members than this get no presence events
    /// (`--presence-limit`).
    presence_limit: usize,
    /// Who sequences, keeps the history and tracks presence.
    engine: Engine,
}

/// Where a room's order, history and presence live: the one question the
/// hub asks before it sequences a publish, answers a join (position,
/// replay, members) or lists rooms. The local fan-out (frames encoded
/// once, direct writes, bounded queues) is the same for both.
#[derive(Debug)]
pub(crate) enum Engine {
    /// This process alone (the default): histories in memory
    /// (`--history-size`, `--history-ttl`), presence is the local members,
    /// and a publisher delivers its message itself.
    Memory(history::Store),
    /// Redis (`--redis`), shared by every instance naming it: it sequences,
    /// keeps the history and the presence; every instance delivers what
    /// its subscription brings to its own members
    /// ([`Hub::follow_cluster`]).
    Redis(Arc<Cluster>),
}

impl Engine {
    /// The memory engine.
    pub(crate) fn memory(history_size: usize, history_ttl: Duration) -> Self {
        Self::Memory(history::Store::new(history_size, history_ttl))
    }
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
    /// The room's history in this process; `None` in a cluster.
    history: Option<history::Shared>,
}

/// The room's last message delivered to its members. In a cluster, a
/// room just created here has an empty epoch until its first join reads
/// the cluster's.
#[derive(Debug)]
struct Delivered {
    epoch: Option<Epoch>,
    offset: u64,
}

/// A member as the hub keeps it.
#[derive(Debug)]
struct Entry {
    /// Boxed rather than a `String`: an idle member costs memory in every
    /// slot of the map's nodes (see [`Epoch`]).
    name: Box<str>,
    outbox: Arc<Outbox>,
    /// The epoch this member counts offsets in, and the offset after which
    /// it gets every message: the room's latest when it joined (what came
    /// before, it was told about in `joined` or recovered).
    epoch: Epoch,
    after: u64,
}

/// What a member learns when it joins.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The first `--presence-limit` members, the new one included.
    pub(crate) members: Vec<Member>,
    pub(crate) member_count: usize,
    pub(crate) epoch: Epoch,
    /// The room's latest offset.
    pub(crate) offset: u64,
    /// With `since`: whether the missed messages follow.
    pub(crate) recovered: Option<bool>,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    AlreadyJoined,
    /// The cluster's Redis did not answer.
    Unavailable,
}

impl Hub {
    /// A hub on `engine`; in a cluster, client ids are taken from this
    /// node's range.
    pub(crate) fn new(presence_limit: usize, engine: Engine) -> Self {
        let first_id = match &engine {
            Engine::Memory(_) => 0,
            Engine::Redis(cluster) => cluster.first_id(),
        };
        Self {
            rooms: Arc::default(),
            last_id: AtomicU64::new(first_id),
            presence_limit,
            engine,
        }
    }

    /// The cluster engine, if that is the engine.
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        match &self.engine {
            Engine::Memory(_) => None,
            Engine::Redis(cluster) => Some(cluster),
        }
    }

    /// A fresh client id.
    pub(crate) fn next_id(&self) -> ClientId {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A room without members yet, with its history (kept or new; none
    /// in a cluster).
    fn new_room(&self, room: &str) -> Arc<Room> {
        let name: Arc<str> = Arc::from(room);
        let (history, epoch, offset) = match &self.engine {
            Engine::Redis(_) => (None, None, 0),
            Engine::Memory(store) => {
                let history = store.get(&name);
                let (epoch, offset) = store.lock(&history).position();
                (Some(history), Some(epoch), offset)
            }
        };
        Arc::new(Room {
            name,
            members: RwLock::default(),
            turn: tokio::sync::Mutex::new(Delivered { epoch, offset }),
            history,
        })
    }

    /// `room`'s entry in `rooms` (the locked map), created if it has none.
    fn room_entry(&self, rooms: &mut HashMap<Arc<str>, Arc<Room>>, room: &str) -> Arc<Room> {
        match rooms.get(room) {
            Some(found) => Arc::clone(found),
            None => {
                let created = self.new_room(room);
                rooms.insert(Arc::clone(&created.name), Arc::clone(&created));
                created
            }
        }
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
    pub(crate) async fn join(
        &self,
        room: &str,
        id: ClientId,
        name: &str,
        outbox: &Arc<Outbox>,
        since: Option<&Position>,
    ) -> Result<Joined, JoinError> {
        match &self.engine {
            Engine::Memory(store) => self.join_here(store, room, id, name, outbox, since),
            Engine::Redis(cluster) => {
                self.join_cluster(cluster, room, id, name, outbox, since)
                    .await
            }
        }
    }

    /// [`Hub::join`] with the history in this process.
    fn join_here(
        &self,
        store: &history::Store,
        room: &str,
        id: ClientId,
        name: &str,
        outbox: &Arc<Outbox>,
        since: Option<&Position>,
    ) -> Result<Joined, JoinError> {
        let mut rooms = self.rooms();
        let found = self.room_entry(&mut rooms, room);
        let mut members = found
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        drop(rooms);
        if members.contains_key(&id) {
            return Err(JoinError::AlreadyJoined);
        }
        let Some(shared) = &found.history else {
            return Err(JoinError::Unavailable);
        };
        let history = store.lock(shared);
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
                name: name.into(),
                outbox: Arc::clone(outbox),
                epoch,
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

    /// [`Hub::join`] in a cluster. The join holds the room's turn from
    /// reading the cluster's position to adding the member here, so no
    /// message above that position is delivered here in between (it would
    /// miss it); messages at or below it that arrive later are not
    /// delivered to it (`after`). The room's channel is subscribed first,
    /// so every message above the position arrives.
    async fn join_cluster(
        &self,
        cluster: &Cluster,
        room: &str,
        id: ClientId,
        name: &str,
        outbox: &Arc<Outbox>,
        since: Option<&Position>,
    ) -> Result<Joined, JoinError> {
        loop {
            let found = self.room_entry(&mut self.rooms(), room);
            let mut delivered = found.turn.lock().await;
            if !self
                .rooms()
                .get(room)
                .is_some_and(|r| Arc::ptr_eq(r, &found))
            {
                // Its last member left while we waited for the turn.
                continue;
            }
            let member = Member {
                id,
                name: name.to_owned(),
            };
            if found
                .members
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&id)
            {
                return Err(JoinError::AlreadyJoined);
            }
            let reply = match cluster.subscribe(room).await {
                Ok(()) => cluster.join(room, &member, since).await,
                Err(error) => Err(error),
            };
            let reply = match reply {
                Ok(reply) => reply,
                Err(_) => {
                    drop(delivered);
                    self.forget_if_empty(&found);
                    return Err(JoinError::Unavailable);
                }
            };
            if delivered.epoch.is_none() {
                delivered.epoch = Some(reply.epoch);
                delivered.offset = reply.top;
            }
            let mut members = found
                .members
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            members.insert(
                id,
                Entry {
                    name: name.into(),
                    outbox: Arc::clone(outbox),
                    epoch: reply.epoch,
                    after: reply.top,
                },
            );
            let recovered = reply.recovery.map(|recovery| match recovery {
                Some(posts) => {
                    let frames: Vec<Frame> = posts
                        .into_iter()
                        .map(|(offset, post)| post.frame(room, offset))
                        .collect();
                    outbox.push_replay(&frames);
                    true
                }
                None => false,
            });
            return Ok(Joined {
                members: reply.members,
                member_count: reply.count,
                epoch: reply.epoch,
                offset: reply.top,
                recovered,
            });
        }
    }

    /// Removes `room` from the map if it has no members (a join that
    /// created it failed).
    fn forget_if_empty(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms();
        let empty = room
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if empty && rooms.get(&*room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&*room.name);
        }
    }

    /// Removes client `id` from `room` (see [`Hub::leave_here`]) and, in
    /// a cluster, from the cluster's presence before returning, so a join
    /// that follows cannot be overtaken by it.
    pub(crate) async fn leave(&self, room: &str, id: ClientId, reason: LeaveReason) -> bool {
        let Some(gone) = self.leave_here(room, id, reason) else {
            return false;
        };
        if let Engine::Redis(cluster) = &self.engine {
            cluster.leave(room, &gone, reason).await;
            self.release(cluster, room);
        }
        true
    }

    /// [`Hub::leave`] for a connection that ended: the cluster's presence
    /// is updated by a task of its own.
    pub(crate) fn leave_detached(&self, room: &str, id: ClientId, reason: LeaveReason) {
        let Some(gone) = self.leave_here(room, id, reason) else {
            return;
        };
        if let Engine::Redis(cluster) = &self.engine {
            self.release(cluster, room);
            let cluster = Arc::clone(cluster);
            let room = room.to_owned();
            tokio::spawn(async move { cluster.leave(&room, &gone, reason).await });
        }
    }

    /// Unsubscribes from `room` if it has no members here (checked again
    /// when the unsubscription is made).
    fn release(&self, cluster: &Arc<Cluster>, room: &str) {
        if self.rooms().contains_key(room) {
            return;
        }
        let cluster = Arc::clone(cluster);
        let rooms = Arc::clone(&self.rooms);
        let room = room.to_owned();
        tokio::spawn(async move {
            cluster
                .unsubscribe(&room, || {
                    !rooms
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains_key(room.as_str())
                })
                .await;
        });
    }

    /// Removes client `id` from `room` here, and removes the room if it is
    /// now empty (its history stays, for `--history-ttl`). Alone, tells
    /// the others why; in a cluster, they are told through Redis. Returns
    /// the member, if it was one.
    fn leave_here(&self, room: &str, id: ClientId, reason: LeaveReason) -> Option<Member> {
        let mut rooms = self.rooms();
        let entry = rooms.get(room)?;
        let mut members = entry
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let gone = members.remove(&id)?;
        let member = Member {
            id,
            name: gone.name.into(),
        };
        if members.is_empty() {
            drop(members);
            rooms.remove(room);
            return Some(member);
        }
        if members.len() >= self.presence_limit || matches!(self.engine, Engine::Redis(_)) {
            return Some(member);
        }
        let event = frame(&ServerMessage::MemberLeft {
            room: room.to_owned(),
            member: member.clone(),
            reason,
        });
        for other in members.values() {
            other.outbox.push(&event);
        }
        Some(member)
    }

    /// Gives `post` the room's next offset, keeps it in the history and
    /// delivers it to every member (written or queued, see
    /// [`Outbox::push`]); returns to how many, or `None` if the room has
    /// no members. In a cluster, Redis gives the offset and every instance
    /// delivers to its own members (this one too, from its subscription):
    /// the count is of members on every instance, and a publish made while
    /// Redis is away is [`Unavailable`], delivered to nobody.
    /// `only_if_members`: publish nothing into a room without members
    /// (the push API's 404); a member's publish always goes.
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
    pub(crate) async fn publish(
        &self,
        room: &str,
        post: Post,
        only_if_members: bool,
    ) -> Result<Option<usize>, Unavailable> {
        let store = match &self.engine {
            Engine::Redis(cluster) => return cluster.publish(room, &post, only_if_members).await,
            Engine::Memory(store) => store,
        };
        let Some(room) = self.rooms().get(room).map(Arc::clone) else {
            return Ok(None);
        };
        let Some(history) = &room.history else {
            return Ok(None);
        };
        let mut delivered = room.turn.lock().await;
        let (epoch, offset, frame) = store
            .lock(history)
            .append(store.size(), |offset| post.frame(&room.name, offset));
        Ok(Some(
            room.deliver(&mut delivered, epoch, offset, &frame).await,
        ))
    }

    /// Delivers a room channel's event to the members here. Messages are
    /// delivered once each, in offset order: one at or below the last
    /// delivered is dropped (a duplicate from a catch-up), one past a gap
    /// is preceded by the missing ones from the stream.
    pub(crate) async fn deliver_from_cluster(&self, cluster: &Cluster, room: &str, event: Event) {
        let Some(found) = self.rooms().get(room).map(Arc::clone) else {
            return;
        };
        match event {
            Event::Message {
                epoch,
                offset,
                post,
            } => {
                let mut delivered = found.turn.lock().await;
                if delivered.epoch.is_none() {
                    // No join finished here yet: it will read the position.
                    return;
                }
                if delivered.epoch == Some(epoch) && offset <= delivered.offset {
                    return;
                }
                let from = if delivered.epoch == Some(epoch) {
                    delivered.offset + 1
                } else {
                    1
                };
                if from < offset {
                    found
                        .catch_up(cluster, &mut delivered, from, Some(offset - 1))
                        .await;
                    if delivered.epoch == Some(epoch) && offset <= delivered.offset {
                        return;
                    }
                }
                let frame = post.frame(room, offset);
                found.deliver(&mut delivered, epoch, offset, &frame).await;
            }
            Event::Joined(member) => {
                let event = frame(&ServerMessage::MemberJoined {
                    room: room.to_owned(),
                    member: member.clone(),
                });
                found.tell(&event, member.id);
            }
            Event::Left(member, reason) => {
                let id = member.id;
                let event = frame(&ServerMessage::MemberLeft {
                    room: room.to_owned(),
                    member,
                    reason,
                });
                found.tell(&event, id);
            }
        }
    }

    /// Compares every room here with the cluster and delivers what its
    /// subscription did not bring (after a disconnection, or a
    /// subscription that stopped delivering without a word).
    pub(crate) async fn catch_up_all(&self, cluster: &Cluster) {
        let rooms: Vec<Arc<Room>> = self.rooms().values().map(Arc::clone).collect();
        for room in rooms {
            let mut delivered = room.turn.lock().await;
            if delivered.epoch.is_none() {
                continue;
            }
            let from = delivered.offset + 1;
            room.catch_up(cluster, &mut delivered, from, None).await;
        }
    }

    /// Delivers what the cluster's subscription brings and heartbeats,
    /// until the server stops (then the future is dropped). After a
    /// disconnection of the subscriber, or when Redis turns out to have
    /// lost this node (restarted empty), every room here is caught up from
    /// the streams and every member registered again, retried every
    /// [`RESYNC_RETRY`] until Redis answers; every heartbeat catches up as
    /// well, for a subscription that stopped delivering without a word.
    pub(crate) async fn follow_cluster(&self, mut pushes: UnboundedReceiver<PushInfo>) {
        let Engine::Redis(cluster) = &self.engine else {
            return std::future::pending().await;
        };
        let mut beat = tokio::time::interval(cluster.heartbeat_interval());
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resync = false;
        loop {
            let retry = tokio::time::sleep(if resync {
                RESYNC_RETRY
            } else {
                Duration::MAX / 4
            });
            tokio::select! {
                push = pushes.recv() => {
                    let Some(push) = push else {
                        return std::future::pending().await;
                    };
                    if crate::cluster::is_disconnection(&push) {
                        tracing::warn!("redis subscription lost: catching up once it is back");
                        resync = true;
                    } else if let Some((room, event)) = crate::cluster::event(&push) {
                        self.deliver_from_cluster(cluster, &room, event).await;
                    }
                }
                _ = beat.tick() => {
                    if self.sync(cluster).await {
                        resync = false;
                    }
                }
                () = retry => {
                    if self.sync(cluster).await {
                        resync = false;
                        tracing::info!("caught up with redis");
                    }
                }
            }
        }
    }

    /// One heartbeat, then the members registered again if Redis lost
    /// them, then every room caught up. Returns whether Redis answered.
    async fn sync(&self, cluster: &Cluster) -> bool {
        match cluster.heartbeat().await {
            Ok(true) => {}
            Ok(false) => {
                let members = self.local_members();
                tracing::info!(
                    members = members.len(),
                    "redis did not know this instance: registering its members again"
                );
                if cluster.register(&members).await.is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
        self.catch_up_all(cluster).await;
        true
    }

    /// Every member here, by room: for registering them again.
    pub(crate) fn local_members(&self) -> Vec<(Arc<str>, Member)> {
        let mut out = Vec::new();
        for (name, room) in self.rooms().iter() {
            let members = room.members.read().unwrap_or_else(PoisonError::into_inner);
            out.extend(members.iter().map(|(id, entry)| {
                (
                    Arc::clone(name),
                    Member {
                        id: *id,
                        name: entry.name.to_string(),
                    },
                )
            }));
        }
        out
    }

    /// Forgets the expired histories of rooms without members, every
    /// little while, until the server stops (then the task is dropped).
    pub(crate) async fn sweep_history(&self) {
        let Engine::Memory(store) = &self.engine else {
            return std::future::pending().await;
        };
        let mut every = tokio::time::interval(store.sweep_interval());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            store.sweep();
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
        epoch: Epoch,
        offset: u64,
        frame: &Frame,
    ) -> usize {
        if delivered.epoch != Some(epoch) {
            self.reset(epoch, offset.saturating_sub(1));
            delivered.epoch = Some(epoch);
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
                    if member.after < offset && member.epoch == epoch {
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

    /// Delivers the cluster's messages `from..=last` (`None`: to the
    /// latest) that the subscription did not bring. A new epoch is
    /// delivered from its first message. Messages the stream no longer
    /// holds are announced to every member as `missed`: never a silent
    /// gap.
    async fn catch_up(
        &self,
        cluster: &Cluster,
        delivered: &mut Delivered,
        from: u64,
        last: Option<u64>,
    ) {
        let Ok(range) = cluster.range(&self.name, from, last).await else {
            return;
        };
        let Some(epoch) = range.epoch else {
            return;
        };
        let (start, posts) = if delivered.epoch == Some(epoch) || from == 1 {
            (from, range.posts)
        } else {
            // Another epoch than the one delivered: all of it, from 1.
            match cluster.range(&self.name, 1, last).await {
                Ok(again) if again.epoch == Some(epoch) => (1, again.posts),
                _ => return,
            }
        };
        let mut next = start;
        for (offset, post) in posts {
            if offset < next {
                continue;
            }
            if offset > next {
                self.missed(offset - next);
            }
            let frame = post.frame(&self.name, offset);
            self.deliver(delivered, epoch, offset, &frame).await;
            next = offset + 1;
        }
        let end = last.unwrap_or(range.top);
        if end >= next && delivered.epoch == Some(epoch) && end <= range.top {
            // The stream no longer holds the last ones either.
            self.missed(end + 1 - next);
            delivered.offset = end;
        }
    }

    /// Tells every member that `count` messages are lost to it.
    fn missed(&self, count: u64) {
        tracing::warn!(room = %self.name, count, "messages lost between the channel and the stream");
        let event = frame(&ServerMessage::Missed { count });
        self.tell(&event, 0);
    }

    /// Pushes `event` to every member but `except`.
    fn tell(&self, event: &Frame, except: ClientId) {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        for (id, member) in members.iter() {
            if *id != except {
                member.outbox.push(event);
            }
        }
    }

    /// Moves every member counting in another epoch to `epoch`, from
    /// `after`, and tells it.
    fn reset(&self, epoch: Epoch, after: u64) {
        let event = frame(&ServerMessage::HistoryReset {
            room: self.name.to_string(),
            epoch: epoch.to_string(),
            offset: after,
        });
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        for member in members.values_mut() {
            if member.epoch != epoch {
                member.epoch = epoch;
                member.after = after;
                member.outbox.push(&event);
            }
        }
    }
}

impl Hub {
    /// Every room with members and its member count, by name (in a
    /// cluster, on every instance).
    pub(crate) async fn list(&self) -> Result<Vec<RoomInfo>, Unavailable> {
        match &self.engine {
            Engine::Memory(_) => Ok(self.list_here()),
            Engine::Redis(cluster) => cluster.rooms().await,
        }
    }

    /// Rooms with a member here, and memberships here, for `/metrics`.
    pub(crate) fn counts_here(&self) -> (usize, usize) {
        let rooms = self.rooms();
        let members: Vec<usize> = rooms
            .values()
            .map(|room| {
                room.members
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .filter(|&n| n > 0)
            .collect();
        (members.len(), members.iter().sum())
    }

    /// The rooms with members here.
    fn list_here(&self) -> Vec<RoomInfo> {
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
            name: entry.name.to_string(),
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
    use crate::metrics::OutboxCounters;
    use futures_util::FutureExt;

    /// Runs a publish that has nobody to wait for: done at the first poll.
    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        future
            .now_or_never()
            .expect("an uncontended publish completes at once")
    }

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(16, 16, None, None, OutboxCounters::default()))
    }

    fn hub(presence_limit: usize) -> Hub {
        Hub::new(
            presence_limit,
            Engine::memory(100, Duration::from_secs(300)),
        )
    }

    fn join(hub: &Hub, id: ClientId, outbox: &Arc<Outbox>) -> Result<Joined, JoinError> {
        block_on(hub.join("r", id, "m", outbox, None))
    }

    fn publish(hub: &Hub, room: &str, post: Post, only_if_members: bool) {
        block_on(hub.publish(room, post, only_if_members)).expect("no cluster to be unavailable");
    }

    fn leave(hub: &Hub, id: ClientId) -> bool {
        block_on(hub.leave("r", id, LeaveReason::Left))
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
        assert!(leave(&hub, 1));
        assert!(!leave(&hub, 1));
        assert_eq!(hub.list_here().len(), 1);
        assert!(leave(&hub, 2));
        assert!(hub.list_here().is_empty());
        assert_eq!(
            block_on(hub.publish("r", post("x"), false)).ok(),
            Some(None)
        );
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
        assert!(leave(&hub, 4));
        assert!(outboxes[0].take(10).messages.is_empty());
    }

    #[tokio::test]
    async fn a_publish_reaches_every_member_of_a_room_larger_than_a_chunk() {
        let hub = hub(0);
        let members = 2 * PUBLISH_CHUNK + 3;
        let outboxes: Vec<_> = (0..members).map(|_| outbox()).collect();
        for (id, outbox) in (1..).zip(&outboxes) {
            hub.join("r", id, "m", outbox, None).await.expect("join");
        }
        assert_eq!(
            hub.publish("r", post("x"), false).await.ok(),
            Some(Some(members))
        );
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
            hub.join("r", id, "m", outbox, None).await.expect("join");
        }
        let publish = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.publish("r", post("x"), false).await }
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
        assert_eq!(publish.await.expect("publish").ok(), Some(Some(members)));
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
        assert_eq!(
            block_on(hub.publish("r", post("hello"), false)).ok(),
            Some(Some(3))
        );
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
        let hub = Hub::new(usize::MAX, Engine::memory(3, Duration::from_secs(300)));
        let (a, b) = (outbox(), outbox());
        let first = join(&hub, 1, &a).expect("join a");
        assert_eq!(first.offset, 0);
        for i in 1..=5 {
            publish(&hub, "r", post(&format!("m{i}")), false);
        }
        let offsets: Vec<u64> = queued(&a).iter().map(offset_of).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        let since = |offset| Position {
            epoch: first.epoch.to_string(),
            offset,
        };
        // Missed 3 (the history size): recovered, in order, after `joined`.
        let joined = block_on(hub.join("r", 2, "b", &b, Some(&since(2)))).expect("join b");
        assert_eq!((joined.offset, joined.recovered), (5, Some(true)));
        let replayed: Vec<u64> = queued(&b).iter().map(offset_of).collect();
        assert_eq!(replayed, [3, 4, 5]);
        // The next message is the next offset, once.
        publish(&hub, "r", post("m6"), false);
        assert_eq!(queued(&b).iter().map(offset_of).collect::<Vec<_>>(), [6]);
        assert!(leave(&hub, 2));
        // Missed 4: not recovered, nothing replayed.
        let c = outbox();
        let joined = block_on(hub.join("r", 3, "c", &c, Some(&since(2)))).expect("join c");
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
            let joined = block_on(hub.join("r", id, "d", &d, Some(&position))).expect("join");
            assert_eq!(joined.recovered, Some(recovered), "since {position:?}");
            assert!(queued(&d).is_empty());
        }
    }

    #[test]
    fn a_room_without_members_keeps_its_history() {
        let hub = hub(usize::MAX);
        let a = outbox();
        let joined = join(&hub, 1, &a).expect("join");
        publish(&hub, "r", post("kept"), false);
        assert!(leave(&hub, 1));
        assert!(hub.list_here().is_empty());
        let b = outbox();
        let since = Position {
            epoch: joined.epoch.to_string(),
            offset: 0,
        };
        let again = block_on(hub.join("r", 2, "b", &b, Some(&since))).expect("rejoin");
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
        let hub = Hub::new(usize::MAX, Engine::memory(10, Duration::from_millis(30)));
        let a = outbox();
        let joined = join(&hub, 1, &a).expect("join");
        publish(&hub, "r", post("old"), false);
        assert_eq!(queued(&a).iter().map(offset_of).collect::<Vec<_>>(), [1]);
        std::thread::sleep(Duration::from_millis(40));
        publish(&hub, "r", post("new"), false);
        let got = queued(&a);
        match &got[..] {
            [
                ServerMessage::HistoryReset {
                    epoch, offset: 0, ..
                },
                ServerMessage::Message { offset: 1, .. },
            ] => assert_ne!(*epoch, joined.epoch.to_string()),
            other => panic!("expected a reset then offset 1, got {other:?}"),
        }
        // Only once.
        publish(&hub, "r", post("newer"), false);
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
            hub.join("r", id, "m", outbox, None).await.expect("join");
        }
        let publish = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.publish("r", post("x"), false).await }
        });
        // Runs when the publish yields after its first chunk.
        let late = outbox();
        let joined = tokio::spawn({
            let hub = Arc::clone(&hub);
            let late = Arc::clone(&late);
            async move {
                let id = ClientId::try_from(members).expect("an id") + 1;
                hub.join("r", id, "late", &late, None).await.expect("join")
            }
        })
        .await
        .expect("join task");
        assert_eq!(publish.await.expect("publish").ok(), Some(Some(members)));
        assert_eq!(joined.offset, 1, "joined before the message had an offset");
        assert!(queued(&late).is_empty(), "got offset 1 twice over");
    }
}
