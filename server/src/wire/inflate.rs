//! Compressed frames in, plain frames out: the read side of
//! permessage-deflate (RFC 7692), between the socket and tungstenite.
//!
//! tungstenite has no extensions and refuses any frame with RSV1 set. For a
//! connection that negotiated deflate, [`Inflate`] rewrites the byte stream
//! tungstenite reads: a compressed data message (RSV1 on its first frame)
//! is unmasked and inflated a piece at a time, and comes out as ordinary
//! uncompressed frames of at most one chunk each, masked with a zero key (a
//! server must see masked frames; XOR with zero changes nothing). Every
//! other frame goes through untouched, so tungstenite still judges
//! everything the RFC asks of frames: fragmentation, control frames,
//! UTF-8, the message size limit.
//!
//! Memory: inflated data is produced only as tungstenite asks for it, one
//! chunk at a time, and a message that would inflate past
//! `--max-message-size` fails here, so a compression bomb costs at most the
//! limit (tungstenite's message buffer) plus one chunk. The inflater itself
//! is borrowed from the worker's pool for one message and given back at
//! its end: an idle connection holds none.

use duplex_protocol::deflate::Inflater;
use duplex_protocol::frame::{Header, MAX_HEADER_LEN, OpCode};
use tokio::io::ReadBuf;

use crate::deflate::{DeflateError, give_back_inflater, take_inflater};

/// RSV1 in [`Header::rsv`]: "this message is compressed".
const RSV1: u8 = 0b100;

/// Largest plain frame handed on; also the inflate output buffer.
const OUT_CHUNK: usize = 16 * 1024;

/// The read-side transformer of one connection.
#[derive(Debug)]
pub(crate) struct Inflate {
    /// `--max-message-size`: most bytes one message may inflate to.
    max_message: usize,
    /// `--max-frame-size`: most compressed bytes in one frame.
    max_frame: u64,
    /// Size of the plain frames made (at most [`OUT_CHUNK`], never above
    /// the frame limit, which tungstenite applies to them).
    chunk: usize,
    state: State,
    /// A header split across reads, gathered here.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    /// Input bytes at the front of the next call's input that are already
    /// unmasked (the inflater did not take them all last time).
    unmasked: usize,
    /// Bytes made and not yet handed on (a frame header, a chunk).
    out: Vec<u8>,
    out_read: usize,
    /// The compressed message in progress.
    message: Option<Box<Message>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Header,
    /// Inside a frame passed through: its payload bytes still to copy.
    Pass(u64),
    /// Inside a compressed frame.
    Compressed {
        left: u64,
        mask: [u8; 4],
        /// Position in the mask of the next payload byte.
        offset: usize,
        fin: bool,
    },
    /// The message's last frame is in: flushing the inflater.
    Finishing,
}

/// A compressed message being inflated.
#[derive(Debug)]
struct Message {
    inflater: Inflater,
    /// The first frame's opcode (text or binary).
    opcode: OpCode,
    /// Whether a plain frame of it was handed on: the next is a
    /// continuation.
    started: bool,
    /// Bytes inflated and handed on so far.
    inflated: usize,
    /// Inflated, not yet framed.
    pending: Vec<u8>,
}

impl Inflate {
    pub(crate) fn new(max_message: usize, max_frame: usize) -> Self {
        Self {
            max_message,
            max_frame: max_frame as u64,
            chunk: OUT_CHUNK.min(max_frame).max(1),
            state: State::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            unmasked: 0,
            out: Vec::new(),
            out_read: 0,
            message: None,
        }
    }

    /// Whether there is output to hand on without any more input.
    pub(crate) fn has_output(&self) -> bool {
        self.out_read < self.out.len()
            || self.pending_full()
            || matches!(
                self.state,
                State::Finishing
                    | State::Compressed {
                        left: 0,
                        fin: true,
                        ..
                    }
            )
    }

