//! Every tunable of the server, with its default and the reason for it.
//!
//! `Config` is both the library's configuration and the binary's command
//! line (through `clap::Args`), so a default is written once and the
//! `--help` text is the documentation. The tuning constants below are the
//! few sizes that are not options; this module depends on no other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The read buffer tungstenite itself gets (`WebSocketConfig`'s
/// `read_buffer_size`): what it zero-fills before each read call
/// (`wire::tungstenite`). Small, because zeroing is wasted work; large
/// enough that a typical message is parsed in one or two calls. Messages
/// bigger than this are read from the Wire's read-ahead in chunks of this
/// size, without system calls. Tried: 1 KiB and 512 B cost more
/// instructions at 16 KiB messages than they saved at 20 B (docs/bench.md).
pub(crate) const FRAME_CHUNK: usize = 2 * 1024;

/// Bytes of replies queued before tungstenite writes them to the socket
/// without waiting for the end of the batch (`write_buffer_size`). Large
/// enough for a batch of small replies to go out in one system call,
/// small enough to keep the per-connection buffer modest.
pub(crate) const WRITE_BATCH: usize = 64 * 1024;

/// Server configuration. Build one with [`Config::default`] and adjust the
/// fields, or parse it from the command line.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on. Port 8080 is where the seed tutorial's page
    /// connects; loopback so a development run is not exposed to the network
    /// (use 0.0.0.0:8080 to serve other machines).
    #[arg(long, env = "DUPLEX_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// TLS: the certificate chain (PEM, leaf first). With --tls-key, the
    /// listener serves only TLS (wss://, https://) on the same port; a
    /// plain client gets an HTTP 400 saying so. SIGHUP reloads both files
    /// without dropping open connections; a bad new pair is logged and
    /// the old one kept. Unset: plain ws:// (put a TLS proxy in front, or
    /// set these, before serving the internet).
    #[arg(long, env = "DUPLEX_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS: the private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "DUPLEX_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Most WebSocket connections open at once. Over it, upgrade requests get
    /// HTTP 503 with Retry-After instead of a silent drop. Each connection
    /// costs a file descriptor and a few KiB; the binary raises its soft
    /// NOFILE limit to the hard limit at start.
    #[arg(long, env = "DUPLEX_MAX_CONNECTIONS", default_value = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Largest message accepted, after reassembling fragments (bytes, or with
    /// KiB/MiB/GiB). Larger ones are refused with close code 1009. 16 MiB
    /// covers the largest Autobahn cases (9.1.6, 9.2.6) while capping what one
    /// client can make us hold.
    #[arg(long, env = "DUPLEX_MAX_MESSAGE_SIZE", default_value = defaults::MAX_MESSAGE_SIZE, value_parser = parse_size)]
    pub max_message_size: usize,

    /// Largest single frame payload accepted (bytes, or with KiB/MiB/GiB).
    /// Larger ones are refused with close code 1009. Same bound as a message
    /// by default: a frame is never bigger than the message it belongs to.
    #[arg(long, env = "DUPLEX_MAX_FRAME_SIZE", default_value = defaults::MAX_FRAME_SIZE, value_parser = parse_size)]
    pub max_frame_size: usize,

    /// permessage-deflate (RFC 7692) on every WebSocket path: `on` accepts
    /// the compression every browser offers, `off` declines it. On by
    /// default because bytes cost more than CPU: chat JSON of 1 KiB travels
    /// 30% smaller each way, 16 KiB 47%, for 1.7× and 4.5× the server's
    /// CPU per echo; a room compresses a message once, so a delivery costs
    /// no more; messages under --deflate-threshold go out uncompressed
    /// (docs/bench.md, permessage-deflate). Node `ws` and uWebSockets
    /// default to off because their compression keeps ~300 KB of context
    /// per connection; Duplex keeps none. Turn it off where bandwidth is
    /// free and CPU is not.
    #[arg(long, env = "DUPLEX_DEFLATE", default_value = defaults::DEFLATE, value_enum)]
    pub deflate: Deflate,

    /// With deflate on: data messages smaller than this are sent
    /// uncompressed (bytes, or with KiB). Every compressed message pays a
    /// compressor reset (2-3 µs alone); at 512 B chat JSON shrinks by a
    /// third for 5.5 µs, at 256 B by a fifth for the same, at 128 B by 6%
    /// (docs/bench.md, permessage-deflate).
    #[arg(long, env = "DUPLEX_DEFLATE_THRESHOLD", default_value = defaults::DEFLATE_THRESHOLD, value_parser = parse_size)]
    pub deflate_threshold: usize,

    /// Most bytes read from a socket in one system call (bytes, or with
    /// KiB/MiB/GiB). The buffer exists only while input waits to be parsed,
    /// so idle connections hold none; 16 KiB takes a typical burst, or a
    /// 16 KiB message, in one call.
    #[arg(long, env = "DUPLEX_READ_BUFFER_SIZE", default_value = defaults::READ_BUFFER_SIZE, value_parser = parse_size)]
    pub read_buffer_size: usize,

    /// Bytes of outbound frames a connection may hold before it stops being
    /// read (bytes, or with KiB/MiB/GiB). Replies are written before more
    /// input is read, so a client that never reads is throttled by TCP
    /// backpressure and this caps what the server buffers for it. It must
    /// hold one message of the maximum size plus the 64 KiB write batch.
    #[arg(long, env = "DUPLEX_MAX_OUTBOUND_BUFFER", default_value = defaults::MAX_OUTBOUND_BUFFER, value_parser = parse_size)]
    pub max_outbound_buffer: usize,

    /// How long a client may take to send a complete HTTP request (the
    /// WebSocket handshake or a plain GET). Cuts off clients that send half a
    /// request (slowloris). Plain HTTP connections are closed after this too.
    #[arg(long, env = "DUPLEX_HANDSHAKE_TIMEOUT", default_value = defaults::HANDSHAKE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// How often a quiet connection is pinged. Keeps NAT and proxy state
    /// alive (many drop idle flows after 60 s) and proves the peer is there.
    #[arg(long, env = "DUPLEX_PING_INTERVAL", default_value = defaults::PING_INTERVAL, value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A connection from which nothing (not even a pong) arrived for this
    /// long is closed with 1001. Two missed pings at the default interval
    /// plus slack: long enough for a slow network, short enough to reclaim
    /// dead peers.
    #[arg(long, env = "DUPLEX_IDLE_TIMEOUT", default_value = defaults::IDLE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// How long one outbound message may take to be accepted by the client's
    /// socket. A client that stops reading is disconnected after this
    /// instead of holding its buffers forever.
    #[arg(long, env = "DUPLEX_WRITE_TIMEOUT", default_value = defaults::WRITE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,

    /// How long to wait for the peer's Close frame after sending ours (and
    /// for the peer to hang up after a protocol error) before dropping the
    /// TCP connection.
    #[arg(long, env = "DUPLEX_CLOSE_TIMEOUT", default_value = defaults::CLOSE_TIMEOUT, value_parser = humantime::parse_duration)]
    pub close_timeout: Duration,

    /// On SIGINT or SIGTERM: how long to wait for every client to complete
    /// its close handshake after Close 1001 was sent. Below the usual 30 s an
    /// orchestrator waits before SIGKILL.
    #[arg(long, env = "DUPLEX_SHUTDOWN_GRACE", default_value = defaults::SHUTDOWN_GRACE, value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Serve the web UI from this folder (the output of `trunk build
    /// --release`, e.g. `dist`): plain GETs to `/` get its index.html and
    /// other paths its files, while upgrade requests on `/` still echo, so
    /// one binary serves page and sockets. Unset: no files are served.
    #[arg(long, env = "DUPLEX_UI_DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Rooms (`/ws`): messages queued for one client before the oldest are
    /// dropped (and the client told how many it missed). A client that
    /// keeps up never holds more than a few; 256 absorbs a burst of a
    /// second or two in a busy room without letting one slow client hold
    /// much memory (256 shared messages cost 256 pointers, not copies).
    #[arg(long, env = "DUPLEX_CLIENT_QUEUE", default_value = defaults::CLIENT_QUEUE)]
    pub client_queue: usize,

    /// Rooms: a client that has missed more than this many messages since
    /// it last caught up is closed with 1013 (try again later) and leaves
    /// its rooms. Four queues' worth: a client briefly behind loses a few
    /// messages and is told; one that has stopped reading is cut off
    /// instead of being served drops forever.
    #[arg(long, env = "DUPLEX_SLOW_CLIENT_MISSED", default_value = defaults::SLOW_CLIENT_MISSED)]
    pub slow_client_missed: u64,

    /// Rooms: longest display name, in bytes. Names are repeated in every
    /// member list and presence event; 64 bytes fits any real name.
    #[arg(long, env = "DUPLEX_MAX_NAME_LEN", default_value = defaults::MAX_NAME_LEN)]
    pub max_name_len: usize,

    /// Rooms: longest room name, in bytes (at most 255: the binary header
    /// stores it in one byte). Room names are repeated in every delivery.
    #[arg(long, env = "DUPLEX_MAX_ROOM_LEN", default_value = defaults::MAX_ROOM_LEN)]
    pub max_room_len: usize,

    /// Rooms: most rooms one connection may be in at once, so one client
    /// cannot create rooms without bound.
    #[arg(long, env = "DUPLEX_MAX_ROOMS_PER_CLIENT", default_value = defaults::MAX_ROOMS_PER_CLIENT)]
    pub max_rooms_per_client: usize,

    /// Rooms: refused messages (bad JSON, unknown type, not joined, ...)
    /// a connection may send; the next one closes it with 1008. Each gets
    /// a typed error first, so a buggy client learns what is wrong; a
    /// client that keeps going is abusing the server.
    #[arg(long, env = "DUPLEX_MAX_PROTOCOL_ERRORS", default_value = defaults::MAX_PROTOCOL_ERRORS)]
    pub max_protocol_errors: u32,

    /// Rooms: rooms with more members than this send no join/leave events
    /// and answer `joined` with only this many members (plus the count).
    /// Presence costs a message to every member per join or leave, so a
    /// room filling up costs members² messages: 1000 keeps that under a
    /// million; past it a room is broadcast-only.
    #[arg(long, env = "DUPLEX_PRESENCE_LIMIT", default_value = defaults::PRESENCE_LIMIT)]
    pub presence_limit: usize,

    /// Rooms: messages kept per room, so a client that reconnects (to this
    /// or another instance) gets what it missed (`join` with `since`).
    /// Exact: a client that missed this many recovers, one that missed one
    /// more is told `recovered: false`. 100 covers a reconnect after a
    /// blip in a busy chat room for a few KiB per room; 0 keeps none.
    #[arg(long, env = "DUPLEX_HISTORY_SIZE", default_value = defaults::HISTORY_SIZE)]
    pub history_size: usize,

    /// Rooms: how long a room's history is kept after its last message
    /// (members or not); then it is lost, and the room's next message
    /// starts a new epoch. 5 minutes outlasts a laptop lid closed for a
    /// coffee, and lets an idle room's memory go.
    #[arg(long, env = "DUPLEX_HISTORY_TTL", default_value = defaults::HISTORY_TTL, value_parser = humantime::parse_duration)]
    pub history_ttl: Duration,

    /// Rooms: the Redis that makes instances one Duplex
    /// (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS,
    /// trusting the system's roots or the file in SSL_CERT_FILE):
    /// instances naming the same Redis share rooms, presence, history and
    /// the push API. Unset: this instance runs alone, history in memory.
    #[arg(long, env = "DUPLEX_REDIS")]
    pub redis: Option<String>,

    /// Rooms, with `--redis`: how long the members of an instance that
    /// died without a word stay listed. Each instance heartbeats every
    /// third of it; 30 s rides out a GC-free stall or a short network
    /// blip without listing ghosts for long.
    #[arg(long, env = "DUPLEX_PRESENCE_TTL", default_value = defaults::PRESENCE_TTL, value_parser = humantime::parse_duration)]
    pub presence_ttl: Duration,

    /// Bearer token for `POST /api/rooms/{room}/messages` (and `duplex
    /// push`). Unset: the push API answers 403 to everyone, so a server
    /// started without one cannot be pushed into by anybody.
    #[arg(long, env = "DUPLEX_PUSH_TOKEN", hide_env_values = true)]
    pub push_token: Option<String>,

    /// Web pages allowed to open WebSockets here: comma-separated origins,
    /// each exactly `scheme://host[:port]` as browsers send them (e.g.
    /// `https://chat.example.com,http://localhost:8080`). An upgrade on any
    /// path whose Origin is not listed gets 403 before the upgrade; `null`
    /// is refused; a request without Origin (not a browser) is let in.
    /// Unset: every origin, because the seed's page connects from wherever
    /// it is served; the server warns at start when it listens beyond
    /// loopback without a list. Set it on any server a browser can reach.
    #[arg(long, env = "DUPLEX_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,

    /// Rooms (`/ws`) need a JWT signed with this HS256 secret, as
    /// `?token=` or `Authorization: Bearer`; without one, or with one
    /// that is malformed, wrongly signed or expired, the upgrade gets 401.
    /// The token's `sub` is the member's name and its `exp` ends the
    /// connection (close 4001); `/` and `/echo` need none. Unset (and no
    /// --jwt-public-key): `/ws` is open to anyone, as in the seed.
    #[arg(long, env = "DUPLEX_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Rooms (`/ws`) accept JWTs signed by the private half of this PEM
    /// public key: RS256 for an RSA key, ES256 for a P-256 key. Alone or
    /// beside --jwt-secret (each token's `alg` picks its key). Unset:
    /// no public-key tokens.
    #[arg(long, env = "DUPLEX_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Data messages one connection may send per second, after
    /// reassembly, with bursts of as many (a token bucket that starts
    /// full); control frames are not counted. A client that keeps sending
    /// faster is closed with 1008. 0: no limit, because benchmarks push
    /// hundreds of thousands a second through one connection; 100 is a
    /// sound value for a public chat (a person types a few a second).
    #[arg(long, env = "DUPLEX_MAX_MESSAGES_PER_SECOND", default_value = defaults::MAX_MESSAGES_PER_SECOND)]
    pub max_messages_per_second: u32,

    /// WebSocket connections open at once from one IP address (IPv4-mapped
    /// IPv6 counts as IPv4); the next upgrade from it gets 429 with
    /// Retry-After. Plain HTTP is not counted. 0: no limit, because load
    /// generators open thousands from one address; 50 is a sound value
    /// for a public server (a browser opens a few per tab, an office
    /// behind one NAT address more) so one host cannot take every slot.
    #[arg(long, env = "DUPLEX_MAX_CONNECTIONS_PER_IP", default_value = defaults::MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
}

