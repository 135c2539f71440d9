//! The Redis engine (`--redis`): instances that name the same Redis are
//! one Duplex. Redis sequences each room's messages, keeps its history and
//! its members; every instance delivers to its own members.
//!
//! - A publish is one Lua step (`publish.lua`): the room's next offset, an
//!   exactly capped stream (`XADD … MAXLEN N`) with the offset as id, the
//!   expiry, and a `PUBLISH` to the room's channel carrying epoch, offset
//!   and post.
//! - Each instance keeps one subscriber connection, subscribed to the
//!   channels of the rooms it has members in. Its own publishes come back
//!   that way too, so every instance delivers every message once, in
//!   offset order ([`crate::rooms::Hub::deliver_from_cluster`] drops what
//!   it has delivered and fills a gap from the stream).
//! - Presence: per room a sorted set of members (`id node name`, scored by
//!   id); each instance ("node") heartbeats into `duplex:alive` every
//!   `--presence-ttl` / 3, and a node whose heartbeat is older than the TTL
//!   is reaped by whichever instance looks first (`reap.lua`).
//! - Faults: both connections reconnect by themselves (with backoff) and
//!   the subscriber resubscribes; after any disconnection, and at every
//!   heartbeat, each local room is compared with Redis and caught up from
//!   the stream. When Redis returns empty, the heartbeat notices (Redis
//!   does not know the node) and registers the members again.
//!
//! Keys (every room key has the room in braces, so Redis Cluster would put
//! a room's keys in one slot): `duplex:{room}:meta` (hash: epoch, top),
//! `duplex:{room}:log` (stream), `duplex:{room}:members` (sorted set),
//! channel `duplex:{room}`; `duplex:rooms` (set of rooms with members),
//! `duplex:alive` (sorted set of nodes by heartbeat expiry), `duplex:nodes`
//! (counter of node numbers).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duplex_protocol::{ClientId, LeaveReason, MAX_CLIENT_ID, Member, Position, RoomInfo};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Script, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};

use crate::rooms::{Epoch, Post};

/// Every key and channel starts with this.
const PREFIX: &str = "duplex:";

/// Each Redis call gives up after this: a publish while Redis is away
/// answers `unavailable` soon instead of hanging the client's session.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The same once Redis is known to be away: a chat client publishing
/// through an outage is answered at once; the heartbeat notices when Redis
/// is back.
const DOWN_TIMEOUT: Duration = Duration::from_millis(250);

/// Longest pause between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Client ids are `node << NODE_SHIFT | n`: unique across instances, and
/// below 2^53 with node numbers below 2^21.
pub(crate) const NODE_SHIFT: u32 = 32;

/// Node numbers wrap below this (`MAX_CLIENT_ID >> NODE_SHIFT`).
const NODES: u64 = (MAX_CLIENT_ID >> NODE_SHIFT) + 1;

/// Redis could not be reached (or answered an error) in time.
#[derive(Debug, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub(crate) struct Unavailable(#[from] redis::RedisError);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `--redis` is not a URL the client understands.
    #[error("--redis {url:?} is not a redis://[user:password@]host:port[/db] URL")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What the parser said.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer at start.
    #[error("cannot reach redis at {url}")]
    Unreachable {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
}

/// What the cluster's state of a room is after a join.
#[derive(Debug)]
pub(crate) struct JoinReply {
    pub(crate) epoch: Epoch,
    pub(crate) top: u64,
    pub(crate) count: usize,
    pub(crate) members: Vec<Member>,
    /// With `since`: the missed posts (offset order) if the history holds
    /// them all, `None` if not.
    pub(crate) recovery: Option<Option<Vec<(u64, Post)>>>,
}

/// What one entry of the room channel says.
#[derive(Debug)]
pub(crate) enum Event {
    Message {
        epoch: Epoch,
        offset: u64,
        post: Post,
    },
    Joined(Member),
    Left(Member, LeaveReason),
}

/// A room's history as Redis has it: epoch, latest offset, and the posts
/// asked for.
#[derive(Debug)]
pub(crate) struct Range {
    /// `None` when Redis has no history of the room (new, expired, lost).
    pub(crate) epoch: Option<Epoch>,
    pub(crate) top: u64,
    pub(crate) posts: Vec<(u64, Post)>,
}