    /// Turns bytes of `input` into the stream tungstenite reads, into `buf`
    /// as far as it has room; returns how many input bytes were used. The
    /// caller passes the rest again, with more after it, next time. The
    /// input is unmasked in place.
    pub(crate) fn fill(
        &mut self,
        input: &mut [u8],
        buf: &mut ReadBuf<'_>,
    ) -> Result<usize, DeflateError> {
        let mut used = 0;
        loop {
            if self.out_read < self.out.len() {
                if buf.remaining() == 0 {
                    return Ok(used);
                }
                let n = buf.remaining().min(self.out.len() - self.out_read);
                buf.put_slice(&self.out[self.out_read..self.out_read + n]);
                self.out_read += n;
                if self.out_read == self.out.len() {
                    self.out.clear();
                    self.out_read = 0;
                    if self.message.is_none() && self.out.capacity() > MAX_HEADER_LEN * 4 {
                        // A message's chunk is not kept between messages;
                        // room for a passed-through header is.
                        self.out = Vec::new();
                    }
                }
                continue;
            }
            let rest = &mut input[used..];
            match self.state {
                // A full chunk inflated from the frame just ended goes out
                // now, not when the next frame's header comes: has_output()
                // promised it (issue 13, found by fuzzing).
                State::Header if self.pending_full() => self.frame_pending(false),
                State::Header => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    used += self.read_header(rest)?;
                }
                State::Pass(0) => self.state = State::Header,
                State::Pass(left) => {
                    if rest.is_empty() || buf.remaining() == 0 {
                        return Ok(used);
                    }
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(rest.len())
                        .min(buf.remaining());
                    buf.put_slice(&rest[..n]);
                    used += n;
                    self.state = State::Pass(left - n as u64);
                }
                State::Compressed { left: 0, fin, .. } => {
                    self.state = if fin { State::Finishing } else { State::Header };
                }
                State::Compressed {
                    left,
                    mask,
                    offset,
                    fin,
                } => {
                    if self.pending_full() {
                        self.frame_pending(false);
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    let rest = &mut rest[..n];
                    if self.unmasked < n {
                        unmask(&mut rest[self.unmasked..], mask, offset + self.unmasked);
                        self.unmasked = n;
                    }
                    let consumed = self.inflate(rest)?;
                    used += consumed;
                    self.unmasked -= consumed;
                    self.state = State::Compressed {
                        left: left - consumed as u64,
                        mask,
                        offset: (offset + consumed) % 4,
                        fin,
                    };
                    if consumed == 0 {
                        // Nothing taken with room to write: only after
                        // the stream's final block, which takes all.
                        return Ok(used);
                    }
                }
                State::Finishing => {
                    if buf.remaining() == 0 {
                        return Ok(used);
                    }
                    self.finish()?;
                }
            }
        }
    }