/// The defaults, written once: clap shows them in `--help` and
/// [`Config::default`] parses the same strings, so the two cannot drift.
mod defaults {
    pub(super) const LISTEN: &str = "127.0.0.1:8080";
    pub(super) const MAX_CONNECTIONS: &str = "10000";
    pub(super) const MAX_MESSAGE_SIZE: &str = "16MiB";
    pub(super) const MAX_FRAME_SIZE: &str = "16MiB";
    pub(super) const DEFLATE: &str = "on";
    pub(super) const DEFLATE_THRESHOLD: &str = "512";
    pub(super) const READ_BUFFER_SIZE: &str = "16KiB";
    pub(super) const MAX_OUTBOUND_BUFFER: &str = "32MiB";
    pub(super) const HANDSHAKE_TIMEOUT: &str = "10s";
    pub(super) const PING_INTERVAL: &str = "20s";
    pub(super) const IDLE_TIMEOUT: &str = "60s";
    pub(super) const WRITE_TIMEOUT: &str = "30s";
    pub(super) const CLOSE_TIMEOUT: &str = "5s";
    pub(super) const SHUTDOWN_GRACE: &str = "10s";
    pub(super) const CLIENT_QUEUE: &str = "256";
    pub(super) const SLOW_CLIENT_MISSED: &str = "1024";
    pub(super) const MAX_NAME_LEN: &str = "64";
    pub(super) const MAX_ROOM_LEN: &str = "64";
    pub(super) const MAX_ROOMS_PER_CLIENT: &str = "16";
    pub(super) const MAX_PROTOCOL_ERRORS: &str = "10";
    pub(super) const PRESENCE_LIMIT: &str = "1000";
    pub(super) const HISTORY_SIZE: &str = "100";
    pub(super) const HISTORY_TTL: &str = "5m";
    pub(super) const PRESENCE_TTL: &str = "30s";
    pub(super) const MAX_MESSAGES_PER_SECOND: &str = "0";
    pub(super) const MAX_CONNECTIONS_PER_IP: &str = "0";
}

