//! One client connection: the TCP stream, a reusable read buffer that frames
//! are parsed in place from, and a reusable write buffer frames are encoded
//! into.
//!
//! With permessage-deflate (RFC 7692) negotiated, every data message sent is
//! compressed (RSV1 set, no context takeover, as Chromium compresses every
//! message), and received messages with RSV1 on their first frame are
//! inflated into a buffer of their own. A connection without deflate
//! carries a `None` on each side and pays one untaken branch per message.
//!
//! The compressor and the inflater are the thread's, shared by all its
//! connections, as the server shares its own: the generator is one thread
//! and never awaits inside a compression or an inflation. One compressor per
//! connection (~380 KB at 15 bits, its hash table cleared for every
//! message) made 100 connections' 100-byte echoes cost the generator 48 µs
//! of CPU each instead of 14: the clearing ran on memory the cache had lost.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use duplex_protocol::deflate::{Deflater, Inflater};
use duplex_protocol::frame::{self, Checked, FrameError, Header, OpCode, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use crate::error::ClientError;
use crate::target::Target;
use crate::ws::handshake;
use crate::ws::mask::MaskKeys;

/// Smallest read buffer: enough for the handshake response and small frames.
const MIN_READ_BUFFER: usize = 512;

/// Largest message received, in one frame or reassembled from fragments
/// (and inflated); the generator's own messages are far smaller, so a
/// bigger one is a broken echo.
const MAX_MESSAGE: usize = 64 << 20;

/// RSV1 in [`Header::rsv`]: the message is compressed (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// The default compression level of the messages sent with deflate:
/// zlib's fastest, as the server compresses.
pub const DEFLATE_LEVEL: u32 = 1;

/// Where a received message's payload lies: in the read buffer (one frame,
/// the usual case), in the reassembly buffer (fragmented message), or in
/// the inflater's output (compressed message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Buffer { start: usize, end: usize },
    Fragments,
    Inflated,
}

/// A received data message. Its bytes are read with
/// [`Client::payload`] / [`ReadSide::payload`] until the next receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// [`OpCode::Text`] or [`OpCode::Binary`].
    pub opcode: OpCode,
    place: Place,
}

/// What one frame turned out to be.
enum Event {
    Data(Message),
    Ping { start: usize, end: usize },
    Pong,
    Close(Option<u16>),
}

/// Frames parsed in place from a reusable buffer.
#[derive(Debug)]
struct Reader {
    /// Received bytes live in `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Reassembly of a fragmented message (rare: servers echo whole frames).
    fragments: Vec<u8>,
    fragment_opcode: Option<OpCode>,
    /// The fragmented message being reassembled had RSV1 on its first
    /// frame.
    fragment_compressed: bool,
    /// permessage-deflate, when negotiated: the last compressed message
    /// received, inflated (the buffer is reused).
    inflated: Option<Vec<u8>>,
    /// Bytes read from the socket, handshake included.
    received: u64,
}

/// How one connection compresses what it sends; the compressor is the
/// thread's ([`with_deflater`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Compression {
    level: u32,
    /// The most the server allows (`client_max_window_bits`).
    window_bits: u8,
}

