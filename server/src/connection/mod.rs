//! One client's life after the upgrade: read frames, hand data messages to
//! the service, write replies, ping quiet peers, close idle ones, answer
//! protocol errors with the right close code, and close with 1001 on
//! shutdown. Everything that can go wrong here ends this connection only.
//!
//! This file is the event loop; [`write`](mod@write) is the write path (replies,
//! large frames, flushes), [`close_handshake`] how a session ends, and
//! [`rooms_io`] what a rooms connection (`/ws`) adds: writing out its
//! outbox, the bounded queue the hub fills, and the socket's turn. An echo
//! connection has no outbox and that select branch stays disabled, so echo
//! does no extra work per message.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use duplex_protocol::deflate::Agreement;
use futures_util::{FutureExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tracing::{debug, info, warn};

use crate::admission::{Admitted, IpSlot};
use crate::close::{self, Abort, Ending};
use crate::deflate::Compression;
use crate::echo;
use crate::keepalive::{Due, Keepalive};
use crate::rate::RateLimit;
use crate::rooms;
use crate::state::AppState;
use crate::stats::Traffic;
use crate::transport::Transport;
use crate::wire::{Inflate, Wire};

mod close_handshake;
mod rooms_io;
mod write;

use rooms_io::{RoomsIo, expiry};

/// Most messages answered before the replies are flushed and the other
/// events (shutdown, keepalive) get a look in: bounds the latency a flood
/// of input can add to them.
const MAX_BATCH: usize = 64;

/// Which service answers the messages of a connection, chosen by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Every data message comes back unchanged (`/` and `/echo`).
    Echo,
    /// Rooms, publish/subscribe and presence (`/ws`, `docs/protocol.md`).
    Rooms,
}

/// Takes over an upgraded HTTP connection and serves it until it ends.
///
/// `permit` is this connection's slot under `--max-connections`; it is held
/// until the function returns. `admitted` carries its token's identity and
/// its slot under `--max-connections-per-ip`.
pub(crate) async fn serve(
    on_upgrade: OnUpgrade,
    permit: OwnedSemaphorePermit,
    peer: SocketAddr,
    service: Service,
    deflate: Option<Agreement>,
    shared: Arc<AppState>,
    admitted: Admitted,
) {
    let _permit = permit;
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            debug!(%peer, %error, "upgrade did not complete");
            return;
        }
    };
    let config = Some(shared.config.websocket());
    // Unwrap hyper's boxed IO back into the Transport so reads and writes
    // are direct calls; keep whatever hyper had read past the request.
    let parts = match upgraded.downcast::<TokioIo<Transport>>() {
        Ok(parts) => parts,
        Err(_) => {
            // Only happens if http.rs serves something other than a
            // Transport, a bug: refuse rather than run a slower path.
            warn!(%peer, "upgraded connection is not a Transport; closing it");
            return;
        }
    };
    // Destructured so hyper's read buffer is freed here: `read_buf` shares
    // its 8 KiB allocation even when empty, and kept alive it was most of
    // an idle connection's memory (massif: 4 MB of 9.7 MB at 500 clients).
    let hyper::upgrade::Parts { io, read_buf, .. } = parts;
    // Bytes hyper read past the request go through the Wire like any
    // others, so its frame scan sees the whole stream.
    let mut tcp = Wire::new(io.into_inner(), shared.config.read_buffer_size, &read_buf);
    let primed = !read_buf.is_empty();
    drop(read_buf);
    let compression = deflate.map(|agreed| {
        let config = &shared.config;
        tcp.inflate_with(Inflate::new(config.max_message_size, config.max_frame_size));
        Compression::new(&agreed, config.deflate_threshold)
    });
    let ws = WebSocketStream::from_raw_socket(tcp, Role::Server, config).await;
    Session::new(ws, peer, service, primed, compression, admitted, &shared)
        .run()
        .await;
}

/// The state of one WebSocket connection.
struct Session<'a> {
    ws: WebSocketStream<Wire>,
    /// Whether tungstenite's last read found nothing, so it holds no whole
    /// frame: until the socket (or the read-ahead) has input, asking it
    /// again is wasted work (it zero-fills its read buffer before each read
    /// call), and before the first input it would make every idle
    /// connection pay for a resident buffer. A rooms connection wakes for
    /// every delivery, so this check runs on each one.
    input_idle: bool,
    /// Whether tungstenite may hold bytes not yet written: frames we write
    /// ourselves ([`Wire::write_frames`]) must wait for them.
    unflushed: bool,
    /// For the log line.
    peer: SocketAddr,
    shared: &'a AppState,
    /// Counted for the log line.
    traffic: Traffic,
    keepalive: Keepalive,
    /// What answers the data messages.
    serving: Serving,
    /// How replies are compressed, if the client negotiated
    /// permessage-deflate.
    compression: Option<Compression>,
    /// `--max-messages-per-second`; `None`: no limit, and the data path
    /// pays one branch for it. Boxed, like the slot below: a connection
    /// without limits pays a pointer for each, not their state.
    rate: Option<Box<RateLimit>>,
    /// Its slot under `--max-connections-per-ip`, freed as soon as the
    /// connection is known to be ending.
    ip_slot: Option<Box<IpSlot>>,
}