impl Default for Config {
    /// The documented defaults, whatever `DUPLEX_*` variables are set.
    fn default() -> Self {
        // These parse constants of this module, never input: a failure is a
        // bug caught by the unit test below.
        let size = |s| parse_size(s).expect("default size parses");
        let duration = |s| humantime::parse_duration(s).expect("default duration parses");
        let count = |s: &str| s.parse::<usize>().expect("default count parses");
        Self {
            listen: defaults::LISTEN.parse().expect("default address parses"),
            tls_cert: None,
            tls_key: None,
            max_connections: defaults::MAX_CONNECTIONS
                .parse()
                .expect("default count parses"),
            max_message_size: size(defaults::MAX_MESSAGE_SIZE),
            max_frame_size: size(defaults::MAX_FRAME_SIZE),
            deflate: Deflate::from_str(defaults::DEFLATE, true).expect("default mode parses"),
            deflate_threshold: size(defaults::DEFLATE_THRESHOLD),
            read_buffer_size: size(defaults::READ_BUFFER_SIZE),
            max_outbound_buffer: size(defaults::MAX_OUTBOUND_BUFFER),
            handshake_timeout: duration(defaults::HANDSHAKE_TIMEOUT),
            ping_interval: duration(defaults::PING_INTERVAL),
            idle_timeout: duration(defaults::IDLE_TIMEOUT),
            write_timeout: duration(defaults::WRITE_TIMEOUT),
            close_timeout: duration(defaults::CLOSE_TIMEOUT),
            shutdown_grace: duration(defaults::SHUTDOWN_GRACE),
            ui_dir: None,
            client_queue: count(defaults::CLIENT_QUEUE),
            slow_client_missed: defaults::SLOW_CLIENT_MISSED
                .parse()
                .expect("default count parses"),
            max_name_len: count(defaults::MAX_NAME_LEN),
            max_room_len: count(defaults::MAX_ROOM_LEN),
            max_rooms_per_client: count(defaults::MAX_ROOMS_PER_CLIENT),
            max_protocol_errors: defaults::MAX_PROTOCOL_ERRORS
                .parse()
                .expect("default count parses"),
            presence_limit: count(defaults::PRESENCE_LIMIT),
            history_size: count(defaults::HISTORY_SIZE),
            history_ttl: duration(defaults::HISTORY_TTL),
            redis: None,
            presence_ttl: duration(defaults::PRESENCE_TTL),
            push_token: None,
            allowed_origins: None,
            jwt_secret: None,
            jwt_public_key: None,
            max_messages_per_second: defaults::MAX_MESSAGES_PER_SECOND
                .parse()
                .expect("default count parses"),
            max_connections_per_ip: count(defaults::MAX_CONNECTIONS_PER_IP),
        }
    }
}