    /// Reads a frame header from the start of `input` (gathering one split
    /// across reads) and decides what its frame becomes; returns the bytes
    /// taken.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, DeflateError> {
        let have = usize::from(self.header_len);
        let (header, taken) = if have == 0
            && let Some((header, len)) = Header::parse(input)
        {
            (header, len)
        } else {
            let take = (MAX_HEADER_LEN - have).min(input.len());
            self.header[have..have + take].copy_from_slice(&input[..take]);
            match Header::parse(&self.header[..have + take]) {
                Some((header, len)) => {
                    self.header_len = 0;
                    (header, len - have)
                }
                None => {
                    self.header_len = (have + take) as u8;
                    return Ok(take);
                }
            }
        };
        self.on_header(&header)?;
        Ok(taken)
    }

    fn on_header(&mut self, header: &Header) -> Result<(), DeflateError> {
        let data = header.opcode_bits & 0x8 == 0;
        let start = header.rsv == RSV1
            && matches!(header.opcode(), Some(OpCode::Text | OpCode::Binary))
            && header.mask.is_some();
        let continuation = header.rsv == 0
            && header.opcode() == Some(OpCode::Continuation)
            && header.mask.is_some();
        match (&self.message, data) {
            (Some(_), true) if !continuation => return Err(DeflateError::Protocol),
            (Some(_), true) => {}
            (None, _) if start => {
                let Some(opcode) = header.opcode() else {
                    return Err(DeflateError::Protocol);
                };
                self.message = Some(Box::new(Message {
                    inflater: take_inflater(),
                    opcode,
                    started: false,
                    inflated: 0,
                    pending: Vec::with_capacity(self.chunk),
                }));
            }
            // Anything else is tungstenite's to judge, as sent: control
            // frames, uncompressed messages, and every broken frame.
            _ => {
                let mut bytes = [0; MAX_HEADER_LEN];
                let len = header.encode(&mut bytes);
                self.out.extend_from_slice(&bytes[..len]);
                self.state = State::Pass(header.payload_len);
                return Ok(());
            }
        }
        if header.payload_len > self.max_frame {
            return Err(DeflateError::TooLarge);
        }
        self.state = State::Compressed {
            left: header.payload_len,
            mask: header.mask.unwrap_or_default(),
            offset: 0,
            fin: header.fin,
        };
        self.unmasked = 0;
        Ok(())
    }

    fn pending_full(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|message| message.pending.len() >= self.chunk)
    }

    /// Inflates from `compressed` into the pending chunk (which has room);
    /// returns the bytes consumed.
    fn inflate(&mut self, compressed: &[u8]) -> Result<usize, DeflateError> {
        let Some(message) = self.message.as_mut() else {
            return Err(DeflateError::Protocol);
        };
        let consumed = message.inflater.push(compressed, &mut message.pending)?;
        self.check_size()?;
        Ok(consumed)
    }

    /// Flushes the inflater at the end of the message and frames the rest;
    /// the message ends when every byte is out.
    fn finish(&mut self) -> Result<(), DeflateError> {
        if self.pending_full() {
            self.frame_pending(false);
            return Ok(());
        }
        let Some(message) = self.message.as_mut() else {
            return Err(DeflateError::Protocol);
        };
        let done = message.inflater.finish(&mut message.pending)?;
        self.check_size()?;
        if done {
            self.frame_pending(true);
            if let Some(message) = self.message.take() {
                give_back_inflater(message.inflater);
            }
            self.state = State::Header;
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), DeflateError> {
        match &self.message {
            Some(message) if message.inflated + message.pending.len() > self.max_message => {
                Err(DeflateError::TooLarge)
            }
            _ => Ok(()),
        }
    }

    /// Makes the pending inflated bytes a plain frame in `out`.
    fn frame_pending(&mut self, fin: bool) {
        let Some(message) = self.message.as_mut() else {
            return;
        };
        let opcode = if message.started {
            OpCode::Continuation
        } else {
            message.opcode
        };
        let header = Header {
            fin,
            ..Header::new(opcode, message.pending.len() as u64).masked([0; 4])
        };
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.encode(&mut bytes);
        self.out.extend_from_slice(&bytes[..len]);
        self.out.extend_from_slice(&message.pending);
        message.inflated += message.pending.len();
        message.pending.clear();
        message.started = true;
    }
}

impl Drop for Inflate {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            give_back_inflater(message.inflater);
        }
    }
}