/// What answers a connection's data messages, with the state it needs.
enum Serving {
    /// [`Service::Echo`]: every data message comes back unchanged.
    Echo,
    /// [`Service::Rooms`]: the rooms protocol state. Boxed so an echo
    /// connection pays one pointer for it, not the whole state.
    Rooms(Box<rooms::Client>),
    /// A rooms connection that has left its rooms: it is ending.
    RoomsLeft,
}

impl Serving {
    fn service(&self) -> Service {
        match self {
            Self::Echo => Service::Echo,
            Self::Rooms(_) | Self::RoomsLeft => Service::Rooms,
        }
    }

    fn client(&self) -> Option<&rooms::Client> {
        match self {
            Self::Rooms(client) => Some(client),
            Self::Echo | Self::RoomsLeft => None,
        }
    }
}

/// What woke the session up.
enum Event {
    Shutdown,
    Tick,
    Incoming(Option<Result<Message, WsError>>),
    /// The rooms outbox may have messages (rooms connections only).
    Outbox,
    /// The client's token has expired (rooms connections with tokens).
    TokenExpired,
}

impl<'a> Session<'a> {
    fn new(
        mut ws: WebSocketStream<Wire>,
        peer: SocketAddr,
        service: Service,
        primed: bool,
        compression: Option<Compression>,
        admitted: Admitted,
        shared: &'a AppState,
    ) -> Self {
        let config = &shared.config;
        let Admitted { identity, ip_slot } = admitted;
        let serving = match service {
            Service::Echo => Serving::Echo,
            Service::Rooms => {
                // Deliveries go straight to the socket while we wait with
                // nothing to write (wire::shared, rooms::outbox).
                let socket = ws.get_ref().socket().cloned();
                let client = rooms::Client::new(
                    Arc::clone(&shared.hub),
                    rooms::Limits::new(config),
                    socket,
                    compression,
                    shared.stats.metrics.outbox(),
                    identity,
                );
                ws.get_mut().share_with(Arc::clone(client.outbox()) as _);
                Serving::Rooms(Box::new(client))
            }
        };
        Self {
            ws,
            input_idle: !primed,
            unflushed: false,
            peer,
            shared,
            traffic: Traffic::new(shared.stats.metrics.traffic(service)),
            keepalive: Keepalive::new(config.ping_interval, config.idle_timeout),
            serving,
            compression,
            rate: RateLimit::new(config.max_messages_per_second, Instant::now()).map(Box::new),
            ip_slot: ip_slot.map(Box::new),
        }
    }

    /// Serves the connection, then writes its one log line.
    async fn run(mut self) {
        let _open = self.shared.stats.open_connection(self.serving.service());
        let started = Instant::now();
        debug!(peer = %self.peer, service = ?self.serving.service(), "connection open");
        let ending = match self.serve().await {
            Err(ending) => ending,
            Ok(never) => match never {},
        };
        // Ended: the address may open another while this one lingers.
        drop(self.ip_slot.take());
        // Most endings left already (see `leave_rooms`); a dropped
        // connection leaves here, before the lingering close below.
        self.leave_rooms();
        // tungstenite answered the peer's Close with its code (our own
        // Close frames are counted as they are sent).
        if let Ending::ByPeer(Some(frame)) = &ending {
            self.shared.stats.metrics.close_sent(frame.code.into());
        }
        if let Ending::ByPeer(_)
        | Ending::ByServer {
            acknowledged: true, ..
        } = ending
        {
            self.linger(Instant::now() + self.shared.config.close_timeout)
                .await;
        }
        let t = self.traffic.tally;
        info!(
            peer = %self.peer,
            service = ?self.serving.service(),
            duration_ms = started.elapsed().as_millis() as u64,
            messages_in = t.messages_in,
            bytes_in = t.bytes_in,
            messages_out = t.messages_out,
            bytes_out = t.bytes_out,
            close_code = ending.code(),
            closed_by = ending.closed_by(),
            "connection ended: {ending}"
        );
    }

