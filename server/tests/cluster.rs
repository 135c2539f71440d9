//! Several instances as one through a real `redis-server` (started by the
//! test on a free port, no persistence): one order per room across
//! instances, presence and the push API everywhere, recovery on another
//! instance, and Redis's own faults.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::redis::RedisServer;
use crate::common::rooms::{connect_rooms, join, join_since, next_offset, next_server, publish};
use crate::common::{Client, TestServer, config};
use duplex_protocol::{ErrorCode, LeaveReason, Position, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

const TOKEN: &str = "cluster-test-token";

fn cluster_config(redis: &RedisServer) -> duplex_server::Config {
    let mut config = config();
    config.redis = Some(redis.url());
    config.push_token = Some(TOKEN.into());
    config.presence_ttl = Duration::from_secs(3);
    config
}

/// One HTTP/1.1 exchange; returns the status and the body.
async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = timeout(Duration::from_secs(10), exchange)
        .await
        .expect("http timed out");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head[9..12].parse().expect("a status");
    (status, body.to_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await
}

async fn push(addr: SocketAddr, room: &str, body: &str) -> (u16, String) {
    http(
        addr,
        &format!(
            "POST /api/rooms/{room}/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

/// The next server message that is not a presence event.
async fn next_not_presence(ws: &mut Client) -> ServerMessage {
    loop {
        match next_server(ws).await {
            ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. } => {}
            other => return other,
        }
    }
}

/// Three instances, two members on each, publishers on two instances at
/// once: every member gets every message once, in one order, offsets
/// 1, 2, 3, ... with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_one_order_to_every_member() {
    let redis = RedisServer::start().await;
    let servers = [
        TestServer::start(cluster_config(&redis)).await,
        TestServer::start(cluster_config(&redis)).await,
        TestServer::start(cluster_config(&redis)).await,
    ];
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for j in 0..2 {
            let (mut ws, id) = connect_rooms(server.addr).await;
            let joined = join_since(&mut ws, "r", &format!("m{i}{j}"), None).await;
            assert_eq!(joined.member_count, members.len() + 1);
            members.push(ws);
            ids.push(id);
        }
    }
    // Client ids are unique across instances and fit a JavaScript number.
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids {ids:?}");
    assert!(ids.iter().all(|&id| id < 1 << 53));

    const EACH: usize = 40;
    let publishers = [0, 2].map(|s| {
        let addr = servers[s].addr;
        tokio::spawn(async move {
            let (mut ws, _) = connect_rooms(addr).await;
            join(&mut ws, "r", &format!("pub{s}")).await;
            for n in 0..EACH {
                publish(&mut ws, "r", &format!("s{s} n{n}")).await;
            }
            // Its own copies come back through Redis too.
            for _ in 0..2 * EACH {
                next_offset(&mut ws).await;
            }
        })
    });
    let mut orders = Vec::new();
    for ws in &mut members {
        let mut got = Vec::new();
        for _ in 0..2 * EACH {
            got.push(next_offset(ws).await);
        }
        let offsets: Vec<u64> = got.iter().map(|(_, offset)| *offset).collect();
        assert_eq!(offsets, (1..=2 * EACH as u64).collect::<Vec<_>>());
        orders.push(got);
    }
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "orders differ");
    // Each publisher's messages in the order it sent them.
    for s in [0, 2] {
        let own: Vec<&str> = orders[0]
            .iter()
            .map(|(text, _)| text.as_str())
            .filter(|text| text.starts_with(&format!("s{s} ")))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|n| format!("s{s} n{n}")).collect();
        assert_eq!(own, sent);
    }
    // Nothing more: no member got a message twice.
    publish(&mut members[0], "r", "last").await;
    for ws in &mut members {
        assert_eq!(next_offset(ws).await, ("last".into(), 2 * EACH as u64 + 1));
    }
}