impl Config {
    /// Checks that the values make sense together.
    ///
    /// Every duration option, by its flag's name: the one list
    /// [`Config::validate`] bounds (and the config fuzz target adds to the
    /// clock).
    pub fn durations(&self) -> [(&'static str, Duration); 8] {
        [
            ("handshake-timeout", self.handshake_timeout),
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("write-timeout", self.write_timeout),
            ("close-timeout", self.close_timeout),
            ("shutdown-grace", self.shutdown_grace),
            ("history-ttl", self.history_ttl),
            ("presence-ttl", self.presence_ttl),
        ]
    }

    /// # Errors
    /// Returns the first inconsistency found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("max-connections", self.max_connections),
            ("max-message-size", self.max_message_size),
            ("max-frame-size", self.max_frame_size),
            ("read-buffer-size", self.read_buffer_size),
            ("client-queue", self.client_queue),
            ("max-name-len", self.max_name_len),
            ("max-room-len", self.max_room_len),
            ("max-rooms-per-client", self.max_rooms_per_client),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        let durations = self.durations();
        // `--shutdown-grace 0` is allowed: close at once.
        if let Some((name, _)) = durations
            .iter()
            .find(|(name, d)| *name != "shutdown-grace" && d.is_zero())
        {
            return Err(ConfigError::Zero(name));
        }
        if let Some((name, _)) = durations.iter().find(|(_, d)| *d > MAX_DURATION) {
            return Err(ConfigError::TooLong(name));
        }
        if self.max_frame_size > self.max_message_size {
            return Err(ConfigError::FrameLargerThanMessage {
                frame: self.max_frame_size,
                message: self.max_message_size,
            });
        }
        // tungstenite counts whole frames (header included) against this
        // bound, on top of up to one write batch already queued.
        // Saturating: a size near usize::MAX must fail the check, not wrap
        // past it (issue 13, found by fuzzing).
        let needed = self
            .max_message_size
            .saturating_add(WRITE_BATCH + MAX_FRAME_HEADER);
        if self.max_outbound_buffer < needed {
            return Err(ConfigError::OutboundTooSmall {
                outbound: self.max_outbound_buffer,
                needed,
            });
        }
        if self.max_room_len > usize::from(u8::MAX) {
            return Err(ConfigError::RoomLenOverHeader(self.max_room_len));
        }
        if let Some(url) = &self.redis
            && !url.starts_with("redis://")
            && !url.starts_with("rediss://")
        {
            return Err(ConfigError::RedisUrl(url.clone()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::TlsHalfPair);
        }
        if self.push_token.as_deref() == Some("") {
            return Err(ConfigError::EmptyPushToken);
        }
        if self.jwt_secret.as_deref() == Some("") {
            return Err(ConfigError::EmptyJwtSecret);
        }
        for origin in self.allowed_origins.iter().flatten() {
            if let Err(reason) = origin_syntax(origin) {
                return Err(ConfigError::AllowedOrigin {
                    origin: origin.clone(),
                    reason,
                });
            }
        }
        if let Some(dir) = &self.ui_dir
            && !dir.join("index.html").is_file()
        {
            return Err(ConfigError::UiDirWithoutIndex(dir.clone()));
        }
        if self.idle_timeout <= self.ping_interval {
            return Err(ConfigError::IdleNotAbovePing {
                idle: self.idle_timeout,
                ping: self.ping_interval,
            });
        }
        Ok(())
    }

    /// The tungstenite settings derived from this configuration.
    pub(crate) fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(FRAME_CHUNK)
            // Replies are batched up to this, then flushed once per batch.
            .write_buffer_size(WRITE_BATCH)
            .max_write_buffer_size(self.max_outbound_buffer)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// Whether `entry` is an origin as a browser serialises it (RFC 6454,
/// section 6.1): `scheme://host[:port]`, lowercase, no path, no trailing
/// slash, no default port. `--allowed-origins` compares strings exactly,
/// so an entry in any other form could never match; it is refused at
/// start instead of silently locking every page out.
fn origin_syntax(entry: &str) -> Result<(), &'static str> {
    let Some((scheme, authority)) = entry.split_once("://") else {
        return Err("it has no scheme://");
    };
    let mut letters = scheme.bytes();
    let scheme_ok = letters.next().is_some_and(|b| b.is_ascii_lowercase())
        && letters.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err("its scheme is not a lowercase URL scheme");
    }
    if authority.contains('/') {
        return Err("an origin has no path, not even a trailing slash");
    }
    if authority.contains(['?', '#', '@']) {
        return Err("an origin has no query, fragment or user");
    }
    if authority
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("it contains whitespace");
    }
    if authority.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("browsers send hosts in lowercase");
    }
    // An IPv6 host is bracketed: the port is after the closing bracket.
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => {
            (&authority[..at], Some(&authority[at + 1..]))
        }
        _ => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return Err("it has no host");
    }
    if let Some(port) = port {
        let Ok(number) = port.parse::<u16>() else {
            return Err("its port is not a number from 1 to 65535");
        };
        if number == 0 || port.starts_with('0') {
            return Err("its port is not a number from 1 to 65535");
        }
        if (scheme, number) == ("http", 80) || (scheme, number) == ("https", 443) {
            return Err("browsers leave the default port out");
        }
    }
    Ok(())
}

