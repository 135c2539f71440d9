//! Helpers for the integration tests: in-process WebSocket servers on
//! 127.0.0.1:0 that echo faithfully, corrupt echoes, or refuse upgrades,
//! and option builders that go through the real command-line parser.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use clap::Parser;
use duplex_bench::echo::EchoOptions;
use duplex_bench::hold::HoldOptions;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// What the test server does with each data message.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Sends it back unchanged.
    Echo,
    /// Sends it back with one bit flipped in its last byte, from the
    /// `n`th message of each connection on.
    CorruptFrom(usize),
    /// Answers every upgrade with 503.
    Refuse,
}

/// Starts a server in the current runtime and returns its address.
pub async fn start_server(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Behaviour::Refuse = behaviour {
                    let _ = tcp
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut seen = 0;
                while let Some(Ok(message)) = ws.next().await {
                    let reply = match (message, behaviour) {
                        (Message::Binary(bytes), Behaviour::CorruptFrom(n)) if seen >= n => {
                            let mut bytes = bytes.to_vec();
                            if let Some(last) = bytes.last_mut() {
                                *last ^= 1;
                            }
                            Message::Binary(Bytes::from(bytes))
                        }
                        (message @ (Message::Binary(_) | Message::Text(_)), _) => message,
                        _ => continue,
                    };
                    seen += 1;
                    if ws.send(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[derive(Parser)]
struct EchoCli {
    #[command(flatten)]
    options: EchoOptions,
}

#[derive(Parser)]
struct HoldCli {
    #[command(flatten)]
    options: HoldOptions,
}

/// `duplex-bench echo` options against `addr`, plus `args`.
pub fn echo_options(addr: SocketAddr, args: &[&str]) -> EchoOptions {
    let url = format!("ws://{addr}/");
    let mut argv = vec!["echo", "--url", &url];
    argv.extend_from_slice(args);
    EchoCli::try_parse_from(argv)
        .expect("valid options")
        .options
}

/// `duplex-bench hold` options against `addr`, plus `args`.
pub fn hold_options(addr: SocketAddr, args: &[&str]) -> HoldOptions {
    let url = format!("ws://{addr}/");
    let mut argv = vec!["hold", "--url", &url];
    argv.extend_from_slice(args);
    HoldCli::try_parse_from(argv)
        .expect("valid options")
        .options
}
