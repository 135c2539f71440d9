//! Concurrency: 500 clients connected at once, all echoing several text and
//! binary messages at the same moment, each get exactly their own messages
//! back, byte for byte and in order; `/healthz` counts all 500 and returns
//! to 0 when they have closed.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{TestServer, connect, next_non_control};
use futures_util::SinkExt;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 500;
const MESSAGES: usize = 6;
/// Bound on the whole exchange once every client is connected.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(30);

/// Messages unique to one client: texts and binaries of different sizes.
fn messages_of(client: usize) -> Vec<Message> {
    (0..MESSAGES)
        .map(|k| {
            let seed = (client * MESSAGES + k) as u64;
            let len = (client * 7 + k * 1013) % 4096;
            if k % 2 == 0 {
                Message::text(format!("{client}:{k}:{}", common::text(len, seed)))
            } else {
                let mut bytes = (client as u32).to_be_bytes().to_vec();
                bytes.extend(common::bytes(len, seed));
                Message::binary(bytes)
            }
        })
        .collect()
}

/// Each connection is two file descriptors in this process (client and
/// server side), plus a few for the runtime, the listener and `/healthz`
/// polls. The usual soft limit (1024) just fits; raise it when the hard
/// limit allows, for headroom.
fn ensure_file_descriptors() {
    let wanted = (2 * CLIENTS + 100) as u64;
    let needed = (2 * CLIENTS + 16) as u64;
    let limit = rlimit::increase_nofile_limit(wanted).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= needed,
        "this test needs {needed} file descriptors; the limit is {limit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_echo_at_once() {
    ensure_file_descriptors();
    let server = TestServer::start(common::config()).await;
    let addr = server.addr;
    let connected = Arc::new(Barrier::new(CLIENTS + 1));
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let ready = Arc::new(AtomicUsize::new(0));

    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let (connected, go, ready) = (connected.clone(), go.clone(), ready.clone());
        clients.spawn(async move {
            let mut ws = connect(addr, if client % 2 == 0 { "/" } else { "/echo" }).await;
            ready.fetch_add(1, Ordering::Relaxed);
            connected.wait().await;
            go.wait().await;

            let sent = messages_of(client);
            for message in &sent {
                ws.feed(message.clone()).await.expect("queue message");
            }
            ws.flush().await.expect("flush");
            for (k, expected) in sent.iter().enumerate() {
                let got = next_non_control(&mut ws).await;
                assert!(
                    got == *expected,
                    "client {client}: reply {k} is not its message {k}"
                );
            }
            common::close(&mut ws).await;
        });
    }

    if timeout(common::WAIT * 4, connected.wait()).await.is_err() {
        panic!(
            "only {} of {CLIENTS} clients connected in time",
            ready.load(Ordering::Relaxed)
        );
    }
    common::wait_for_connections(addr, CLIENTS as u64, common::WAIT).await;
    go.wait().await;

    let all_done = timeout(EXCHANGE_LIMIT, async {
        while let Some(result) = clients.join_next().await {
            if let Err(error) = result {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    })
    .await;
    assert!(
        all_done.is_ok(),
        "{} clients still running after {EXCHANGE_LIMIT:?}",
        clients.len()
    );
    common::wait_for_connections(addr, 0, common::WAIT).await;
    assert_eq!(
        common::health(addr).await["connections_total"],
        CLIENTS as u64
    );
}