/// The longest duration any option takes: a century is no real timeout
/// or TTL, and far enough past it `Instant::now() + duration` overflows,
/// a panic in every connection (issue 13, found by fuzzing: `--close-timeout
/// 300000000000y` passed validation).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The largest WebSocket frame header a server writes: 2 bytes, 8 bytes of
/// extended length, no mask (RFC 6455, section 5.2).
const MAX_FRAME_HEADER: usize = 10;

/// Whether the server accepts permessage-deflate (`--deflate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deflate {
    /// Accept the first valid offer.
    On,
    /// Decline every offer.
    Off,
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Parses a byte size: a plain integer or one with a unit, `64KiB`,
/// `16MiB`, `1.5GiB` (the `parse-size` crate). `K`, `KB`, `M`, `MB`, ...
/// are powers of 1024 too: buffer sizes are, and a `16MB` that meant
/// 16,000,000 would surprise.
///
/// # Errors
/// Returns a message naming the accepted forms.
pub fn parse_size(text: &str) -> Result<usize, String> {
    const SIZES: parse_size::Config = parse_size::Config::new().with_binary();
    let bytes = SIZES.parse_size(text).map_err(|error| {
        format!("{text:?} is not a size ({error}): write e.g. 65536, 64KiB or 16MiB")
    })?;
    usize::try_from(bytes).map_err(|_| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1 g"), Ok(1 << 30));
        assert_eq!(parse_size("16MB"), Ok(16 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn defaults_parse_and_are_consistent() {
        let config = Config::default();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.max_message_size, 16 << 20);
        assert_eq!(config.read_buffer_size, 16 << 10);
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.validate(), Ok(()));
    }

    /// Issue 13 (fuzzing, target `config`): a message size near usize::MAX
    /// overflowed the outbound check, a panic in debug builds and a wrapped
    /// bound that passed in release ones.
    #[test]
    fn a_message_size_near_the_top_of_usize_is_refused() {
        let config = Config {
            max_message_size: parse_size("18446744073709551615").expect("fits"),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutboundTooSmall { needed, .. }) if needed == usize::MAX
        ));
    }

    /// Issue 13 (fuzzing, target `config`): `--close-timeout 300000000000y`
    /// passed validation, then `Instant::now() + close_timeout` panicked in
    /// every connection that closed.
    #[test]
    fn durations_past_a_century_are_refused() {
        let mut config = Config {
            close_timeout: humantime::parse_duration("300000000000y").expect("parses"),
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooLong("close-timeout"))
        );
        config.close_timeout = MAX_DURATION;
        config.shutdown_grace = MAX_DURATION + Duration::from_secs(1);
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooLong("shutdown-grace"))
        );
        config.shutdown_grace = MAX_DURATION;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        let mut config = Config::default();
        config.max_frame_size = config.max_message_size + 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::FrameLargerThanMessage { .. })
        ));
        let mut config = Config::default();
        config.idle_timeout = config.ping_interval;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::IdleNotAbovePing { .. })
        ));
        // Regression: a maximum-size echo must fit in the outbound bound,
        // frame header and queued batch included.
        let mut config = Config::default();
        config.max_outbound_buffer = config.max_message_size;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutboundTooSmall { .. })
        ));
        let config = Config {
            max_connections: 0,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::Zero("max-connections")));
    }

    #[test]
    fn origins_must_be_as_browsers_send_them() {
        for good in [
            "https://chat.example.com",
            "http://localhost:8080",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
            "https://[2001:db8::1]",
            "chrome-extension://abcdef",
        ] {
            assert_eq!(origin_syntax(good), Ok(()), "{good}");
        }
        for bad in [
            "https://chat.example.com/",
            "https://chat.example.com/app",
            "chat.example.com",
            "null",
            "",
            "https://",
            "https://Chat.example.com",
            "HTTPS://chat.example.com",
            "https://chat.example.com:443",
            "http://localhost:80",
            "http://localhost:",
            "http://localhost:0",
            "http://localhost:65536",
            "http://localhost:08080",
            "https://a b",
            "https://user@host",
            "https://host?x",
        ] {
            assert!(origin_syntax(bad).is_err(), "{bad:?} was accepted");
        }
        let config = Config {
            allowed_origins: Some(vec![
                "https://ok.example".into(),
                "https://bad.example/".into(),
            ]),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::AllowedOrigin { origin, .. }) if origin == "https://bad.example/"
        ));
    }
}