thread_local! {
    /// The compressors of this thread's connections, one per level and
    /// window (one in any run: every connection offers the same).
    static DEFLATERS: RefCell<Vec<(Compression, Deflater)>> = const { RefCell::new(Vec::new()) };
    /// The inflater of this thread's connections; it resets after each
    /// message.
    static INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's compressor for `compression`.
fn with_deflater<T>(compression: Compression, f: impl FnOnce(&mut Deflater) -> T) -> T {
    DEFLATERS.with(|deflaters| {
        let mut deflaters = deflaters.borrow_mut();
        let index = match deflaters.iter().position(|(c, _)| *c == compression) {
            Some(index) => index,
            None => {
                let deflater = Deflater::new(compression.level, compression.window_bits);
                deflaters.push((compression, deflater));
                deflaters.len() - 1
            }
        };
        f(&mut deflaters[index].1)
    })
}

/// Inflates one whole message with this thread's inflater.
fn inflate_with_shared(compressed: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
    INFLATER.with(|inflater| {
        let mut inflater = inflater.borrow_mut();
        let inflater = inflater.get_or_insert_with(Inflater::new);
        inflater.inflate(compressed, MAX_MESSAGE, out)
    })?;
    Ok(())
}

impl Reader {
    fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(MIN_READ_BUFFER)],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            fragment_opcode: None,
            fragment_compressed: false,
            inflated: None,
            received: 0,
        }
    }

    /// Accepts RSV1 on the first frame of a data message from now on.
    fn enable_inflate(&mut self, capacity: usize) {
        self.inflated = Some(Vec::with_capacity(capacity));
    }

    /// Reads until one frame is complete and classifies it. Cancel-safe:
    /// everything read is kept in `self` before the next await.
    async fn next_event<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Event, ClientError> {
        loop {
            let available = &self.buf[self.start..self.end];
            let Some((header, header_len)) = Header::parse(available) else {
                self.fill(io, frame::MAX_HEADER_LEN).await?;
                continue;
            };
            let (header, compressed) = match header.validate(Role::Server) {
                Ok(checked) => (checked, false),
                Err(FrameError::ReservedBits) => (self.compressed_header(header)?, true),
                Err(error) => return Err(error.into()),
            };
            // Refused before `fill` would try to make room for it.
            if header.payload_len > MAX_MESSAGE {
                return Err(frame::FrameError::LengthOverflow.into());
            }
            let frame_len = header_len + header.payload_len;
            if available.len() < frame_len {
                self.fill(io, frame_len).await?;
                continue;
            }
            let start = self.start + header_len;
            let end = start + header.payload_len;
            // The payload stays readable until the next `fill`, which
            // rewinds to the front once everything is consumed: in steady
            // state (one echo per read) the buffer is never compacted.
            self.start = end;
            match header.opcode {
                OpCode::Ping => return Ok(Event::Ping { start, end }),
                OpCode::Pong => return Ok(Event::Pong),
                OpCode::Close => return Ok(Event::Close(close_code(&self.buf[start..end]))),
                OpCode::Text | OpCode::Binary if header.fin => {
                    if self.fragment_opcode.is_some() {
                        return Err(frame::FrameError::Fragmentation.into());
                    }
                    if compressed {
                        return self.inflate(header.opcode, Place::Buffer { start, end });
                    }
                    return Ok(Event::Data(Message {
                        opcode: header.opcode,
                        place: Place::Buffer { start, end },
                    }));
                }
                OpCode::Text | OpCode::Binary => {
                    if self.fragment_opcode.is_some() {
                        return Err(frame::FrameError::Fragmentation.into());
                    }
                    self.fragment_opcode = Some(header.opcode);
                    self.fragment_compressed = compressed;
                    self.fragments.clear();
                    self.fragments.extend_from_slice(&self.buf[start..end]);
                }
                OpCode::Continuation => {
                    let Some(opcode) = self.fragment_opcode else {
                        return Err(frame::FrameError::Fragmentation.into());
                    };
                    self.fragments.extend_from_slice(&self.buf[start..end]);
                    if self.fragments.len() > MAX_MESSAGE {
                        return Err(frame::FrameError::LengthOverflow.into());
                    }
                    if header.fin {
                        self.fragment_opcode = None;
                        if self.fragment_compressed {
                            return self.inflate(opcode, Place::Fragments);
                        }
                        return Ok(Event::Data(Message {
                            opcode,
                            place: Place::Fragments,
                        }));
                    }
                }
            }
        }
    }

    /// The checks of a header with RSV bits set: only RSV1, only with
    /// deflate negotiated, only on the first frame of a data message (RFC
    /// 7692 §6.1); otherwise the frame is refused as before.
    #[cold]
    fn compressed_header(&self, header: Header) -> Result<Checked, FrameError> {
        if self.inflated.is_none() || header.rsv != RSV1 {
            return Err(FrameError::ReservedBits);
        }
        let checked = Header { rsv: 0, ..header }.validate(Role::Server)?;
        match checked.opcode {
            OpCode::Text | OpCode::Binary => Ok(checked),
            _ => Err(FrameError::ReservedBits),
        }
    }

    /// Inflates the compressed message at `from` (a whole frame in the
    /// buffer, or the reassembled fragments).
    fn inflate(&mut self, opcode: OpCode, from: Place) -> Result<Event, ClientError> {
        let Some(out) = self.inflated.as_mut() else {
            return Err(FrameError::ReservedBits.into());
        };
        let compressed = match from {
            Place::Buffer { start, end } => &self.buf[start..end],
            Place::Fragments | Place::Inflated => &self.fragments[..],
        };
        out.clear();
        inflate_with_shared(compressed, out)?;
        Ok(Event::Data(Message {
            opcode,
            place: Place::Inflated,
        }))
    }

    /// Reads more bytes, first making room for `need` bytes from `start`.
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        need: usize,
    ) -> Result<(), ClientError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.buf.len() - self.start < need || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            // Room for the whole frame and at least one more byte.
            let want = need.max(self.end + 1);
            if self.buf.len() < want {
                let grown = want.max(self.buf.len() * 2);
                self.buf.resize(grown, 0);
            }
        }
        // A short read also tells tokio the socket is drained, so the next
        // read waits for the reactor without a system call that would only
        // return WouldBlock: one `recv` per echo.
        let read = io.read(&mut self.buf[self.end..]).await?;
        if read == 0 {
            return Err(ClientError::Eof);
        }
        self.end += read;
        self.received += read as u64;
        Ok(())
    }

    fn payload(&self, message: &Message) -> &[u8] {
        match message.place {
            Place::Buffer { start, end } => &self.buf[start..end],
            Place::Fragments => &self.fragments,
            Place::Inflated => self.inflated.as_deref().unwrap_or_default(),
        }
    }
}

