//! A peer of the comparison: an echo server on fastwebsockets, arranged the
//! way the library's own echo example and benchmark run it: a
//! current-thread runtime, hyper's HTTP/1 server with upgrades, the
//! upgrade helper, a `FragmentCollector` echoing frame by frame, and the
//! connection task run `unconstrained` (no cooperative budget yields).
//!
//! Usage: `fastwebsockets-echo [ADDR]` (default 127.0.0.1:0). Prints
//! `{"message":"listening","local":"IP:PORT"}` on stderr once bound.

use std::io;

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!(
            r#"{{"message":"listening","local":"{}"}}"#,
            listener.local_addr()?
        );
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(upgrade_request))
                    .with_upgrades();
                // A client that hangs up mid-request is not news.
                let _ = connection.await;
            });
        }
    })
}

/// Answers the upgrade and starts the echo once hyper hands the socket over.
async fn upgrade_request(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, socket) = upgrade::upgrade(&mut request)?;
    tokio::spawn(tokio::task::unconstrained(async move {
        let _ = echo(socket).await;
    }));
    Ok(response)
}

async fn echo(socket: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(socket.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
