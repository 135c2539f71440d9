//! One client connection: the TCP stream, a reusable read buffer that frames
//! are parsed in place from, and a reusable write buffer frames are encoded
//! into.

use std::net::SocketAddr;
use std::time::Duration;

use duplex_protocol::frame::{self, Header, OpCode, Role};
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

/// Largest message received, in one frame or reassembled from fragments;
/// the generator's own messages are far smaller, so a bigger one is a
/// broken echo.
const MAX_MESSAGE: usize = 64 << 20;

/// Where a received message's payload lies: in the read buffer (one frame,
/// the usual case) or in the reassembly buffer (fragmented message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Buffer { start: usize, end: usize },
    Fragments,
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
}

impl Reader {
    fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(MIN_READ_BUFFER)],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            fragment_opcode: None,
        }
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
            let header = header.validate(Role::Server)?;
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
                        return Ok(Event::Data(Message {
                            opcode,
                            place: Place::Fragments,
                        }));
                    }
                }
            }
        }
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
        Ok(())
    }

    fn payload(&self, message: &Message) -> &[u8] {
        match message.place {
            Place::Buffer { start, end } => &self.buf[start..end],
            Place::Fragments => &self.fragments,
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
}

impl Writer {
    async fn send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        self.buf.clear();
        let header = Header::new(opcode, payload.len() as u64).masked(self.keys.next_key());
        frame::encode_frame(&mut self.buf, &header, payload);
        io.write_all(&self.buf).await?;
        Ok(())
    }
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
    /// masking keys between connections.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when TCP fails, handshake errors when the
    /// upgrade is refused or malformed.
    pub async fn connect(
        addr: SocketAddr,
        target: &Target,
        seed: u64,
        message_size: usize,
    ) -> Result<Self, ClientError> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(ClientError::Connect)?;
        // Each message is one write already; Nagle would only delay it.
        stream.set_nodelay(true)?;
        let key = generate_key();
        stream
            .write_all(handshake::request(target, &key).as_bytes())
            .await?;
        let mut reader = Reader::new(message_size + frame::MAX_HEADER_LEN);
        loop {
            reader.fill(&mut stream, 1).await?;
            if let Some(head) = handshake::parse_response(&reader.buf[..reader.end], &key)? {
                reader.start = head;
                break;
            }
        }
        Ok(Self {
            stream,
            reader,
            writer: Writer {
                buf: Vec::with_capacity(message_size + frame::MAX_HEADER_LEN),
                keys: MaskKeys::new(seed),
            },
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmasked server frames, as a server would send them.
    fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = Header {
            fin,
            ..Header::new(opcode, payload.len() as u64)
        };
        let mut out = Vec::new();
        frame::encode_frame(&mut out, &header, payload);
        out
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
}