/// The settings the engine needs from `Config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) history_size: usize,
    pub(crate) history_ttl: Duration,
    pub(crate) presence_ttl: Duration,
    pub(crate) presence_limit: usize,
}

/// The Lua steps, loaded once per connection (`EVALSHA`, falling back to
/// `EVAL`).
#[derive(Debug)]
struct Scripts {
    publish: Script,
    join: Script,
    leave: Script,
    heartbeat: Script,
    reap: Script,
    rooms: Script,
    range: Script,
}

/// One instance's link to the cluster.
pub(crate) struct Cluster {
    commands: ConnectionManager,
    subscriber: ConnectionManager,
    /// This instance's number, unique among the instances sharing Redis.
    node: u64,
    settings: Settings,
    scripts: Scripts,
    /// Whether the last call reached Redis.
    up: AtomicBool,
    /// The channels subscribed to: taken across a subscribe or
    /// unsubscribe, so the two cannot cross for one room.
    subscribed: tokio::sync::Mutex<HashSet<String>>,
    /// Leaves Redis did not record (it was away): retried at the next
    /// heartbeat that reaches it, or the member would stay listed.
    unrecorded: std::sync::Mutex<Vec<(String, Member, LeaveReason)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

fn key(room: &str, what: &str) -> String {
    format!("{PREFIX}{{{room}}}:{what}")
}

pub(crate) fn channel(room: &str) -> String {
    format!("{PREFIX}{{{room}}}")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Cluster {
    /// Connects to `url` (two connections: commands and subscriptions)
    /// and takes a node number. Returns the engine and the subscriber's
    /// messages, for [`crate::rooms::Hub::follow_cluster`].
    pub(crate) async fn connect(
        url: &str,
        settings: Settings,
    ) -> Result<(Self, UnboundedReceiver<PushInfo>), ClusterError> {
        let bad_url = |source| ClusterError::BadUrl {
            url: url.to_owned(),
            source,
        };
        let unreachable = |source| ClusterError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let info = url.into_connection_info().map_err(bad_url)?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3)).map_err(bad_url)?;
        let config = || {
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(RESPONSE_TIMEOUT))
                .set_max_delay(MAX_RECONNECT_DELAY)
        };
        let commands = client
            .get_connection_manager_with_config(config())
            .await
            .map_err(unreachable)?;
        let (sender, pushes) = tokio::sync::mpsc::unbounded_channel();
        let subscriber = client
            .get_connection_manager_with_config(
                config()
                    .set_push_sender(sender)
                    .set_automatic_resubscription(),
            )
            .await
            .map_err(unreachable)?;
        let mut counter = commands.clone();
        let n: u64 = redis::cmd("INCR")
            .arg(format!("{PREFIX}nodes"))
            .query_async(&mut counter)
            .await
            .map_err(unreachable)?;
        let node = (n.saturating_sub(1) % (NODES - 1)) + 1;
        info!(url, node, "joined the cluster");
        let script = |source: &str| Script::new(source);
        Ok((
            Self {
                commands,
                subscriber,
                node,
                settings,
                scripts: Scripts {
                    publish: script(include_str!("publish.lua")),
                    join: script(include_str!("join.lua")),
                    leave: script(include_str!("leave.lua")),
                    heartbeat: script(include_str!("heartbeat.lua")),
                    reap: script(include_str!("reap.lua")),
                    rooms: script(include_str!("rooms.lua")),
                    range: script(include_str!("range.lua")),
                },
                up: AtomicBool::new(true),
                subscribed: tokio::sync::Mutex::default(),
                unrecorded: std::sync::Mutex::default(),
            },
            pushes,
        ))
    }

    /// Whether Redis answered the last call.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs one call to Redis, giving up after [`RESPONSE_TIMEOUT`] in
    /// all, [`DOWN_TIMEOUT`] while Redis is known to be away (the
    /// connection manager's own timeout does not cover waiting for a
    /// reconnection), and records how it went.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        let within = if self.is_up() {
            RESPONSE_TIMEOUT
        } else {
            DOWN_TIMEOUT
        };
        let result = tokio::time::timeout(within, call)
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer from redis in time",
                )))
            });
        self.noted(result)
    }

    /// Records how a call went; logs the changes.
    fn noted<T>(&self, result: redis::RedisResult<T>) -> Result<T, Unavailable> {
        match result {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    info!("redis is reachable again");
                }
                Ok(value)
            }
            Err(error) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    warn!(%error, "redis is unreachable: publishes are refused until it is back");
                }
                Err(Unavailable(error))
            }
        }
    }

    /// Sequences, stores and publishes `post` in `room`; returns the
    /// members it has on every instance, or `None` if `only_if_members`
    /// and it has none (then nothing was stored or sent).
    pub(crate) async fn publish(
        &self,
        room: &str,
        post: &Post,
        only_if_members: bool,
    ) -> Result<Option<usize>, Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.publish.prepare_invoke();
        invocation
            .key(key(room, "meta"))
            .key(key(room, "log"))
            .key(key(room, "members"))
            .arg(Epoch::new().to_string())
            .arg(self.settings.history_size)
            .arg(millis(self.settings.history_ttl))
            .arg(channel(room))
            .arg(post.encode())
            .arg(if only_if_members { "1" } else { "0" });
        let result = invocation.invoke_async::<(String, u64, usize)>(&mut conn);
        let (epoch, _, members) = self.call(result).await?;
        Ok((!epoch.is_empty()).then_some(members))
    }

    /// Subscribes to `room`'s channel unless it is already.
    pub(crate) async fn subscribe(&self, room: &str) -> Result<(), Unavailable> {
        let mut subscribed = self.subscribed.lock().await;
        let name = channel(room);
        if subscribed.contains(&name) {
            return Ok(());
        }
        let mut conn = self.subscriber.clone();
        self.call(conn.subscribe(&name)).await?;
        subscribed.insert(name);
        Ok(())
    }

    /// Unsubscribes from `room`'s channel if `still_unused` says, under the
    /// subscription lock, that no local member joined meanwhile.
    pub(crate) async fn unsubscribe(&self, room: &str, still_unused: impl FnOnce() -> bool) {
        let mut subscribed = self.subscribed.lock().await;
        let name = channel(room);
        if !subscribed.contains(&name) || !still_unused() {
            return;
        }
        let mut conn = self.subscriber.clone();
        if self.call(conn.unsubscribe(&name)).await.is_ok() {
            subscribed.remove(&name);
        }
    }

    /// Adds member `id` to `room`'s presence; returns where the room
    /// stands and, with `since`, what it missed.
    pub(crate) async fn join(
        &self,
        room: &str,
        member: &Member,
        since: Option<&Position>,
    ) -> Result<JoinReply, Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.join.prepare_invoke();
        invocation
            .key(key(room, "meta"))
            .key(key(room, "log"))
            .key(key(room, "members"))
            .key(format!("{PREFIX}rooms"))
            .arg(Epoch::new().to_string())
            .arg(millis(self.settings.history_ttl))
            .arg(member.id)
            .arg(self.node)
            .arg(&member.name)
            .arg(channel(room))
            .arg(room)
            .arg(self.settings.presence_limit)
            .arg(since.map_or("", |since| since.epoch.as_str()))
            .arg(since.map_or(0, |since| since.offset));
        let result = invocation.invoke_async::<Value>(&mut conn);
        let value = self.call(result).await?;
        parse_join(value).ok_or_else(|| Unavailable(malformed("join")))
    }

    /// Removes member `id` from `room`'s presence and tells the others;
    /// if Redis is away, the leave is kept and made at the next heartbeat
    /// that reaches it.
    pub(crate) async fn leave(&self, room: &str, member: &Member, reason: LeaveReason) {
        if let Err(error) = self.try_leave(room, member, reason).await {
            warn!(%error, room, id = member.id, "leave not recorded in redis yet: retried at the next heartbeat");
            self.unrecorded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((room.to_owned(), member.clone(), reason));
        }
    }

    /// The leaves Redis missed, made again; those that fail again stay.
    async fn retry_leaves(&self) -> Result<(), Unavailable> {
        let pending = std::mem::take(
            &mut *self
                .unrecorded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut left = pending.into_iter();
        while let Some((room, member, reason)) = left.next() {
            if let Err(error) = self.try_leave(&room, &member, reason).await {
                let mut unrecorded = self
                    .unrecorded
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                unrecorded.push((room, member, reason));
                unrecorded.extend(left);
                return Err(error);
            }
        }
        Ok(())
    }

    async fn try_leave(
        &self,
        room: &str,
        member: &Member,
        reason: LeaveReason,
    ) -> Result<(), Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.leave.prepare_invoke();
        invocation
            .key(key(room, "members"))
            .key(format!("{PREFIX}rooms"))
            .arg(member.id)
            .arg(channel(room))
            .arg(room)
            .arg(self.settings.presence_limit)
            .arg(reason_name(reason))
            .arg(&member.name);
        let result = invocation.invoke_async::<i64>(&mut conn);
        self.call(result).await.map(drop)
    }

    /// Registers members again (Redis lost them): `(room, member)` pairs.
    pub(crate) async fn register(&self, members: &[(Arc<str>, Member)]) -> Result<(), Unavailable> {
        if members.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (room, member) in members {
            pipe.cmd("ZADD")
                .arg(key(room, "members"))
                .arg(member.id)
                .arg(format!("{} {} {}", member.id, self.node, member.name))
                .ignore()
                .cmd("SADD")
                .arg(format!("{PREFIX}rooms"))
                .arg(&**room)
                .ignore();
        }
        let mut conn = self.commands.clone();
        self.call(pipe.query_async::<()>(&mut conn)).await
    }

    /// Every room with members on any instance.
    pub(crate) async fn rooms(&self) -> Result<Vec<RoomInfo>, Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.rooms.prepare_invoke();
        invocation.key(format!("{PREFIX}rooms")).arg(PREFIX);
        let result = invocation.invoke_async::<Vec<(String, usize)>>(&mut conn);
        let mut rooms: Vec<RoomInfo> = self
            .call(result)
            .await?
            .into_iter()
            .map(|(room, members)| RoomInfo { room, members })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        Ok(rooms)
    }

    /// `room`'s history position and its posts `first..=last` (`None`: to
    /// the latest).
    pub(crate) async fn range(
        &self,
        room: &str,
        first: u64,
        last: Option<u64>,
    ) -> Result<Range, Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.range.prepare_invoke();
        invocation
            .key(key(room, "meta"))
            .key(key(room, "log"))
            .arg(first)
            .arg(last.map_or_else(|| "+".to_owned(), |last| last.to_string()));
        let result = invocation.invoke_async::<Value>(&mut conn);
        let value = self.call(result).await?;
        parse_range(value).ok_or_else(|| Unavailable(malformed("range")))
    }

    /// One heartbeat: marks this node alive, reaps nodes whose heartbeat
    /// expired. Returns whether Redis knew this node (if not, its members
    /// must be registered again).
    pub(crate) async fn heartbeat(&self) -> Result<bool, Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.heartbeat.prepare_invoke();
        invocation
            .key(format!("{PREFIX}alive"))
            .arg(self.node)
            .arg(millis(self.settings.presence_ttl));
        let result = invocation.invoke_async::<i64>(&mut conn);
        let known = self.call(result).await? == 1;
        self.retry_leaves().await?;
        self.reap(None).await?;
        Ok(known)
    }

    /// Removes the members of expired nodes, or of `node`.
    async fn reap(&self, node: Option<u64>) -> Result<(), Unavailable> {
        let mut conn = self.commands.clone();
        let mut invocation = self.scripts.reap.prepare_invoke();
        invocation
            .key(format!("{PREFIX}alive"))
            .key(format!("{PREFIX}rooms"))
            .arg(self.settings.presence_limit)
            .arg(node.map_or_else(String::new, |node| node.to_string()))
            .arg(PREFIX);
        let result = invocation.invoke_async::<i64>(&mut conn);
        let removed = self.call(result).await?;
        if removed > 0 && node.is_none() {
            info!(
                removed,
                "removed the members of instances that stopped heartbeating"
            );
        }
        Ok(())
    }

    /// At shutdown: removes every member of this node at once, so other
    /// instances do not list them until the TTL.
    pub(crate) async fn shutdown(&self) {
        if let Err(error) = self.reap(Some(self.node)).await {
            warn!(%error, "could not remove this instance's members from redis");
        }
    }

    /// How often to heartbeat: a third of the TTL, so two heartbeats can
    /// be lost before the node counts as gone.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        (self.settings.presence_ttl / 3).max(Duration::from_millis(100))
    }

    /// The first client id of this node (the next are +1).
    pub(crate) fn first_id(&self) -> ClientId {
        self.node << NODE_SHIFT
    }
}

