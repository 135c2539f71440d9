//! Helpers for the admission tests (Origin, tokens, connections per
//! address): an upgrade request with chosen headers whose answer is read
//! whatever it is (101 or a refusal), and client sockets bound to a
//! chosen loopback address.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use super::{HttpResponse, WAIT, parse_response, upgrade_request_with};

/// Sends an upgrade for `path` with `headers` (whole lines, each ending in
/// `\r\n`) on `tcp` and reads the answer's head, and its body when it is
/// not a 101 (by Content-Length). The connection is returned with it: on a
/// 101 it is an open WebSocket, to keep or drop.
pub async fn upgrade_on(
    mut tcp: TcpStream,
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> (HttpResponse, TcpStream) {
    let request = upgrade_request_with(addr, path, headers);
    timeout(WAIT, tcp.write_all(&request))
        .await
        .expect("request write timed out")
        .expect("request write");
    let mut raw = Vec::new();
    let head_end = super::read_head(&mut tcp, &mut raw).await;
    let mut response = parse_response(&raw);
    if response.status != 101 {
        let length: usize = response
            .header("content-length")
            .map_or(0, |len| len.parse().expect("numeric Content-Length"));
        while raw.len() < head_end + length {
            let mut chunk = [0u8; 1024];
            let n = timeout(WAIT, tcp.read(&mut chunk))
                .await
                .expect("body not complete in time")
                .expect("read the body");
            assert!(n > 0, "connection closed inside the body");
            raw.extend_from_slice(&chunk[..n]);
        }
        response.body = raw[head_end..head_end + length].to_vec();
    }
    (response, tcp)
}

/// [`upgrade_on`] over a new connection from the default address.
pub async fn upgrade(addr: SocketAddr, path: &str, headers: &str) -> HttpResponse {
    upgrade_on(super::tcp(addr).await, addr, path, headers)
        .await
        .0
}

/// A TCP connection to `addr` from the local address `from` (any port):
/// 127.0.0.2 is loopback too on Linux, so tests can be two hosts.
pub async fn tcp_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .expect("a socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|error| panic!("cannot bind to {from}: {error}"));
    let tcp = timeout(WAIT, socket.connect(addr))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    tcp
}
