//! How a session ends: the close handshake it starts (shutdown, idle,
//! abuse, a slow client), the one it answers with the RFC 6455 code for a
//! read error, and the lingering half-close after the Close frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::debug;

use super::Session;
use crate::close::{self, Abort, Ending};

impl Session<'_> {
    /// Starts the close handshake with `code` and waits up to `wait` for the
    /// peer's answer, discarding data still in flight.
    pub(super) async fn close(
        &mut self,
        code: CloseCode,
        reason: &'static str,
        wait: Duration,
    ) -> Ending {
        self.leave_rooms();
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let deadline = Instant::now() + wait;
        self.shared.stats.metrics.close_sent(code.into());
        let sent = timeout_at(deadline, self.ws.send(Message::Close(Some(frame.clone())))).await;
        let mut acknowledged = false;
        if matches!(sent, Ok(Ok(()))) {
            while let Ok(Some(Ok(message))) = timeout_at(deadline, self.ws.next()).await {
                acknowledged |= message.is_close();
            }
        }
        Ending::ByServer {
            frame,
            acknowledged,
        }
    }

    /// Fails the connection after a read error: sends the close code RFC 6455
    /// asks for, then half-closes and drains the socket so the peer reads our
    /// Close before the connection goes away (closing with unread input
    /// would reset it and could destroy the frame in flight).
    pub(super) async fn fail(&mut self, error: WsError) -> Ending {
        let Some(frame) = close::frame_for(&error) else {
            return Ending::Dropped(Abort::Transport(error));
        };
        debug!(peer = %self.peer, %error, code = u16::from(frame.code), "failing the connection");
        self.leave_rooms();
        let deadline = Instant::now() + self.shared.config.close_timeout;
        self.shared.stats.metrics.close_sent(frame.code.into());
        let sent = timeout_at(deadline, self.ws.send(Message::Close(Some(frame.clone())))).await;
        if matches!(sent, Ok(Ok(()))) {
            self.linger(deadline).await;
        }
        Ending::ByServer {
            frame,
            acknowledged: false,
        }
    }

    /// Ends the TCP connection the way RFC 6455 (section 7.1.1) wants it
    /// after the close frames: the server half-closes first, then reads
    /// whatever the peer still sends until it hangs up or `deadline`.
    /// Dropping a socket with unread input would reset it, and a reset can
    /// destroy our Close frame before the peer reads it.
    pub(super) async fn linger(&mut self, deadline: Instant) {
        let io = self.ws.get_mut();
        let _ = timeout_at(deadline, async {
            io.shutdown().await?;
            // On the heap: kept in the future, it would cost every
            // connection 1 KiB for the whole of its life.
            let mut scratch = vec![0u8; 1024];
            while io.read(&mut scratch).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    }
}