fn malformed(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected answer from a Duplex script",
        what.to_owned(),
    ))
}

fn reason_name(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Left => "left",
        LeaveReason::TooSlow => "too_slow",
        _ => "disconnected",
    }
}

fn reason_of(name: &str) -> LeaveReason {
    match name {
        "left" => LeaveReason::Left,
        "too_slow" => LeaveReason::TooSlow,
        _ => LeaveReason::Disconnected,
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    std::str::from_utf8(bytes(value)?).ok()
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// A member entry, `id node name`.
fn member(entry: &str) -> Option<Member> {
    let (id, rest) = entry.split_once(' ')?;
    let (_node, name) = rest.split_once(' ')?;
    Some(Member {
        id: id.parse().ok()?,
        name: name.to_owned(),
    })
}

/// Stream entries `[[id, [field, post]], ...]` as `(offset, post)`.
fn entries(value: &Value) -> Option<Vec<(u64, Post)>> {
    array(value)?
        .iter()
        .map(|entry| {
            let [id, fields] = array(entry)? else {
                return None;
            };
            let offset = text(id)?.split_once('-')?.0.parse().ok()?;
            let fields = array(fields)?;
            let post = Post::decode(bytes(fields.get(1)?)?)?;
            Some((offset, post))
        })
        .collect()
}

pub(crate) fn parse_join(value: Value) -> Option<JoinReply> {
    let [epoch, top, count, list, recovered, replay] = array(&value)? else {
        return None;
    };
    let members = array(list)?
        .iter()
        .map(|entry| member(text(entry)?))
        .collect::<Option<Vec<_>>>()?;
    let recovery = match recovered {
        Value::Int(-1) => None,
        Value::Int(0) => Some(None),
        Value::Int(1) => Some(Some(entries(replay)?)),
        _ => return None,
    };
    Some(JoinReply {
        epoch: Epoch::parse(text(epoch)?)?,
        top: int(top)?,
        count: usize::try_from(int(count)?).ok()?,
        members,
        recovery,
    })
}

pub(crate) fn parse_range(value: Value) -> Option<Range> {
    let [epoch, top, posts] = array(&value)? else {
        return None;
    };
    let epoch = text(epoch)?;
    Some(Range {
        // Empty: Redis has no history of the room.
        epoch: if epoch.is_empty() {
            None
        } else {
            Some(Epoch::parse(epoch)?)
        },
        top: int(top)?,
        posts: entries(posts)?,
    })
}

/// What a subscriber push means: `(room, event)`, or `None` for a push
/// that is not a room message (subscription confirmations, ...).
pub(crate) fn event(push: &PushInfo) -> Option<(String, Event)> {
    if push.kind != PushKind::Message {
        return None;
    }
    let [name, payload] = &push.data[..] else {
        return None;
    };
    let room = text(name)?.strip_prefix(PREFIX)?;
    let room = room.strip_prefix('{')?.strip_suffix('}')?.to_owned();
    let payload = bytes(payload)?;
    let (&kind, rest) = payload.split_first()?;
    let event = match kind {
        b'm' => {
            let mut parts = rest.splitn(3, |&b| b == b' ');
            let epoch = Epoch::parse(std::str::from_utf8(parts.next()?).ok()?)?;
            let offset = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
            let post = Post::decode(parts.next()?)?;
            Event::Message {
                epoch,
                offset,
                post,
            }
        }
        b'j' => {
            let (id, name) = std::str::from_utf8(rest).ok()?.split_once(' ')?;
            Event::Joined(Member {
                id: id.parse().ok()?,
                name: name.to_owned(),
            })
        }
        b'l' => {
            let (id, rest) = std::str::from_utf8(rest).ok()?.split_once(' ')?;
            let (reason, name) = rest.split_once(' ')?;
            Event::Left(
                Member {
                    id: id.parse().ok()?,
                    name: name.to_owned(),
                },
                reason_of(reason),
            )
        }
        _ => return None,
    };
    Some((room, event))
}

/// Whether a push says the subscriber connection dropped (then messages
/// may have been missed, and every room must be caught up).
pub(crate) fn is_disconnection(push: &PushInfo) -> bool {
    push.kind == PushKind::Disconnection
}
