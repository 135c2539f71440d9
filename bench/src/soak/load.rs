//! The soak's connections, one task each for the whole run: echo
//! connections on `/echo` that send at a steady rate and check every echo
//! byte for byte, and members of rooms on `/ws`, one per room publishing at
//! a steady rate, that check every delivery: in order, none missing, byte
//! for byte as published.
//!
//! Every connection reads whenever it is not waiting for an echo, so pings
//! are answered and anything the server sends unasked is seen and counted.
//! What goes wrong is counted, never retried: a connection that fails ends
//! and stays closed, so the open count shows it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio::time::MissedTickBehavior;

use crate::connect::Dialer;
use crate::echo::check_opcode;
use crate::error::ClientError;
use crate::payload::{Mismatch, Payload, filler};
use crate::rooms;
use crate::stats::{Percentiles, Recorder};
use crate::ws::Client;
use duplex_protocol::frame::OpCode;

/// How long a connection waits for the server's Close frame at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes of a publish's stamp: sequence (u64), send time (u64, ns since
/// the run's origin), room (u32).
pub const PUBLISH_STAMP: usize = 20;

/// Longest unexpected message kept to say what it was.
const SAMPLE_LEN: usize = 200;

/// Where the run is; every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Connections open and join; nothing is sent yet.
    Connect,
    /// Echoes and publishes at their rates.
    Load,
    /// Publishing has stopped and echo connections close; members read
    /// the deliveries still in flight.
    Drain,
    /// Everyone closes.
    Close,
}

/// How the connections are split and what each sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connections `0..echo` are on `/echo`.
    pub echo: usize,
    /// Connections `echo..echo + room_connections` are room members.
    pub room_connections: usize,
    /// Rooms; member `j` (counted from the first room connection) is in
    /// room `j mod rooms`, and members `0..rooms` are the publishers.
    pub rooms: usize,
    /// Rooms are named `PREFIX-0`, `PREFIX-1`, ...
    pub room_prefix: String,
    /// Time between two echoes of one connection.
    pub echo_interval: Duration,
    /// Payload bytes of an echo.
    pub echo_size: usize,
    /// Time between two publishes in one room.
    pub publish_interval: Duration,
    /// Payload bytes of a publish.
    pub publish_size: usize,
    /// An echo or a join not answered within this fails its connection.
    pub timeout: Duration,
}

/// What connection `index` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Echo connection, the `n`th.
    Echo(usize),
    /// Room member `slot` (also its index in [`Shared::members`]); it
    /// publishes if `publishes`.
    Member {
        /// Counted from the first room connection.
        slot: usize,
        /// Its room.
        room: usize,
        /// The room's publisher.
        publishes: bool,
    },
}

impl Plan {
    /// All connections.
    #[must_use]
    pub fn total(&self) -> usize {
        self.echo + self.room_connections
    }

    /// The role of connection `index`.
    #[must_use]
    pub fn role(&self, index: usize) -> Role {
        if index < self.echo {
            return Role::Echo(index);
        }
        let slot = index - self.echo;
        Role::Member {
            slot,
            room: slot % self.rooms.max(1),
            publishes: slot < self.rooms,
        }
    }

    /// The name of room `room`.
    #[must_use]
    pub fn room_name(&self, room: usize) -> String {
        format!("{}-{room}", self.room_prefix)
    }

    /// Members of room `room`, its publisher included.
    #[must_use]
    pub fn members_of(&self, room: usize) -> u64 {
        let rooms = self.rooms.max(1);
        let base = self.room_connections / rooms;
        (base + usize::from(room < self.room_connections % rooms)) as u64
    }
}

/// One room member's progress through its room's publishes.
#[derive(Debug)]
pub struct MemberState {
    /// The sequence number of the next delivery due.
    pub next: Cell<u64>,
    /// Still connected: only these are owed the publishes after the load.
    pub alive: Cell<bool>,
}

