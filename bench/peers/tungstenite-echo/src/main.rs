//! The baseline of the comparison: the smallest tokio-tungstenite echo
//! server. Accept, spawn a task per connection, read each message and send
//! data messages back; tokio's default runtime and tungstenite's default
//! configuration, nothing tuned.
//!
//! Usage: `tungstenite-echo [ADDR]` (default 127.0.0.1:0). Prints
//! `{"message":"listening","local":"IP:PORT"}` on stderr once bound.

use std::io;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&listen).await?;
    eprintln!(
        r#"{{"message":"listening","local":"{}"}}"#,
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream));
    }
}

async fn serve(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
            return;
        }
    }
}