/// Presence and the push API see the members of every instance.
#[tokio::test]
async fn presence_and_push_span_the_instances() {
    let redis = RedisServer::start().await;
    let one = TestServer::start(cluster_config(&redis)).await;
    let two = TestServer::start(cluster_config(&redis)).await;
    let three = TestServer::start(cluster_config(&redis)).await;
    let (mut ada, ada_id) = connect_rooms(one.addr).await;
    join(&mut ada, "lobby", "ada").await;
    let (mut bob, bob_id) = connect_rooms(two.addr).await;
    let members = join(&mut bob, "lobby", "bob").await;
    let names: Vec<(u64, &str)> = members.iter().map(|m| (m.id, m.name.as_str())).collect();
    // Listed by id; which instance got the lower node number (and so the
    // lower ids) depends on which reached Redis first at start.
    let mut expected = vec![(ada_id, "ada"), (bob_id, "bob")];
    expected.sort_unstable();
    assert_eq!(names, expected);
    match next_server(&mut ada).await {
        ServerMessage::MemberJoined { member, .. } => assert_eq!(member.id, bob_id),
        other => panic!("expected bob's join, got {other:?}"),
    }
    let (status, body) = get(three.addr, "/api/rooms").await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"rooms":[{"room":"lobby","members":2}]}"#);
    let (status, body) = push(three.addr, "lobby", "from afar").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"room":"lobby","delivered":2}"#)
    );
    for ws in [&mut ada, &mut bob] {
        assert_eq!(next_offset(ws).await, ("from afar".into(), 1));
    }
    let (status, _) = push(three.addr, "nobody-here", "x").await;
    assert_eq!(status, 404);
    // bob leaves on two; ada, on one, is told.
    common::rooms::send_client(
        &mut bob,
        &duplex_protocol::ClientMessage::Leave {
            room: "lobby".into(),
        },
    )
    .await;
    match next_server(&mut ada).await {
        ServerMessage::MemberLeft { member, reason, .. } => {
            assert_eq!((member.id, reason), (bob_id, LeaveReason::Left));
        }
        other => panic!("expected bob's leave, got {other:?}"),
    }
    let (_, body) = get(one.addr, "/api/rooms").await;
    assert_eq!(body, r#"{"rooms":[{"room":"lobby","members":1}]}"#);
    let (_, health) = get(two.addr, "/healthz").await;
    assert!(health.contains(r#""status":"ok""#) && health.contains(r#""redis":"up""#));
}

/// A member drops off instance one and rejoins on instance three: it
/// recovers what was published through instance two meanwhile; past the
/// history, or with another epoch, it is told it did not.
#[tokio::test]
async fn a_member_recovers_on_another_instance() {
    let redis = RedisServer::start().await;
    let mut small = cluster_config(&redis);
    small.history_size = 5;
    let one = TestServer::start(small.clone()).await;
    let two = TestServer::start(small.clone()).await;
    let three = TestServer::start(small).await;
    let (mut publisher, _) = connect_rooms(two.addr).await;
    join(&mut publisher, "r", "pub").await;
    let (mut reader, _) = connect_rooms(one.addr).await;
    let at = join_since(&mut reader, "r", "reader", None)
        .await
        .position();
    drop(reader);
    for i in 1..=4 {
        publish(&mut publisher, "r", &format!("m{i}")).await;
        assert_eq!(next_offset(&mut publisher).await.1, i);
    }
    let (mut reader, _) = connect_rooms(three.addr).await;
    let joined = join_since(&mut reader, "r", "reader", Some(at.clone())).await;
    assert_eq!((joined.offset, joined.recovered), (4, Some(true)));
    for i in 1..=4 {
        assert_eq!(next_offset(&mut reader).await, (format!("m{i}"), i));
    }
    publish(&mut publisher, "r", "live").await;
    assert_eq!(next_offset(&mut reader).await, ("live".into(), 5));
    assert_eq!(next_offset(&mut publisher).await.1, 5);
    // 6 more: from offset 0, 11 missed, the history holds 5.
    for i in 6..=11 {
        publish(&mut publisher, "r", &format!("m{i}")).await;
        next_offset(&mut publisher).await;
    }
    for (since, expected) in [
        (at.clone(), Some(false)),
        (
            Position {
                epoch: at.epoch.clone(),
                offset: 6,
            },
            Some(true),
        ),
        (
            Position {
                epoch: "0000000000000000".into(),
                offset: 11,
            },
            Some(false),
        ),
    ] {
        let (mut ws, _) = connect_rooms(one.addr).await;
        let joined = join_since(&mut ws, "r", "again", Some(since.clone())).await;
        assert_eq!(joined.recovered, expected, "since {since:?}");
        if expected == Some(true) {
            for i in 7..=11 {
                assert_eq!(next_offset(&mut ws).await.1, i);
            }
        }
    }
}

/// An instance stopped (SIGTERM's path) removes its members at once; its
/// members reconnect to a new instance and recover what they missed.
#[tokio::test]
async fn a_stopped_instance_leaves_at_once_and_its_members_recover_elsewhere() {
    let redis = RedisServer::start().await;
    let stays = TestServer::start(cluster_config(&redis)).await;
    let mut goes = TestServer::start(cluster_config(&redis)).await;
    let (mut watcher, _) = connect_rooms(stays.addr).await;
    join(&mut watcher, "r", "watcher").await;
    let (mut member, member_id) = connect_rooms(goes.addr).await;
    let at = join_since(&mut member, "r", "member", None)
        .await
        .position();
    next_server(&mut watcher).await; // member_joined
    goes.shutdown();
    goes.finished(Duration::from_secs(10))
        .await
        .expect("clean stop");
    let started = Instant::now();
    match next_server(&mut watcher).await {
        ServerMessage::MemberLeft { member, .. } => assert_eq!(member.id, member_id),
        other => panic!("expected the member to leave, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    publish(&mut watcher, "r", "while you were away").await;
    assert_eq!(next_offset(&mut watcher).await.1, 1);
    let back = TestServer::start(cluster_config(&redis)).await;
    let (mut member, _) = connect_rooms(back.addr).await;
    let joined = join_since(&mut member, "r", "member", Some(at)).await;
    assert_eq!(joined.recovered, Some(true));
    assert_eq!(
        next_offset(&mut member).await,
        ("while you were away".into(), 1)
    );
}

/// Redis killed (-9) and restarted empty on the same port: no client is
/// disconnected; publishes meanwhile are refused with `unavailable` and
/// reach nobody; `/healthz` says degraded; then live delivery resumes on
/// its own, presence is registered again, and a position from before is
/// not recovered (new epoch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_empty_loses_history_but_no_client() {
    let mut redis = RedisServer::start().await;
    let mut strict = cluster_config(&redis);
    strict.max_protocol_errors = 2;
    let one = TestServer::start(strict).await;
    let two = TestServer::start(cluster_config(&redis)).await;
    let (mut ada, _) = connect_rooms(one.addr).await;
    let at = join_since(&mut ada, "r", "ada", None).await.position();
    let (mut bob, _) = connect_rooms(two.addr).await;
    join(&mut bob, "r", "bob").await;
    next_server(&mut ada).await; // member_joined
    publish(&mut ada, "r", "before").await;
    for ws in [&mut ada, &mut bob] {
        assert_eq!(next_offset(ws).await.1, 1);
    }
    redis.kill9();
    publish(&mut ada, "r", "lost").await;
    match next_not_presence(&mut ada).await {
        ServerMessage::Error { code, room, .. } => {
            assert_eq!((code, room.as_deref()), (ErrorCode::Unavailable, Some("r")));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // Not the client's errors: more refusals than --max-protocol-errors
    // (2 here) for Redis being away do not close it.
    for _ in 0..3 {
        publish(&mut ada, "r", "lost too").await;
        match next_not_presence(&mut ada).await {
            ServerMessage::Error {
                code: ErrorCode::Unavailable,
                ..
            } => {}
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    let (status, health) = get(one.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert!(health.contains(r#""status":"degraded""#), "{health}");
    assert!(health.contains(r#""redis":"down""#), "{health}");
    let metrics = common::metrics::Metrics::scrape(one.addr).await;
    assert_eq!(metrics.value("duplex_redis_up", &[]), 0.0);
    redis.restart().await;
    // Live delivery resumes without a reconnect (retry until the
    // instances have reconnected).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        publish(&mut ada, "r", "after").await;
        match next_not_presence(&mut ada).await {
            ServerMessage::HistoryReset { epoch, offset, .. } => {
                assert_ne!(epoch, at.epoch);
                assert_eq!(offset, 0);
                break;
            }
            ServerMessage::Error {
                code: ErrorCode::Unavailable,
                ..
            } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("expected the new epoch, got {other:?}"),
        }
    }
    assert_eq!(next_offset(&mut ada).await, ("after".into(), 1));
    match next_not_presence(&mut bob).await {
        ServerMessage::HistoryReset { .. } => {}
        other => panic!("bob: expected the new epoch, got {other:?}"),
    }
    assert_eq!(next_offset(&mut bob).await, ("after".into(), 1));
    // The instances registered their members again within a heartbeat.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = get(two.addr, "/api/rooms").await;
        if body == r#"{"rooms":[{"room":"r","members":2}]}"# {
            break;
        }
        assert!(Instant::now() < deadline, "presence not restored: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, health) = get(one.addr, "/healthz").await;
    assert!(health.contains(r#""redis":"up""#), "{health}");
    let metrics = common::metrics::Metrics::scrape(one.addr).await;
    assert_eq!(metrics.value("duplex_redis_up", &[]), 1.0);
    let (mut cy, _) = connect_rooms(two.addr).await;
    let joined = join_since(&mut cy, "r", "cy", Some(at)).await;
    assert_eq!(joined.recovered, Some(false), "a fake recovery");
}

/// Redis drops every subscriber connection (`CLIENT KILL TYPE pubsub`)
/// while messages flow: every member still gets every message once, in
/// order (the gap is filled from the stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_loses_no_message() {
    let redis = RedisServer::start().await;
    let one = TestServer::start(cluster_config(&redis)).await;
    let two = TestServer::start(cluster_config(&redis)).await;
    let (mut reader, _) = connect_rooms(two.addr).await;
    join(&mut reader, "r", "reader").await;
    let (mut publisher, _) = connect_rooms(one.addr).await;
    join(&mut publisher, "r", "pub").await;
    const TOTAL: u64 = 60;
    for n in 1..=TOTAL {
        publish(&mut publisher, "r", &format!("n{n}")).await;
        assert_eq!(next_offset(&mut publisher).await.1, n);
        if n % 20 == 0 {
            let killed = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
            assert!(killed.starts_with(':'), "{killed}");
        }
    }
    for n in 1..=TOTAL {
        assert_eq!(next_offset(&mut reader).await, (format!("n{n}"), n));
    }
}

/// An instance killed without a word (SIGKILL of the real binary): its
/// members vanish from the others' presence within `--presence-ttl` and a
/// little, with `member_left`.
#[tokio::test]
async fn a_killed_instances_members_vanish_within_the_presence_ttl() {
    let redis = RedisServer::start().await;
    let survivor = TestServer::start(cluster_config(&redis)).await;
    let url = redis.url();
    let mut doomed =
        common::process::Binary::start(&["--redis", &url, "--presence-ttl", "3s"], "info").await;
    let (mut watcher, _) = connect_rooms(survivor.addr).await;
    join(&mut watcher, "r", "watcher").await;
    let (mut ghost, ghost_id) = connect_rooms(doomed.addr).await;
    join(&mut ghost, "r", "ghost").await;
    next_server(&mut watcher).await; // member_joined
    doomed.child.start_kill().expect("SIGKILL");
    doomed.child.wait().await.expect("reaped");
    let killed = Instant::now();
    let left = timeout(Duration::from_secs(3 + 5), next_server(&mut watcher))
        .await
        .expect("the ghost is still listed");
    match left {
        ServerMessage::MemberLeft { member, reason, .. } => {
            assert_eq!((member.id, reason), (ghost_id, LeaveReason::Disconnected));
        }
        other => panic!("expected the ghost to leave, got {other:?}"),
    }
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "reaped too soon"
    );
    let (_, body) = get(survivor.addr, "/api/rooms").await;
    assert_eq!(body, r#"{"rooms":[{"room":"r","members":1}]}"#);
}

/// A member that leaves while Redis does not answer (`CLIENT PAUSE`) is
/// not left listed: the leave is made at the next heartbeat that reaches
/// Redis, and the others are told.
#[tokio::test]
async fn a_leave_during_a_redis_stall_is_made_when_it_answers_again() {
    let redis = RedisServer::start().await;
    let one = TestServer::start(cluster_config(&redis)).await;
    let two = TestServer::start(cluster_config(&redis)).await;
    let (mut ada, _) = connect_rooms(one.addr).await;
    join(&mut ada, "r", "ada").await;
    let (mut bob, bob_id) = connect_rooms(two.addr).await;
    join(&mut bob, "r", "bob").await;
    next_server(&mut ada).await; // member_joined
    let paused = redis.command(&["CLIENT", "PAUSE", "3000", "ALL"]).await;
    assert!(paused.starts_with("+OK"), "{paused}");
    drop(bob);
    // Past the pause and the 2 s call timeout, the heartbeat (every 1 s
    // at --presence-ttl 3s) makes the leave.
    let left = timeout(Duration::from_secs(10), next_server(&mut ada))
        .await
        .expect("bob is still listed");
    match left {
        ServerMessage::MemberLeft { member, .. } => assert_eq!(member.id, bob_id),
        other => panic!("expected bob to leave, got {other:?}"),
    }
    let (_, body) = get(two.addr, "/api/rooms").await;
    assert_eq!(body, r#"{"rooms":[{"room":"r","members":1}]}"#);
}

/// Binary publishes cross instances byte-exact, with their sender and
/// their offset in the same sequence as text.
#[tokio::test]
async fn binary_deliveries_cross_instances_with_their_offsets() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let redis = RedisServer::start().await;
    let one = TestServer::start(cluster_config(&redis)).await;
    let two = TestServer::start(cluster_config(&redis)).await;
    let (mut ada, ada_id) = connect_rooms(one.addr).await;
    join(&mut ada, "r", "ada").await;
    let (mut bob, _) = connect_rooms(two.addr).await;
    join(&mut bob, "r", "bob").await;
    publish(&mut ada, "r", "text first").await;
    assert_eq!(next_offset(&mut bob).await.1, 1);
    let payload: Vec<u8> = (0..=255).collect();
    let frame = duplex_protocol::binary::encode_publish("r", &payload).expect("header");
    ada.send(Message::binary(frame)).await.expect("send");
    match common::next_non_control(&mut bob).await {
        Message::Binary(data) => {
            let delivery = duplex_protocol::binary::decode_delivery(&data).expect("delivery");
            assert_eq!((delivery.from, delivery.offset), (ada_id, 2));
            assert_eq!(delivery.payload, &payload[..]);
        }
        other => panic!("expected a binary delivery, got {other:?}"),
    }
}