/// Counters every task shares (one thread: no atomics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connect (and join) attempts finished, successful or not.
    pub attempted: Cell<usize>,
    /// Connections open now.
    pub open: Cell<usize>,
    /// Echoes sent.
    pub echoes_sent: Cell<u64>,
    /// Echoes received and checked.
    pub echoes_received: Cell<u64>,
    /// Publishes sent.
    pub published: Cell<u64>,
    /// Deliveries received in order and checked.
    pub delivered: Cell<u64>,
    /// Deliveries skipped over (a later one came first).
    pub lost: Cell<u64>,
    /// Deliveries that came after a later one.
    pub reordered: Cell<u64>,
    /// Messages that have no place in the run.
    pub unexpected: Cell<u64>,
}

/// Latencies in nanoseconds: of the interval since the last sample, and
/// of the whole load.
#[derive(Debug)]
pub struct Latencies {
    window: Histogram<u64>,
    all: Histogram<u64>,
}

impl Latencies {
    fn new() -> Self {
        // 1 ns to 100 s, 3 significant digits: constant, valid bounds.
        let histogram = || {
            Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("constant histogram bounds are valid")
        };
        Self {
            window: histogram(),
            all: histogram(),
        }
    }

    fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.window.saturating_record(ns);
        self.all.saturating_record(ns);
    }

    /// p99 of the interval in ms, and a fresh interval.
    pub fn take_window_p99_ms(&mut self) -> Option<f64> {
        let p99 =
            (!self.window.is_empty()).then(|| self.window.value_at_quantile(0.99) as f64 / 1e6);
        self.window.reset();
        p99
    }

    /// The whole load's distribution, ms.
    #[must_use]
    pub fn all_ms(&self) -> Option<Percentiles> {
        Percentiles::of(&self.all, 1e6)
    }
}

/// What the connection tasks share.
#[derive(Debug)]
pub struct Shared {
    /// Zero of the send times stamped into publishes.
    pub origin: Instant,
    /// Who does what.
    pub plan: Plan,
    /// Connect times and the errors that ended connections.
    pub recorder: Rc<RefCell<Recorder>>,
    /// The counters.
    pub counters: Counters,
    /// Signalled when the last connect attempt has finished.
    pub all_attempted: Notify,
    /// When the load started; the schedules count from it.
    pub load_started: Cell<Instant>,
    /// Echo round trips.
    pub echo_latency: RefCell<Latencies>,
    /// Publish sent to delivery read.
    pub delivery_latency: RefCell<Latencies>,
    /// Publishes sent, per room.
    pub published: Vec<Cell<u64>>,
    /// Every room member, by slot.
    pub members: Vec<MemberState>,
    /// The first unexpected message.
    pub unexpected_sample: RefCell<Option<String>>,
}

impl Shared {
    /// State for `plan`, before any connection.
    #[must_use]
    pub fn new(plan: Plan, recorder: Rc<RefCell<Recorder>>) -> Self {
        let now = Instant::now();
        Self {
            origin: now,
            published: (0..plan.rooms).map(|_| Cell::new(0)).collect(),
            members: (0..plan.room_connections)
                .map(|_| MemberState {
                    next: Cell::new(0),
                    alive: Cell::new(false),
                })
                .collect(),
            plan,
            recorder,
            counters: Counters::default(),
            all_attempted: Notify::new(),
            load_started: Cell::new(now),
            echo_latency: RefCell::new(Latencies::new()),
            delivery_latency: RefCell::new(Latencies::new()),
            unexpected_sample: RefCell::new(None),
        }
    }

    fn ns_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn unexpected(&self, message: &[u8]) {
        let count = &self.counters.unexpected;
        count.set(count.get() + 1);
        let mut sample = self.unexpected_sample.borrow_mut();
        if sample.is_none() {
            let text = String::from_utf8_lossy(&message[..message.len().min(SAMPLE_LEN)]);
            *sample = Some(text.into_owned());
        }
    }