/// Unmasks `payload`, whose first byte is at position `offset` of the mask.
fn unmask(payload: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    duplex_protocol::frame::apply_mask(payload, key);
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use duplex_protocol::deflate::Deflater;
    use duplex_protocol::frame::{apply_mask, encode_frame};
    use proptest::prelude::*;

    use super::*;

    /// One message as a client sends it: compressed or not, in frames of
    /// the given payload sizes.
    #[derive(Debug, Clone)]
    struct Sent {
        text: bool,
        payload: Vec<u8>,
        compressed: bool,
        /// Payload bytes per frame (the last frame takes the rest).
        split: Vec<usize>,
        /// A ping after the first frame.
        ping: bool,
    }

    fn client_frames(message: &Sent, key: [u8; 4]) -> Vec<u8> {
        let body = if message.compressed {
            let mut out = Vec::new();
            Deflater::new(1, 15).compress(&message.payload, &mut out);
            out
        } else {
            message.payload.clone()
        };
        let mut pieces = Vec::new();
        let mut rest = &body[..];
        for &size in &message.split {
            let size = size.min(rest.len());
            pieces.push(&rest[..size]);
            rest = &rest[size..];
        }
        pieces.push(rest);
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = match (i, message.text) {
                (0, true) => OpCode::Text,
                (0, false) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            let header = Header {
                fin: i == pieces.len() - 1,
                rsv: if i == 0 && message.compressed {
                    RSV1
                } else {
                    0
                },
                ..Header::new(opcode, piece.len() as u64).masked(key)
            };
            encode_frame(&mut out, &header, piece);
            if i == 0 && message.ping {
                encode_frame(&mut out, &Header::new(OpCode::Ping, 2).masked(key), b"hi");
            }
        }
        out
    }

    /// What tungstenite would read: `stream` through [`Inflate`], fed in
    /// pieces of `read` bytes and read `out` bytes at a time.
    fn transform(
        stream: &[u8],
        read: usize,
        out: usize,
        max: usize,
    ) -> Result<Vec<u8>, DeflateError> {
        let mut inflate = Inflate::new(max, max);
        let mut pending: Vec<u8> = Vec::new();
        let mut result = Vec::new();
        let mut fed = 0;
        let mut storage = vec![MaybeUninit::uninit(); out];
        loop {
            let take = read.min(stream.len() - fed);
            pending.extend_from_slice(&stream[fed..fed + take]);
            fed += take;
            let mut buf = ReadBuf::uninit(&mut storage);
            let used = inflate.fill(&mut pending, &mut buf)?;
            pending.drain(..used);
            result.extend_from_slice(buf.filled());
            if buf.filled().is_empty() && fed == stream.len() && !inflate.has_output() {
                assert!(pending.len() < MAX_HEADER_LEN, "input left over");
                return Ok(result);
            }
        }
    }

    /// Messages out of a plain frame stream (what tungstenite would
    /// return), pings dropped.
    fn messages(mut stream: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut current: Option<(bool, Vec<u8>)> = None;
        while let Some((header, len)) = Header::parse(stream) {
            assert_eq!(header.rsv, 0, "RSV1 reached tungstenite");
            let end = len + header.payload_len as usize;
            let mut payload = stream[len..end].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key);
            }
            stream = &stream[end..];
            match header.opcode() {
                Some(OpCode::Ping) => continue,
                Some(OpCode::Text) => current = Some((true, payload)),
                Some(OpCode::Binary) => current = Some((false, payload)),
                Some(OpCode::Continuation) => {
                    if let Some((_, data)) = current.as_mut() {
                        data.extend_from_slice(&payload);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
            if header.fin {
                out.extend(current.take());
            }
        }
        assert!(stream.is_empty());
        out
    }

    fn sent() -> impl Strategy<Value = Sent> {
        (
            any::<bool>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..3000),
                (1..40_000usize, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
                (0..3000usize).prop_map(|n| "chat message, ".repeat(n).into_bytes()),
            ],
            any::<bool>(),
            proptest::collection::vec(0..600usize, 0..4),
            any::<bool>(),
        )
            .prop_map(|(text, payload, compressed, split, ping)| Sent {
                text: text && std::str::from_utf8(&payload).is_ok(),
                payload,
                compressed,
                split,
                ping,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The reference: the messages sent, compressed or not, in any
        /// frames, read in any pieces, come out as the same messages in
        /// plain frames.
        #[test]
        fn same_messages_out_as_in(
            sent in proptest::collection::vec(sent(), 1..6),
            read in 1..5000usize,
            out in 1..5000usize,
            key in any::<[u8; 4]>(),
        ) {
            let stream: Vec<u8> = sent.iter().flat_map(|m| client_frames(m, key)).collect();
            let plain = transform(&stream, read, out, 1 << 20).expect("valid stream");
            let got = messages(&plain);
            let want: Vec<(bool, Vec<u8>)> =
                sent.iter().map(|m| (m.text, m.payload.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_message_inflating_to_exactly_the_limit_passes_one_more_fails() {
        let message = Sent {
            text: false,
            payload: vec![b'x'; 100_000],
            compressed: true,
            split: vec![10],
            ping: false,
        };
        let stream = client_frames(&message, [1, 2, 3, 4]);
        let plain = transform(&stream, 4096, 2048, 100_000).expect("at the limit");
        assert_eq!(messages(&plain), vec![(false, message.payload.clone())]);
        let over = transform(&stream, 4096, 2048, 99_999);
        assert_eq!(over, Err(DeflateError::TooLarge));
    }

    #[test]
    fn rsv1_rules() {
        let key = [9, 8, 7, 6];
        let compressed = Sent {
            text: true,
            payload: b"hello hello hello".to_vec(),
            compressed: true,
            split: vec![3],
            ping: false,
        };
        // RSV1 on a continuation.
        let mut stream = client_frames(&compressed, key);
        let (first, len) = Header::parse(&stream).expect("header");
        let second = len + first.payload_len as usize;
        stream[second] |= RSV1 << 4;
        assert_eq!(
            transform(&stream, 100, 100, 1000),
            Err(DeflateError::Protocol)
        );
        // A new message inside a compressed one.
        let mut stream = client_frames(&compressed, key);
        stream.truncate(second);
        stream.extend(client_frames(&compressed, key));
        assert_eq!(
            transform(&stream, 100, 100, 1000),
            Err(DeflateError::Protocol)
        );
        // RSV1 on a control frame goes to tungstenite as sent (it answers
        // 1002), and so does a frame with RSV2.
        let mut ping = Vec::new();
        let header = Header {
            rsv: RSV1,
            ..Header::new(OpCode::Ping, 0).masked(key)
        };
        encode_frame(&mut ping, &header, b"");
        assert_eq!(transform(&ping, 100, 100, 1000), Ok(ping.clone()));
    }

    /// Issue 13 (fuzzing, target `inflate`): a compressed frame that ended
    /// with a full chunk inflated left `has_output()` true, yet `fill` gave
    /// nothing until the next frame's header came. The fuzzer's input: a
    /// 1000-byte limit (1000-byte chunks), 16-byte compressed frames, reads
    /// of the sizes below, one byte handed on per call.
    #[test]
    fn has_output_means_fill_gives_output() {
        const RUNS: [(u8, usize); 42] = [
            (15, 47),
            (120, 27),
            (112, 1),
            (120, 60),
            (8, 1),
            (0, 7),
            (120, 58),
            (21, 24),
            (0, 27),
            (255, 1),
            (248, 1),
            (0, 32),
            (15, 3),
            (120, 24),
            (48, 1),
            (120, 61),
            (136, 1),
            (135, 6),
            (143, 1),
            (120, 6),
            (21, 68),
            (120, 19),
            (21, 36),
            (120, 11),
            (21, 48),
            (221, 1),
            (21, 3),
            (120, 34),
            (15, 49),
            (120, 124),
            (2, 1),
            (120, 212),
            (116, 1),
            (120, 55),
            (130, 1),
            (120, 176),
            (148, 1),
            (120, 317),
            (0, 25),
            (120, 1),
            (0, 34),
            (120, 106),
        ];
        let payload: Vec<u8> = RUNS.iter().flat_map(|&(b, n)| [b].repeat(n)).collect();
        let message = Sent {
            text: false,
            payload,
            compressed: true,
            split: vec![16; 15],
            ping: false,
        };
        let stream = client_frames(&message, [2, 15, 15, 15]);
        let mut reads = vec![2, 3, 16, 16, 16, 16, 16, 16, 16, 16, 3, 3, 256, 1, 2].into_iter();
        let mut inflate = Inflate::new(1000, 1000);
        let mut storage = [MaybeUninit::uninit(); 1];
        let (mut pending, mut fed) = (Vec::new(), 0);
        for _ in 0..100_000 {
            let take = reads.next().unwrap_or(usize::MAX).min(stream.len() - fed);
            pending.extend_from_slice(&stream[fed..fed + take]);
            fed += take;
            let promised = inflate.has_output();
            let mut buf = ReadBuf::uninit(&mut storage);
            match inflate.fill(&mut pending, &mut buf) {
                Ok(used) => drop(pending.drain(..used)),
                // 1712 bytes: over the limit, in the end.
                Err(error) => return assert_eq!(error, DeflateError::TooLarge),
            }
            assert!(
                !promised || !buf.filled().is_empty(),
                "has_output() but nothing came out, {fed} bytes fed"
            );
        }
        panic!("neither done nor failed");
    }

    #[test]
    fn corrupt_data_is_corrupt() {
        let header = Header {
            rsv: RSV1,
            ..Header::new(OpCode::Binary, 8).masked([0; 4])
        };
        let mut stream = Vec::new();
        encode_frame(&mut stream, &header, &[0xff; 8]);
        assert!(matches!(
            transform(&stream, 100, 100, 1000),
            Err(DeflateError::Corrupt(_))
        ));
    }
}