/// The close code of a Close frame's payload (RFC 6455 §5.5.1).
fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// Frames encoded into a reusable buffer, one `write_all` each.
#[derive(Debug)]
struct Writer {
    buf: Vec<u8>,
    keys: MaskKeys,
    /// permessage-deflate, when negotiated: every data message is
    /// compressed.
    deflate: Option<Compression>,
    /// Bytes written to the socket, handshake included.
    sent: u64,
}

impl Writer {
    fn new(capacity: usize, keys: MaskKeys) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            keys,
            deflate: None,
            sent: 0,
        }
    }

    async fn send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        self.buf.clear();
        let key = self.keys.next_key();
        let start = match self.deflate {
            Some(compression) if !opcode.is_control() => {
                encode_compressed(&mut self.buf, compression, opcode, key, payload)
            }
            _ => {
                let header = Header::new(opcode, payload.len() as u64).masked(key);
                frame::encode_frame(&mut self.buf, &header, payload);
                0
            }
        };
        let frame = &self.buf[start..];
        io.write_all(frame).await?;
        self.sent += frame.len() as u64;
        Ok(())
    }
}

/// Encodes `payload` compressed into `buf` as one masked frame with RSV1
/// set, and returns where in `buf` the frame starts. The message is
/// compressed straight into `buf` after room for the longest header, and
/// the header, whose length depends on the compressed length, is written
/// just before it: no second copy of the message. Out of line, so the plain
/// path's code stays as it was.
#[inline(never)]
fn encode_compressed(
    buf: &mut Vec<u8>,
    compression: Compression,
    opcode: OpCode,
    key: [u8; 4],
    payload: &[u8],
) -> usize {
    buf.resize(frame::MAX_HEADER_LEN, 0);
    with_deflater(compression, |deflater| deflater.compress(payload, buf));
    let compressed_len = buf.len() - frame::MAX_HEADER_LEN;
    let header = Header {
        rsv: RSV1,
        ..Header::new(opcode, compressed_len as u64)
    }
    .masked(key);
    let mut head = [0; frame::MAX_HEADER_LEN];
    let used = header.encode(&mut head);
    let start = frame::MAX_HEADER_LEN - used;
    buf[start..frame::MAX_HEADER_LEN].copy_from_slice(&head[..used]);
    frame::apply_mask(&mut buf[frame::MAX_HEADER_LEN..], key);
    start
}

/// An open WebSocket connection.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    reader: Reader,
    writer: Writer,
}