    /// Deliveries owed to the members still connected that have not come
    /// (yet): each one's room's publishes minus what it has read.
    #[must_use]
    pub fn outstanding(&self) -> u64 {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.alive.get())
            .map(|(slot, member)| {
                let room = slot % self.plan.rooms.max(1);
                self.published[room].get().saturating_sub(member.next.get())
            })
            .sum()
    }

    fn bump(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }
}

/// The dialers of the two endpoints.
#[derive(Debug)]
pub(crate) struct Dialers {
    /// To `/echo`.
    pub(crate) echo: Dialer,
    /// To `/ws`.
    pub(crate) rooms: Dialer,
}

/// Connection `index`'s whole life: open (and join), wait for the load,
/// do its part until its phase ends, close. An error is counted and ends
/// the connection.
pub(crate) async fn connection(
    shared: Rc<Shared>,
    dialers: Rc<Dialers>,
    index: usize,
    mut phase: watch::Receiver<Phase>,
) {
    let role = shared.plan.role(index);
    let opened = open(&shared, &dialers, index, role).await;
    let counters = &shared.counters;
    counters.attempted.set(counters.attempted.get() + 1);
    if counters.attempted.get() == shared.plan.total() {
        shared.all_attempted.notify_one();
    }
    let Some((mut client, version)) = opened else {
        return;
    };
    counters.open.set(counters.open.get() + 1);
    if let Role::Member { slot, .. } = role {
        shared.members[slot].alive.set(true);
    }
    let outcome = match role {
        Role::Echo(n) => echo(&shared, &mut client, n, &mut phase).await,
        Role::Member {
            slot,
            room,
            publishes,
        } => {
            let publisher = publishes.then_some(version);
            member(&shared, &mut client, slot, room, publisher, &mut phase).await
        }
    };
    counters.open.set(counters.open.get() - 1);
    if let Role::Member { slot, .. } = role {
        shared.members[slot].alive.set(false);
    }
    match outcome {
        Ok(()) => drop(client.close(CLOSE_TIMEOUT).await),
        Err(error) => shared.recorder.borrow_mut().record_error(&error),
    }
}

/// Opens connection `index` and, for a member, joins its room; returns the
/// protocol version its server speaks. Failures are recorded.
async fn open(
    shared: &Shared,
    dialers: &Dialers,
    index: usize,
    role: Role,
) -> Option<(Client, u8)> {
    let Role::Member { room, .. } = role else {
        let client = dialers.echo.open(index).await?;
        return Some((client, duplex_protocol::VERSION));
    };
    let mut client = dialers.rooms.open(index).await?;
    let timeout = shared.plan.timeout;
    let name = format!("soak{index}");
    let joined = tokio::time::timeout(
        timeout,
        rooms::join(&mut client, &shared.plan.room_name(room), &name),
    )
    .await
    .unwrap_or(Err(ClientError::Timeout(timeout)));
    match joined {
        Ok(version) => Some((client, version)),
        Err(error) => {
            shared.recorder.borrow_mut().record_error(&error);
            None
        }
    }
}

/// Reads until the load starts; true if it did, false if the run ended
/// first.
async fn wait_for_load(
    shared: &Shared,
    client: &mut Client,
    phase: &mut watch::Receiver<Phase>,
) -> Result<bool, ClientError> {
    loop {
        tokio::select! {
            biased;
            now = phase.wait_for(|phase| *phase != Phase::Connect) => {
                return Ok(now.is_ok_and(|now| *now == Phase::Load));
            }
            received = client.recv() => {
                let message = received?;
                shared.unexpected(client.payload(&message));
            }
        }
    }
}