/// A configuration value that cannot work, alone or with another one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size, count or duration that must be positive is zero.
    #[error("--{0} must be greater than zero")]
    Zero(&'static str),
    /// A duration over 100 years (the longest any option takes).
    #[error("--{0} is longer than 100 years")]
    TooLong(&'static str),
    /// A frame can never be larger than the message it is part of.
    #[error("--max-frame-size ({frame} bytes) exceeds --max-message-size ({message} bytes)")]
    FrameLargerThanMessage {
        /// The configured maximum frame size.
        frame: usize,
        /// The configured maximum message size.
        message: usize,
    },
    /// The outbound bound must hold one maximum-size message (with its frame
    /// header) on top of a queued write batch.
    #[error(
        "--max-outbound-buffer ({outbound} bytes) must be at least {needed} bytes: one message of --max-message-size plus the 64 KiB write batch and a frame header"
    )]
    OutboundTooSmall {
        /// The configured outbound buffer bound.
        outbound: usize,
        /// The smallest bound that works with the configured message size.
        needed: usize,
    },
    /// A connection would be declared dead before it is ever pinged.
    #[error("--idle-timeout ({idle:?}) must be longer than --ping-interval ({ping:?})")]
    IdleNotAbovePing {
        /// The configured idle timeout.
        idle: Duration,
        /// The configured ping interval.
        ping: Duration,
    },
    /// `--ui-dir` must hold a built UI (run `trunk build --release`).
    #[error("--ui-dir {0:?} has no index.html: build the UI first (trunk build --release)")]
    UiDirWithoutIndex(PathBuf),
    /// `--redis` takes a `redis://` or `rediss://` (TLS) URL.
    #[error("--redis {0:?} must be redis://[user:password@]host:port[/db] (rediss:// for TLS)")]
    RedisUrl(String),
    /// The binary frame header stores a room name's length in one byte.
    #[error("--max-room-len ({0}) must be at most 255: the binary header has one byte for it")]
    RoomLenOverHeader(usize),
    /// TLS needs both the certificate and its key.
    #[error("--tls-cert and --tls-key go together: set both, or neither for plain ws://")]
    TlsHalfPair,
    /// An empty token would let anyone push; leave it unset to disable.
    #[error("--push-token is empty: unset it to disable the push API")]
    EmptyPushToken,
    /// An empty secret would sign tokens anyone can forge.
    #[error("--jwt-secret is empty: unset it to leave /ws open")]
    EmptyJwtSecret,
    /// An `--allowed-origins` entry in a form no browser sends, so it
    /// could never match.
    #[error(
        "--allowed-origins entry {origin:?} is not scheme://host[:port] as browsers send it: {reason}"
    )]
    AllowedOrigin {
        /// The entry as given.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--jwt-public-key` could not be read or is not an RSA or P-256
    /// public key in PEM.
    #[error("--jwt-public-key {path:?}: {reason}")]
    JwtPublicKey {
        /// The file named.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}