impl Client {
    /// Connects to `addr`, upgrades with a request for `target`, and sizes
    /// the buffers for messages of `message_size` bytes. `seed` varies the
    /// masking keys between connections. With `deflate` (a zlib level) the
    /// request offers permessage-deflate, and the server must accept it.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when TCP fails, handshake errors when the
    /// upgrade is refused or malformed, or when `deflate` was asked for and
    /// the server declined it.
    pub async fn connect(
        addr: SocketAddr,
        target: &Target,
        seed: u64,
        message_size: usize,
        deflate: Option<u32>,
    ) -> Result<Self, ClientError> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(ClientError::Connect)?;
        // Each message is one write already; Nagle would only delay it.
        stream.set_nodelay(true)?;
        let key = generate_key();
        let request = handshake::request(target, &key, deflate.is_some());
        stream.write_all(request.as_bytes()).await?;
        let mut reader = Reader::new(message_size + frame::MAX_HEADER_LEN);
        let accepted = loop {
            reader.fill(&mut stream, 1).await?;
            let head = &reader.buf[..reader.end];
            if let Some(accepted) = handshake::parse_response(head, &key, deflate.is_some())? {
                break accepted;
            }
        };
        reader.start = accepted.head_len;
        let mut writer = Writer::new(message_size + frame::MAX_HEADER_LEN, MaskKeys::new(seed));
        writer.sent = request.len() as u64;
        if let (Some(terms), Some(level)) = (accepted.deflate, deflate) {
            reader.enable_inflate(message_size);
            writer.deflate = Some(Compression {
                level,
                window_bits: terms.client_window_bits,
            });
        }
        Ok(Self {
            stream,
            reader,
            writer,
        })
    }

    /// Whether permessage-deflate is on for this connection.
    #[must_use]
    pub fn deflate(&self) -> bool {
        self.writer.deflate.is_some()
    }

    /// Bytes written to the socket so far (frames with their headers, and
    /// the upgrade request).
    #[must_use]
    pub fn bytes_sent(&self) -> u64 {
        self.writer.sent
    }

    /// Bytes read from the socket so far (frames with their headers, and
    /// the upgrade response).
    #[must_use]
    pub fn bytes_received(&self) -> u64 {
        self.reader.received
    }

    /// Sends one data message of `opcode` ([`OpCode::Text`] or
    /// [`OpCode::Binary`]) as a single frame; the caller vouches that a
    /// text payload is UTF-8.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ClientError> {
        self.writer.send(&mut self.stream, opcode, payload).await
    }

    /// Sends one binary message as a single frame.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send_binary(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.writer
            .send(&mut self.stream, OpCode::Binary, payload)
            .await
    }

    /// Sends one text message as a single frame (the rooms protocol's
    /// JSON control messages).
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.writer
            .send(&mut self.stream, OpCode::Text, text.as_bytes())
            .await
    }

    /// Waits for the next data message, answering pings on the way.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the server closes (its Close frame is
    /// answered first), [`ClientError::Eof`] when it hangs up, or a
    /// protocol or socket error.
    pub async fn recv(&mut self) -> Result<Message, ClientError> {
        loop {
            match self.reader.next_event(&mut self.stream).await? {
                Event::Data(message) => return Ok(message),
                Event::Ping { start, end } => {
                    let mut ping = [0; frame::MAX_CONTROL_PAYLOAD];
                    let len = end - start;
                    ping[..len].copy_from_slice(&self.reader.buf[start..end]);
                    self.writer
                        .send(&mut self.stream, OpCode::Pong, &ping[..len])
                        .await?;
                }
                Event::Pong => {}
                Event::Close(code) => {
                    let echo = code.map(u16::to_be_bytes).unwrap_or_default();
                    let echo = if code.is_some() { &echo[..] } else { &[][..] };
                    // Best effort: the server may already be gone.
                    let _ = self
                        .writer
                        .send(&mut self.stream, OpCode::Close, echo)
                        .await;
                    return Err(ClientError::Closed { code });
                }
            }
        }
    }

    /// The payload of `message`, valid until the next receive.
    #[must_use]
    pub fn payload(&self, message: &Message) -> &[u8] {
        self.reader.payload(message)
    }

    /// Splits the connection so one future can send while another receives
    /// (open loop). Pings are not answered on a split connection.
    pub fn split(&mut self) -> (ReadSide<'_>, WriteSide<'_>) {
        let (read, write) = self.stream.split();
        (
            ReadSide {
                io: read,
                reader: &mut self.reader,
            },
            WriteSide {
                io: write,
                writer: &mut self.writer,
            },
        )
    }

    /// Closes with code 1000 and waits up to `timeout` for the server's
    /// Close frame, skipping any data still arriving.
    ///
    /// # Errors
    /// The server did not complete the closing handshake in time
    /// ([`ClientError::Timeout`]) or the socket failed.
    pub async fn close(mut self, timeout: Duration) -> Result<(), ClientError> {
        let handshake = async {
            self.writer
                .send(&mut self.stream, OpCode::Close, &1000_u16.to_be_bytes())
                .await?;
            loop {
                match self.reader.next_event(&mut self.stream).await {
                    Ok(Event::Close(_)) | Err(ClientError::Eof) => return Ok(()),
                    Ok(_) => {}
                    Err(error) => return Err(error),
                }
            }
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

/// The receiving half of a split [`Client`].
#[derive(Debug)]
pub struct ReadSide<'a> {
    io: ReadHalf<'a>,
    reader: &'a mut Reader,
}

impl ReadSide<'_> {
    /// Waits for the next data message; pings are skipped unanswered.
    /// Cancel-safe.
    ///
    /// # Errors
    /// As [`Client::recv`], except that a Close frame is not answered.
    pub async fn recv(&mut self) -> Result<Message, ClientError> {
        loop {
            match self.reader.next_event(&mut self.io).await? {
                Event::Data(message) => return Ok(message),
                Event::Ping { .. } | Event::Pong => {}
                Event::Close(code) => return Err(ClientError::Closed { code }),
            }
        }
    }

    /// The payload of `message`, valid until the next receive.
    #[must_use]
    pub fn payload(&self, message: &Message) -> &[u8] {
        self.reader.payload(message)
    }

    /// Bytes read from the socket so far ([`Client::bytes_received`]).
    #[must_use]
    pub fn bytes_received(&self) -> u64 {
        self.reader.received
    }
}