/// A schedule that starts `slot`/`of` of an interval after the load did,
/// so the connections' sends are spread evenly, and does not catch up
/// after a delay (a soak measures steady load, not bursts).
fn schedule(shared: &Shared, interval: Duration, slot: usize, of: usize) -> tokio::time::Interval {
    let offset = interval.mul_f64(slot as f64 / of.max(1) as f64);
    let mut ticks = tokio::time::interval_at((shared.load_started.get() + offset).into(), interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Sends an echo on every tick and checks it comes back byte for byte
/// within the timeout; between echoes, anything received is unexpected.
async fn echo(
    shared: &Shared,
    client: &mut Client,
    n: usize,
    phase: &mut watch::Receiver<Phase>,
) -> Result<(), ClientError> {
    if !wait_for_load(shared, client, phase).await? {
        return Ok(());
    }
    let plan = &shared.plan;
    let mut ticks = schedule(shared, plan.echo_interval, n, plan.echo);
    // Only the filler pattern depends on the id; wrapping is harmless.
    let mut payload = Payload::new(n as u32, plan.echo_size);
    let counters = &shared.counters;
    let mut seq = 0_u64;
    loop {
        tokio::select! {
            biased;
            _ = phase.wait_for(|phase| *phase >= Phase::Drain) => return Ok(()),
            _ = ticks.tick() => {}
            received = client.recv() => {
                let message = received?;
                shared.unexpected(client.payload(&message));
                continue;
            }
        }
        let sent = Instant::now();
        client
            .send_binary(payload.stamp(seq, shared.ns_since_origin(sent)))
            .await?;
        Shared::bump(&counters.echoes_sent);
        let echo = tokio::time::timeout(plan.timeout, client.recv())
            .await
            .map_err(|_| ClientError::Timeout(plan.timeout))??;
        check_opcode(echo, OpCode::Binary)?;
        payload.verify(client.payload(&echo))?;
        shared.echo_latency.borrow_mut().record(sent.elapsed());
        Shared::bump(&counters.echoes_received);
        seq += 1;
    }
}

/// Reads the room's deliveries until the run closes; the publisher
/// (`publisher`: its server's protocol version) also publishes on every
/// tick of the load.
async fn member(
    shared: &Shared,
    client: &mut Client,
    slot: usize,
    room: usize,
    publisher: Option<u8>,
    phase: &mut watch::Receiver<Phase>,
) -> Result<(), ClientError> {
    let plan = &shared.plan;
    let room_name = plan.room_name(room);
    let mut publishing = publisher.is_some();
    // Created at the load's start, when its first tick is known.
    let mut ticks: Option<tokio::time::Interval> = None;
    let mut payload = vec![0_u8; plan.publish_size];
    let mut seq = 0_u64;
    loop {
        // Marks the phase seen, so `changed` below waits for the next.
        let load = *phase.borrow_and_update() == Phase::Load;
        if publishing && load && ticks.is_none() {
            ticks = Some(schedule(shared, plan.publish_interval, room, plan.rooms));
        }
        let tick = async {
            match ticks.as_mut() {
                Some(ticks) if load => drop(ticks.tick().await),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            now = phase.changed() => {
                if now.is_err() || *phase.borrow() == Phase::Close {
                    return Ok(());
                }
            }
            () = tick, if publishing => {
                if *phase.borrow() != Phase::Load {
                    publishing = false;
                    continue;
                }
                let version = publisher.unwrap_or(duplex_protocol::VERSION);
                fill_publish(&mut payload, room as u32, seq, shared.ns_since_origin(Instant::now()));
                let frame = rooms::encode_publish(version, &room_name, &payload)
                    .map_err(|_| ClientError::Unexpected("room name too long to publish".into()))?;
                Shared::bump(&shared.published[room]);
                Shared::bump(&shared.counters.published);
                client.send_binary(&frame).await?;
                seq += 1;
            }
            received = client.recv() => {
                let message = received?;
                on_message(shared, slot, room, message.opcode, client.payload(&message))?;
            }
        }
    }
}

/// Checks one message a member received: a delivery must be its room's
/// next publish, byte for byte; presence events are fine; anything else
/// is unexpected. A delivery with wrong bytes ends the connection.
fn on_message(
    shared: &Shared,
    slot: usize,
    room: usize,
    opcode: OpCode,
    bytes: &[u8],
) -> Result<(), ClientError> {
    if opcode == OpCode::Text {
        /// The type of a server message.
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        // Presence: the room filling before the load, or emptying at its
        // end. A member dropping during the load shows as an error on its
        // own connection.
        let presence = serde_json::from_slice::<Kind<'_>>(bytes)
            .is_ok_and(|kind| matches!(&*kind.kind, "member_joined" | "member_left"));
        if !presence {
            shared.unexpected(bytes);
        }
        return Ok(());
    }
    let Some(payload) = rooms::delivery_payload(bytes) else {
        shared.unexpected(bytes);
        return Ok(());
    };
    let (seq, sent_ns, from_room) = check_publish(payload, shared.plan.publish_size)?;
    if from_room != room as u32 {
        shared.unexpected(bytes);
        return Ok(());
    }
    let counters = &shared.counters;
    let member = &shared.members[slot];
    let next = member.next.get();
    if seq < next {
        Shared::bump(&counters.reordered);
        return Ok(());
    }
    if seq > next {
        counters.lost.set(counters.lost.get() + (seq - next));
    }
    member.next.set(seq + 1);
    Shared::bump(&counters.delivered);
    let now = shared.ns_since_origin(Instant::now());
    shared
        .delivery_latency
        .borrow_mut()
        .record(Duration::from_nanos(now.saturating_sub(sent_ns)));
    Ok(())
}

/// The byte at `position` of room `room`'s publish `seq`, after the stamp:
/// it changes with the sequence, so a delivery of another publish's bytes
/// under this one's stamp is caught.
fn publish_filler(room: u32, seq: u64, position: usize) -> u8 {
    filler(room.wrapping_add(seq as u32), position)
}

/// Writes publish `seq` of room `room`, sent at `sent_ns`, into `payload`.
pub fn fill_publish(payload: &mut [u8], room: u32, seq: u64, sent_ns: u64) {
    let mut stamp = [0_u8; PUBLISH_STAMP];
    stamp[..8].copy_from_slice(&seq.to_le_bytes());
    stamp[8..16].copy_from_slice(&sent_ns.to_le_bytes());
    stamp[16..20].copy_from_slice(&room.to_le_bytes());
    let n = payload.len().min(PUBLISH_STAMP);
    payload[..n].copy_from_slice(&stamp[..n]);
    for (position, byte) in payload.iter_mut().enumerate().skip(PUBLISH_STAMP) {
        *byte = publish_filler(room, seq, position);
    }
}

/// Reads a delivered publish of `size` bytes: its sequence, send time and
/// room, once every byte after the stamp is found as [`fill_publish`]
/// wrote it.
///
/// # Errors
/// The length or the first byte that differs.
pub fn check_publish(payload: &[u8], size: usize) -> Result<(u64, u64, u32), Mismatch> {
    if payload.len() != size || size < PUBLISH_STAMP {
        return Err(Mismatch::Length {
            expected: size,
            got: payload.len(),
        });
    }
    let u64_at = |at: usize| {
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&payload[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let (seq, sent_ns) = (u64_at(0), u64_at(8));
    let mut room = [0_u8; 4];
    room.copy_from_slice(&payload[16..20]);
    let room = u32::from_le_bytes(room);
    for (offset, &got) in payload.iter().enumerate().skip(PUBLISH_STAMP) {
        let expected = publish_filler(room, seq, offset);
        if got != expected {
            return Err(Mismatch::Byte {
                offset,
                expected,
                got,
            });
        }
    }
    Ok((seq, sent_ns, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(echo: usize, room_connections: usize, rooms: usize) -> Plan {
        Plan {
            echo,
            room_connections,
            rooms,
            room_prefix: "soak".into(),
            echo_interval: Duration::from_secs(1),
            echo_size: 128,
            publish_interval: Duration::from_millis(500),
            publish_size: 64,
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn connections_split_into_echo_then_rooms_with_a_publisher_each() {
        let plan = plan(3, 7, 3);
        assert_eq!(plan.total(), 10);
        let roles: Vec<Role> = (0..10).map(|index| plan.role(index)).collect();
        assert_eq!(roles[2], Role::Echo(2));
        let member = |slot, room, publishes| Role::Member {
            slot,
            room,
            publishes,
        };
        assert_eq!(
            roles[3..],
            [
                member(0, 0, true),
                member(1, 1, true),
                member(2, 2, true),
                member(3, 0, false),
                member(4, 1, false),
                member(5, 2, false),
                member(6, 0, false),
            ]
        );
        // 7 members over 3 rooms: 3, 2, 2.
        let sizes: Vec<u64> = (0..3).map(|room| plan.members_of(room)).collect();
        assert_eq!(sizes, [3, 2, 2]);
        assert_eq!(plan.room_name(2), "soak-2");
    }

    #[test]
    fn a_publish_is_checked_byte_for_byte() {
        let mut payload = vec![0_u8; 64];
        fill_publish(&mut payload, 3, 41, 123_456);
        assert_eq!(check_publish(&payload, 64), Ok((41, 123_456, 3)));
        assert!(matches!(
            check_publish(&payload[..63], 64),
            Err(Mismatch::Length { .. })
        ));
        let mut corrupt = payload.clone();
        corrupt[40] ^= 1;
        assert!(matches!(
            check_publish(&corrupt, 64),
            Err(Mismatch::Byte { offset: 40, .. })
        ));
        // Another publish's bytes under this one's stamp.
        let mut other = vec![0_u8; 64];
        fill_publish(&mut other, 3, 42, 123_456);
        other[..8].copy_from_slice(&41_u64.to_le_bytes());
        assert!(check_publish(&other, 64).is_err());
    }

    fn delivery(room: u32, seq: u64) -> Vec<u8> {
        let mut payload = vec![0_u8; 64];
        fill_publish(&mut payload, room, seq, 0);
        duplex_protocol::binary::encode_delivery(&format!("soak-{room}"), 1, seq, &payload)
            .expect("encodes")
    }

    #[test]
    fn members_count_gaps_as_lost_and_steps_back_as_reordered() {
        let shared = Shared::new(plan(0, 2, 1), Rc::new(RefCell::new(Recorder::new())));
        let binary = OpCode::Binary;
        for slot in 0..2 {
            shared.members[slot].alive.set(true);
        }
        for seq in [0, 1, 3, 2, 4] {
            let frame = delivery(0, seq);
            on_message(&shared, 0, 0, binary, &frame).expect("checked");
        }
        let counters = &shared.counters;
        assert_eq!(counters.delivered.get(), 4, "0, 1, 3, 4");
        assert_eq!(counters.lost.get(), 1, "2 was skipped over");
        assert_eq!(counters.reordered.get(), 1, "2 came after 3");
        // A delivery of another room, presence, and a `missed` notice.
        on_message(&shared, 0, 0, binary, &delivery(5, 5)).expect("counted");
        let text = OpCode::Text;
        on_message(
            &shared,
            0,
            0,
            text,
            br#"{"type":"member_left","room":"soak-0"}"#,
        )
        .expect("presence");
        on_message(&shared, 0, 0, text, br#"{"type":"missed","count":3}"#).expect("counted");
        assert_eq!(counters.unexpected.get(), 2);
        assert!(shared.unexpected_sample.borrow().is_some());
        // Six publishes: member 0 has read up to 4, member 1 nothing.
        shared.published[0].set(6);
        assert_eq!(shared.outstanding(), 1 + 6);
        shared.members[1].alive.set(false);
        assert_eq!(shared.outstanding(), 1, "only the connected are owed");
    }
}