    /// Runs until the connection ends; the error is how it ended (the
    /// `Ok` side is uninhabited so `?` can end it from anywhere).
    async fn serve(&mut self) -> Result<Infallible, Ending> {
        let interval = self.shared.config.ping_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Registered once, not once per message: creating the future adds a
        // waiter to the token's list under a lock.
        let shutdown = self.shared.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        // Set once the peer's Close arrives; the handshake completes on the
        // next read, which flushes our answer and then ends the stream.
        let mut peer_close = None;
        // What the rooms service adds to this loop, in one box: an echo
        // connection pays one pointer for it.
        let mut rooms_io = self.serving.client().map(|client| {
            Box::new(RoomsIo {
                outbox: Arc::clone(client.outbox()),
                batch: Vec::new(),
                expiry: client.identity().map(|identity| expiry(identity.ends())),
            })
        });
        if let Some(client) = self.serving.client() {
            let welcome = client.welcome();
            self.feed(welcome).await?;
            self.flush().await?;
        }
        loop {
            if let Some(io) = rooms_io.as_ref() {
                if self.unflushed || self.ws.get_ref().owes() {
                    // Rare (a cut frame, a reply not yet written). Boxed,
                    // like `deliver`: inline it would grow every
                    // connection's future.
                    Box::pin(self.flush()).await?;
                }
                // Nothing owed: deliveries go straight to the socket.
                io.outbox.release();
            }
            // Input comes before shutdown and keepalive: while messages
            // flow, those two futures are not polled at all (polling the
            // shutdown waiter takes a lock; together they were ~5% of the
            // instructions per echoed message). A flood cannot hide a
            // shutdown: the flag is read, one atomic load, every turn.
            let stopping = self.shared.stopping.load(Ordering::Relaxed);
            let event = if stopping && peer_close.is_none() {
                Event::Shutdown
            } else {
                let (ws, idle) = (&mut self.ws, &mut self.input_idle);
                // Both arms are cancel-safe: nothing is lost if another
                // branch wins.
                let input = std::future::poll_fn(|cx| {
                    if *idle {
                        match ws.get_ref().poll_input_ready(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Err(error)) => {
                                let error = Some(Err(WsError::Io(error)));
                                return Poll::Ready(Event::Incoming(error));
                            }
                            Poll::Ready(Ok(())) => {}
                        }
                    }
                    let incoming = ws.poll_next_unpin(cx);
                    *idle = incoming.is_pending();
                    incoming.map(Event::Incoming)
                });
                // A pointer-sized future: echo has no waiter and its branch
                // is disabled, so the session's state does not grow for it.
                let rooms = rooms_io.is_some();
                let queued = std::future::poll_fn(|cx| match rooms_io.as_mut() {
                    Some(io) => io.poll_event(cx),
                    None => Poll::Pending,
                });
                tokio::select! {
                    biased;
                    // Before input: a client flooding us still gets its
                    // rooms' traffic between batches.
                    event = queued, if rooms && peer_close.is_none() => event,
                    event = input => event,
                    () = &mut shutdown, if peer_close.is_none() => Event::Shutdown,
                    _ = ticker.tick(), if peer_close.is_none() => Event::Tick,
                }
            };
            match event {
                Event::Shutdown => {
                    let grace = self.shared.config.shutdown_grace;
                    return Err(self
                        .close(CloseCode::Away, "server shutting down", grace)
                        .await);
                }
                Event::Tick => {
                    // Between messages, and only then, a codec left with a
                    // large frame's buffer is replaced (frame_scan): at a
                    // tick, so a client sending large messages back to
                    // back does not pay an allocation for each.
                    if self.input_idle
                        && !self.unflushed
                        && self.ws.get_ref().codec_worth_renewing()
                    {
                        // Boxed: inline, the stream under construction
                        // would be part of every connection's future.
                        Box::pin(self.renew_codec()).await;
                    }
                    match self.keepalive.tick(self.ws.get_mut().take_heard()) {
                        Due::Nothing => {}
                        Due::Ping => {
                            self.feed(Message::Ping(Default::default())).await?;
                            self.flush().await?;
                        }
                        Due::Expired => {
                            let wait = self.shared.config.close_timeout;
                            return Err(self.close(CloseCode::Away, "idle timeout", wait).await);
                        }
                    }
                }
                Event::TokenExpired => {
                    let wait = self.shared.config.close_timeout;
                    let close = self.close(close::TOKEN_EXPIRED, close::TOKEN_EXPIRED_REASON, wait);
                    return Err(Box::pin(close).await);
                }
                Event::Outbox => {
                    if let Some(io) = rooms_io.as_mut() {
                        // Boxed: inline, its select of a write and the kick
                        // would be the largest state of this future and
                        // grow every connection, echo too.
                        Box::pin(self.deliver(io)).await?;
                    }
                }
                Event::Incoming(mut incoming) => {
                    // A ping or a close queues tungstenite's answer.
                    self.unflushed = true;
                    // Answer everything that is already readable, then write
                    // the replies with one flush: a pipelining client gets
                    // one write system call per batch, not per message.
                    for round in 1..=MAX_BATCH {
                        match incoming {
                            Some(Ok(message)) => self.on_message(message, &mut peer_close).await?,
                            Some(Err(error)) => {
                                // Replies to earlier messages still go out
                                // before the close frame, when they can.
                                let _ = self.flush().await;
                                return Err(self.fail(error).await);
                            }
                            None => {
                                return Err(match peer_close {
                                    Some(frame) => Ending::ByPeer(frame),
                                    None => {
                                        Ending::Dropped(Abort::Transport(WsError::ConnectionClosed))
                                    }
                                });
                            }
                        }
                        // Only look for more when input is known to be
                        // there: each read call costs tungstenite a buffer
                        // fill, wasted when it finds nothing. Messages
                        // already parsed into tungstenite's buffer are
                        // picked up by the next turn of the loop.
                        // The last round must not read another message:
                        // the loop would end and drop it (regression test:
                        // echo.rs, a pipelined burst longer than a batch).
                        if round == MAX_BATCH || !self.ws.get_ref().input_pending() {
                            break;
                        }
                        match self.ws.next().now_or_never() {
                            Some(next) => incoming = next,
                            None => {
                                self.input_idle = true;
                                break;
                            }
                        }
                    }
                    self.flush().await?;
                }
            }
        }
    }

    /// Handles one incoming message: data goes to the service and its reply
    /// is queued; control frames prove the peer is alive.
    async fn on_message(
        &mut self,
        message: Message,
        peer_close: &mut Option<Option<CloseFrame>>,
    ) -> Result<(), Ending> {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if let Some(rate) = &mut self.rate
                    && !rate.admit(Instant::now())
                {
                    self.shared.stats.metrics.rate_limited();
                    let wait = self.shared.config.close_timeout;
                    // Boxed for the same reason as `deliver`.
                    let close =
                        Box::pin(self.close(CloseCode::Policy, close::RATE_LIMITED_REASON, wait));
                    return Err(close.await);
                }
                self.traffic.received(message.len());
                let reply = match &mut self.serving {
                    Serving::Echo => echo::reply(message),
                    // Boxed: a publish may wait for its room's turn, and
                    // that state inline would grow every connection's
                    // future, echo's too.
                    Serving::Rooms(client) => {
                        match Box::pin(client.handle(message)).await {
                            Ok(Some(reply)) => {
                                // Deliveries queue behind our answer until
                                // it is written (wire::shared).
                                client.outbox().hold();
                                Some(reply)
                            }
                            Ok(None) => None,
                            Err(rooms::Abusive) => {
                                let wait = self.shared.config.close_timeout;
                                // Boxed for the same reason as `deliver`.
                                let close = Box::pin(self.close(
                                    CloseCode::Policy,
                                    "too many bad messages",
                                    wait,
                                ));
                                return Err(close.await);
                            }
                        }
                    }
                    Serving::RoomsLeft => None,
                };
                if let Some(reply) = reply {
                    self.feed(reply).await?;
                }
            }
            Message::Close(frame) => {
                // tungstenite answers it: no delivery may follow, and the
                // member is gone for the rest of the room.
                self.leave_rooms();
                *peer_close = Some(frame);
            }
            // tungstenite queues the pong itself and writes it on the next
            // read; pongs only prove liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }

    /// Replaces tungstenite's codec with a new one on the same Wire, to
    /// free the read buffer a large frame grew. Only when the old one
    /// holds nothing: its last read found no whole frame (`input_idle`),
    /// it has nothing to write (`!unflushed`) and the Wire saw its input
    /// end at a message boundary ([`Wire::codec_worth_renewing`]).
    async fn renew_codec(&mut self) {
        let config = *self.ws.get_config();
        let stand_in = self.ws.get_ref().stand_in();
        let mut wire = std::mem::replace(self.ws.get_mut(), stand_in);
        wire.codec_renewed();
        self.ws = WebSocketStream::from_raw_socket(wire, Role::Server, Some(config)).await;
        debug!(peer = %self.peer, "codec renewed after a large frame");
    }
}