/// The sending half of a split [`Client`].
#[derive(Debug)]
pub struct WriteSide<'a> {
    io: WriteHalf<'a>,
    writer: &'a mut Writer,
}

impl WriteSide<'_> {
    /// Sends one binary message as a single frame.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send_binary(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.writer
            .send(&mut self.io, OpCode::Binary, payload)
            .await
    }

    /// Sends one data message as a single frame ([`Client::send`]).
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ClientError> {
        self.writer.send(&mut self.io, opcode, payload).await
    }

    /// Bytes written to the socket so far ([`Client::bytes_sent`]).
    #[must_use]
    pub fn bytes_sent(&self) -> u64 {
        self.writer.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmasked server frames, as a server would send them.
    fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        server_frame_rsv(fin, 0, opcode, payload)
    }

    fn server_frame_rsv(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = Header {
            fin,
            rsv,
            ..Header::new(opcode, payload.len() as u64)
        };
        let mut out = Vec::new();
        frame::encode_frame(&mut out, &header, payload);
        out
    }

    /// `payload` as a permessage-deflate message, compressed as the server
    /// compresses (the one codec, level 1).
    fn compressed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Deflater::new(DEFLATE_LEVEL, 15).compress(payload, &mut out);
        out
    }

    /// Chat-like JSON that compresses.
    fn chat(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"type\":\"message\",\"n\":{i},\"text\":\"hi all\"}}").into_bytes()
            })
            .collect()
    }

    fn inflating_reader() -> Reader {
        let mut reader = Reader::new(0);
        reader.enable_inflate(0);
        reader
    }

    async fn next_data(reader: &mut Reader, io: &mut Wire<'_>) -> (OpCode, Vec<u8>) {
        match reader.next_event(io).await {
            Ok(Event::Data(message)) => (message.opcode, reader.payload(&message).to_vec()),
            Ok(_) => panic!("expected data"),
            Err(error) => panic!("expected data, got {error}"),
        }
    }

    /// Bytes handed out at most `chunk` at a time.
    struct Wire<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl AsyncRead for Wire<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = buf.remaining().min(self.chunk).min(self.bytes.len());
            buf.put_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_split_across_reads_are_reassembled() {
        let mut wire = server_frame(true, OpCode::Binary, b"hello");
        wire.extend(server_frame(true, OpCode::Ping, b"p"));
        wire.extend(server_frame(false, OpCode::Text, b"frag"));
        wire.extend(server_frame(true, OpCode::Continuation, b"ment"));
        wire.extend(server_frame(true, OpCode::Close, &1001_u16.to_be_bytes()));
        // One byte per read: every partial state is exercised.
        let mut io = Wire {
            bytes: &wire,
            chunk: 1,
        };
        let mut reader = Reader::new(0);
        let Event::Data(first) = reader.next_event(&mut io).await.expect("frame") else {
            panic!("expected data");
        };
        assert_eq!(reader.payload(&first), b"hello");
        assert!(matches!(
            reader.next_event(&mut io).await,
            Ok(Event::Ping { .. })
        ));
        let Event::Data(second) = reader.next_event(&mut io).await.expect("frame") else {
            panic!("expected data");
        };
        assert_eq!(second.opcode, OpCode::Text);
        assert_eq!(reader.payload(&second), b"fragment");
        assert!(matches!(
            reader.next_event(&mut io).await,
            Ok(Event::Close(Some(1001)))
        ));
        assert!(matches!(
            reader.next_event(&mut io).await,
            Err(ClientError::Eof)
        ));
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_buffer_grows_it() {
        let payload = vec![7; 70_000];
        let mut wire = server_frame(true, OpCode::Binary, &payload);
        wire.extend(server_frame(true, OpCode::Binary, b"next"));
        let mut io = Wire {
            bytes: &wire,
            chunk: 4096,
        };
        let mut reader = Reader::new(0);
        let Event::Data(message) = reader.next_event(&mut io).await.expect("frame") else {
            panic!("expected data");
        };
        assert_eq!(reader.payload(&message), &payload[..]);
        let Event::Data(message) = reader.next_event(&mut io).await.expect("frame") else {
            panic!("expected data");
        };
        assert_eq!(reader.payload(&message), b"next");
    }

    #[tokio::test]
    async fn a_frame_over_the_message_limit_is_refused_from_its_header() {
        // Only the header: the reader must not wait for (or make room for)
        // a payload the server announces but a broken echo never sends.
        let header = Header::new(OpCode::Binary, MAX_MESSAGE as u64 + 1);
        let mut wire = [0; frame::MAX_HEADER_LEN];
        let used = header.encode(&mut wire);
        let mut io = Wire {
            bytes: &wire[..used],
            chunk: 64,
        };
        let mut reader = Reader::new(0);
        assert!(matches!(
            reader.next_event(&mut io).await,
            Err(ClientError::Protocol(frame::FrameError::LengthOverflow))
        ));
    }

    #[tokio::test]
    async fn interleaved_data_during_a_fragmented_message_is_refused() {
        let mut wire = server_frame(false, OpCode::Binary, b"a");
        wire.extend(server_frame(true, OpCode::Binary, b"b"));
        let mut io = Wire {
            bytes: &wire,
            chunk: 64,
        };
        let mut reader = Reader::new(0);
        assert!(matches!(
            reader.next_event(&mut io).await,
            Err(ClientError::Protocol(frame::FrameError::Fragmentation))
        ));
    }

    #[tokio::test]
    async fn compressed_messages_are_inflated_whole_or_fragmented() {
        let text = chat(40);
        let deflated = compressed(&text);
        assert!(deflated.len() < text.len() / 2, "{} bytes", deflated.len());
        let mut wire = server_frame_rsv(true, RSV1, OpCode::Text, &deflated);
        // Uncompressed messages still pass on a deflate connection.
        wire.extend(server_frame(true, OpCode::Binary, b"plain"));
        // A fragmented compressed message: RSV1 on the first frame only,
        // cut anywhere in the deflate stream, a ping in between.
        let (a, rest) = deflated.split_at(7);
        let (b, c) = rest.split_at(rest.len() / 2);
        wire.extend(server_frame_rsv(false, RSV1, OpCode::Binary, a));
        wire.extend(server_frame(false, OpCode::Continuation, b));
        wire.extend(server_frame(true, OpCode::Ping, b"p"));
        wire.extend(server_frame(true, OpCode::Continuation, c));
        // Empty messages compress too.
        wire.extend(server_frame_rsv(
            true,
            RSV1,
            OpCode::Binary,
            &compressed(b""),
        ));
        let mut io = Wire {
            bytes: &wire,
            chunk: 3,
        };
        let mut reader = inflating_reader();
        assert_eq!(
            next_data(&mut reader, &mut io).await,
            (OpCode::Text, text.clone())
        );
        assert_eq!(
            next_data(&mut reader, &mut io).await,
            (OpCode::Binary, b"plain".to_vec())
        );
        // The ping between the fragments comes out first (Client::recv
        // answers it), then the whole message.
        assert!(matches!(
            reader.next_event(&mut io).await,
            Ok(Event::Ping { .. })
        ));
        assert_eq!(
            next_data(&mut reader, &mut io).await,
            (OpCode::Binary, text.clone())
        );
        assert_eq!(
            next_data(&mut reader, &mut io).await,
            (OpCode::Binary, Vec::new())
        );
        assert_eq!(reader.received, wire.len() as u64);
    }

    #[tokio::test]
    async fn rsv1_is_refused_where_rfc_7692_forbids_it() {
        let deflated = compressed(b"hello hello hello");
        let refused = |wire: Vec<u8>, inflate: bool| async move {
            let mut io = Wire {
                bytes: &wire,
                chunk: 64,
            };
            let mut reader = if inflate {
                inflating_reader()
            } else {
                Reader::new(0)
            };
            loop {
                match reader.next_event(&mut io).await {
                    Ok(Event::Data(_)) => {}
                    Ok(_) => panic!("unexpected control frame"),
                    Err(error) => return error,
                }
            }
        };
        let is_reserved =
            |e: &ClientError| matches!(e, ClientError::Protocol(FrameError::ReservedBits));
        // Without deflate negotiated.
        let error = refused(server_frame_rsv(true, RSV1, OpCode::Text, &deflated), false).await;
        assert!(is_reserved(&error), "{error}");
        // On a continuation frame.
        let mut wire = server_frame_rsv(false, RSV1, OpCode::Text, &deflated[..4]);
        wire.extend(server_frame_rsv(
            true,
            RSV1,
            OpCode::Continuation,
            &deflated[4..],
        ));
        let error = refused(wire, true).await;
        assert!(is_reserved(&error), "{error}");
        // On a control frame, and RSV2 or RSV3 on anything.
        let error = refused(server_frame_rsv(true, RSV1, OpCode::Ping, b""), true).await;
        assert!(is_reserved(&error), "{error}");
        let error = refused(server_frame_rsv(true, 0b010, OpCode::Text, b"x"), true).await;
        assert!(is_reserved(&error), "{error}");
        // Data that does not inflate.
        let error = refused(
            server_frame_rsv(true, RSV1, OpCode::Binary, &[0xff; 8]),
            true,
        )
        .await;
        assert!(matches!(error, ClientError::Inflate(_)), "{error}");
    }

    /// Parses the client frames in `wire`: (header, unmasked payload).
    fn client_frames(mut wire: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Some((header, used)) = Header::parse(wire) {
            let len = header.payload_len as usize;
            let mut payload = wire[used..used + len].to_vec();
            frame::apply_mask(&mut payload, header.mask.expect("clients mask"));
            frames.push((header, payload));
            wire = &wire[used + len..];
        }
        assert!(wire.is_empty(), "a cut frame");
        frames
    }

    #[tokio::test]
    async fn with_deflate_every_data_message_is_sent_compressed() {
        let mut writer = Writer::new(0, MaskKeys::new(3));
        writer.deflate = Some(Compression {
            level: DEFLATE_LEVEL,
            window_bits: 15,
        });
        let text = chat(400);
        let mut io = Vec::new();
        for payload in [&text[..], b"a", b"", &chat(2)[..]] {
            writer
                .send(&mut io, OpCode::Text, payload)
                .await
                .expect("sent");
        }
        writer
            .send(&mut io, OpCode::Close, &1000_u16.to_be_bytes())
            .await
            .expect("sent");
        assert_eq!(writer.sent, io.len() as u64);
        let frames = client_frames(&io);
        assert_eq!(frames.len(), 5);
        let mut inflater = Inflater::new();
        for ((header, payload), sent) in frames.iter().zip([&text[..], b"a", b"", &chat(2)[..]]) {
            assert_eq!(
                (header.fin, header.rsv, header.opcode()),
                (true, RSV1, Some(OpCode::Text))
            );
            let mut out = Vec::new();
            inflater
                .inflate(payload, MAX_MESSAGE, &mut out)
                .expect("inflates");
            assert_eq!(out, sent);
        }
        assert!(frames[0].1.len() < text.len() / 4, "{}", frames[0].1.len());
        // Control frames are never compressed (RFC 7692 §6.1).
        let (close, payload) = &frames[4];
        assert_eq!((close.rsv, close.opcode()), (0, Some(OpCode::Close)));
        assert_eq!(payload, &1000_u16.to_be_bytes());
    }

    #[tokio::test]
    async fn without_deflate_frames_are_plain_and_counted() {
        let mut writer = Writer::new(0, MaskKeys::new(3));
        let mut io = Vec::new();
        writer
            .send(&mut io, OpCode::Binary, &[7; 300])
            .await
            .expect("sent");
        assert_eq!(writer.sent, 4 + 4 + 300);
        let frames = client_frames(&io);
        assert_eq!(frames[0].0.rsv, 0);
        assert_eq!(frames[0].1, vec![7; 300]);
    }
}
