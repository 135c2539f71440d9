//! The rooms side of a session (`/ws`): writing out what the hub queued
//! for the client, giving the socket's turn back to the hub when there is
//! nothing to write, ending the connection when its token expires, and
//! leaving the rooms when the connection ends. An echo session never gets
//! here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::write::within_write_timeout;
use super::{Ending, Event, MAX_BATCH, Serving, Session};
use crate::rooms::Outbox;
use crate::wire::Frame;

/// The outbox side of a rooms connection, for the session loop.
pub(super) struct RoomsIo {
    /// The client's queue, shared with the hub.
    pub(super) outbox: Arc<Outbox>,
    /// Frames taken from the outbox, reused for every batch.
    pub(super) batch: Vec<Frame>,
    /// When the client's token expires (tokens on): a timer, polled with
    /// the outbox so the event loop has no branch for it.
    pub(super) expiry: Option<Pin<Box<Sleep>>>,
}

impl RoomsIo {
    /// Ready when the token has expired or the outbox has messages.
    pub(super) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if let Some(expiry) = self.expiry.as_mut()
            && expiry.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Event::TokenExpired);
        }
        self.outbox.poll_ready(cx).map(|()| Event::Outbox)
    }
}

/// A timer that fires at `ends` (wall-clock time, as a token's `exp`),
/// at once if it has passed.
pub(super) fn expiry(ends: SystemTime) -> Pin<Box<Sleep>> {
    let left = ends
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        // Tokio's own stand-in for "never": a token valid for centuries
        // must not overflow the timer.
        .min(NEVER);
    Box::pin(tokio::time::sleep_until(Instant::now() + left))
}

/// About thirty years: as good as never for one connection.
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Session<'_> {
    /// Writes out what the hub queued for this rooms client, telling it
    /// first how many messages it missed, if any. A client too far behind
    /// (its outbox kicked) is closed with 1013, even while a write to it is
    /// blocked on its full socket: the write is given up, and the Close
    /// still follows only whole frames (the Wire finishes a cut frame
    /// first, within the close timeout).
    ///
    /// The frames were encoded once by the hub and go out as they are, in
    /// one vectored write: no copy into tungstenite, no per-member framing.
    pub(super) async fn deliver(&mut self, io: &mut RoomsIo) -> Result<(), Ending> {
        let RoomsIo { outbox, batch, .. } = io;
        let mut kicked = outbox.is_kicked();
        // What tungstenite holds goes first. Biased, both: a write that
        // completes at once (the usual case) never polls, and so never
        // registers, the kick waiter.
        if !kicked {
            kicked = tokio::select! {
                biased;
                result = self.flush_tungstenite() => { result?; false }
                () = outbox.kicked() => true,
            };
        }
        if !kicked {
            outbox.take_into(MAX_BATCH, batch);
            // Even with nothing taken: the rest of a frame the hub wrote
            // partly is ours to finish.
            kicked = tokio::select! {
                biased;
                result = self.write_frames(batch) => { result?; false }
                () = outbox.kicked() => true,
            };
        }
        batch.clear();
        if kicked {
            // `close` leaves the rooms first: the others hear at once that
            // this member was too slow.
            let wait = self.shared.config.close_timeout;
            return Err(self
                .close(CloseCode::Again, "too slow: missed too many messages", wait)
                .await);
        }
        Ok(())
    }

    /// Writes encoded frames within the write timeout; tungstenite must
    /// hold nothing (see `deliver`).
    async fn write_frames(&mut self, frames: &[Frame]) -> Result<(), Ending> {
        let write = self.ws.get_mut().write_frames(frames);
        within_write_timeout(self.shared.config.write_timeout, write).await?;
        for frame in frames {
            self.traffic.sent(frame.payload_len());
        }
        Ok(())
    }

    /// Stops deliveries, then leaves every room (the other members are
    /// told why) and counts what the hub wrote to this client directly.
    ///
    /// Called as soon as the connection is known to be ending (a Close
    /// sent or received, a failed read or write), not after the close
    /// handshake: that can take the whole close timeout when the peer does
    /// not answer, and the room would list a member that is gone. Nothing
    /// may be delivered after our Close frame, and nothing is, since the
    /// outbox is closed before the Close is written; a frame the hub left
    /// partly written is finished before it.
    pub(super) fn leave_rooms(&mut self) {
        if !matches!(self.serving, Serving::Rooms(_)) {
            return;
        }
        if let Serving::Rooms(client) = std::mem::replace(&mut self.serving, Serving::RoomsLeft) {
            if let Some(rest) = client.outbox().close() {
                self.ws.get_mut().write_first(rest);
            }
            // Already in the metrics: counted as the hub wrote them.
            let direct = client.outbox().sent();
            self.traffic.tally.messages_out += direct.messages_out;
            self.traffic.tally.bytes_out += direct.bytes_out;
        }
    }
}
