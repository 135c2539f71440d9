#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/<name>: a few real inputs
per target in the layout its entry point reads (docs/fuzzing.md). Run it
after changing a layout; fuzz runs never rewrite these files
(scripts/fuzz.sh works on a copy)."""

import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def header(opcode, length, fin=True, rsv=0, mask=None):
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    masked = 0x80 if mask is not None else 0
    if length < 126:
        out = bytes([first, masked | length])
    elif length < 65536:
        out = bytes([first, masked | 126]) + struct.pack(">H", length)
    else:
        out = bytes([first, masked | 127]) + struct.pack(">Q", length)
    return out + (bytes(mask) if mask is not None else b"")


def frame(opcode, payload, fin=True, rsv=0, mask=(1, 2, 3, 4)):
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask else payload
    return header(opcode, len(payload), fin, rsv, mask) + body


def deflate(payload):
    """A permessage-deflate message body: raw deflate, sync flush, tail cut."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    out = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def cuts(*sizes):
    """The [count][size - 1 ...] prefix of a cut list."""
    return bytes([len(sizes)] + [s - 1 for s in sizes])


def post(kind, sender, name, body):
    name = name.encode()
    return bytes([kind]) + struct.pack(">QH", sender, len(name)) + name + body


def bulk(b):
    if isinstance(b, str):
        b = b.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


def array(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def integer(n):
    return b":%d\r\n" % n


# handshake: name:value lines; 0-5 stand for Connection, Upgrade,
# Sec-WebSocket-Extensions, User-Agent, Sec-WebSocket-Version, -Key.
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SAFARI_15_2 = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.2 Safari/605.1.15"
write("handshake", "chrome", "\n".join([
    "Host: 127.0.0.1:8080", "Connection: Upgrade", "Upgrade: websocket",
    "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "User-Agent: " + CHROME]))
write("handshake", "firefox", "\n".join([
    "Connection: keep-alive, Upgrade", "Upgrade: websocket",
    "Sec-WebSocket-Extensions: permessage-deflate",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"]))
write("handshake", "safari-15.2", "\n".join([
    "Connection: Upgrade", "Upgrade: websocket",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "User-Agent: " + SAFARI_15_2]))
write("handshake", "offers-on-lines", "\n".join([
    "0:upgrade", "1:WebSocket",
    '2:x-webkit-deflate-frame, permessage-deflate; server_max_window_bits="10"; foo',
    "2:permessage-deflate; server_max_window_bits=8; client_max_window_bits=15; server_no_context_takeover",
    '2:permessage-deflate; client_max_window_bits="1\\5", permessage-deflate']))
write("handshake", "duplicates", "\n".join([
    "2:permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "2:permessage-deflate; server_max_window_bits=08",
    "2:permessage-deflate; server_max_window_bits",
    '2:permessage-deflate; a="b,c"; d', "3:Version/15.3.1 Safari/1 Chrome/2"]))

# admission: the request target on the first line, then header lines;
# fuzzing::admission checks against its own origins and "fuzz-secret".
def hs256(claims, secret=b"fuzz-secret"):
    import base64, hashlib, hmac, json
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
TOKEN = hs256({"sub": "ada", "exp": 4102444800, "rooms": ["lobby"]})
write("admission", "listed-origin", "\n".join(["/echo", "origin: https://chat.example"]))
write("admission", "other-origin", "\n".join(["/", "origin: https://evil.example", "origin: null"]))
write("admission", "query-token", "\n".join(["/ws?token=" + TOKEN, "origin: http://localhost:8080"]))
write("admission", "header-token", "\n".join(["/ws?token=x", "authorization: Bearer " + TOKEN]))
write("admission", "basic", "\n".join(["/ws", "authorization: Basic YWRhOnB3"]))
write("admission", "alg-none", "\n".join(["/ws?token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZGEifQ."]))
write("admission", "two-tokens", "\n".join(["/ws?token=a&token=" + TOKEN]))

# client_message: a /ws text message.
for name, text in [
    ("join", '{"type":"join","room":"lobby","name":"ada"}'),
    ("join-since", '{"type":"join","room":"lobby","name":"ada","since":{"epoch":"9f2c41d07a3be815","offset":41}}'),
    ("leave", '{"type":"leave","room":"lobby"}'),
    ("publish", '{"type":"publish","room":"lobby","text":"hello \\u00e9\\ud83d\\ude00 \\"q\\""}'),
    ("unknown", '{"type":"shout","room":"lobby"}'),
    ("bad-field", '{"type":"join","room":7,"name":null}'),
    ("sequence", '["join","lobby","ada"]'),
    ("extra-field", ' \n{"room":"r","type":"leave","extra":[1,2.5e10,{"a":true}]}'),
]:
    write("client_message", name, text)

# binary_header: a binary frame's payload.
write("binary_header", "publish-v2", b"\x02\x05lobby\x00\x01\xff")
write("binary_header", "publish-v1", b"\x01\x05lobbypayload")
write("binary_header", "delivery", b"\x02\x05lobby" + struct.pack(">QQ", 42, 7) + b"data")
write("binary_header", "room-not-utf8", b"\x02\x02\xc3\x28")
write("binary_header", "truncated", b"\x02\x09lob")

# redis_post: [channel length][channel][payload].
def channel_message(room, payload):
    name = ("duplex:{%s}" % room).encode()
    return bytes([len(name)]) + name + payload

write("redis_post", "message-text", channel_message("lobby", b"m9f2c41d07a3be815 41 " + post(0, 4294967297, "ada", b"hello")))
write("redis_post", "message-binary", channel_message("lobby", b"mepoch 1 " + post(1, 5, "bob", bytes(range(8)))))
write("redis_post", "message-api", channel_message("lobby", b"mepoch 2 " + post(2, 0, "", "d\u00e9ploy".encode())))
write("redis_post", "joined", channel_message("room with spaces", b"j4294967297 ada lovelace"))
write("redis_post", "left", channel_message("lobby", b"l4294967297 too_slow ada"))
write("redis_post", "post-only", post(0, 1, "x", b"body"))

# redis_reply: RESP replies of join.lua and range.lua.
entry = lambda offset, p: array(bulk("%d-1" % offset), array(bulk("p"), bulk(p)))
write("redis_reply", "join", array(
    bulk("9f2c41d07a3be815"), integer(41), integer(2),
    array(bulk("4294967297 1 ada"), bulk("8589934593 2 bob lee")),
    integer(1), array(entry(41, post(0, 4294967297, "ada", b"hi")))))
write("redis_reply", "join-fresh", array(bulk("e"), integer(0), integer(1), array(), integer(-1), array()))
write("redis_reply", "range", array(
    bulk("epoch"), integer(3),
    array(entry(2, post(1, 5, "bob", b"\x00\x01")), entry(3, post(2, 0, "", b"push")))))
write("redis_reply", "range-empty", array(bulk(""), integer(0), array()))
write("redis_reply", "resp3", b"*3\r\n+epoch\r\n:1\r\n~1\r\n*2\r\n$3\r\n1-1\r\n%1\r\n$1\r\np\r\n$1\r\nx\r\n")

# frame_header: a header, then a payload.
write("frame_header", "text-masked", frame(0x1, b"hello"))
write("frame_header", "binary-16", header(0x2, 300, mask=(9, 9, 9, 9)) + b"\x00" * 8)
write("frame_header", "binary-64", header(0x2, 70000))
write("frame_header", "long-form-short-length", bytes([0x82, 0xFF]) + struct.pack(">Q", 5) + b"abcd" + b"12345")
write("frame_header", "reserved", bytes([0x73, 0x7E, 0x00, 0x05]) + b"12345")
write("frame_header", "close", frame(0x8, b"\x03\xe8bye", mask=None))

# frame_scan: [cuts][stream].
stream = (frame(0x1, b"a" * 10, fin=False) + frame(0x9, b"hi") + frame(0x0, b"b" * 200, fin=False)
          + frame(0x0, b"c", fin=True) + frame(0x2, b"\x00" * 3000))
write("frame_scan", "fragmented", cuts(1, 13, 14, 15, 200) + stream)
write("frame_scan", "lengths", cuts(2, 2, 2) + b"".join(frame(0x2, b"\xaa" * n) for n in (0, 1, 125, 126, 127, 2049)))
write("frame_scan", "bad-frames", cuts(5) + header(0x3, 300, rsv=7) + b"\x00" * 300)

# inflate: [mode][limit][out size][cuts][key, 4][...].
KEY = bytes([1, 2, 3, 4])
TEXT_KEY = bytes([3, 2, 3, 4])
chat = b'{"type":"publish","room":"lobby","text":"chat message, chat message, chat message"}' * 8
write("inflate", "raw-compressed", bytes([0, 5, 20]) + cuts(7, 100) + KEY
      + frame(0x1, deflate(chat), rsv=4) + frame(0x9, b"hi") + frame(0x2, b"plain"))
write("inflate", "raw-fragmented", bytes([0, 4, 3]) + cuts(3) + KEY
      + frame(0x2, deflate(chat)[:20], fin=False, rsv=4) + frame(0x0, deflate(chat)[20:], fin=True))
write("inflate", "body", bytes([1, 3, 30]) + cuts(50) + TEXT_KEY + cuts(10, 10) + deflate(chat))
write("inflate", "bomb", bytes([1, 4, 255]) + cuts() + KEY + cuts(100) + deflate(b"\x00" * 1_000_000))
write("inflate", "round-trip", bytes([2, 5, 1]) + cuts(9, 9) + TEXT_KEY + cuts(4) + chat)
write("inflate", "round-trip-too-large", bytes([2, 2, 255]) + cuts() + KEY + cuts() + b"x" * 1500)

# config: lines of [flag index][value] (index into fuzzing::FLAGS).
FLAGS = ["--listen", "--max-connections", "--max-message-size", "--max-frame-size", "--deflate",
         "--deflate-threshold", "--read-buffer-size", "--max-outbound-buffer", "--handshake-timeout",
         "--ping-interval", "--idle-timeout", "--write-timeout", "--close-timeout", "--shutdown-grace",
         "--client-queue", "--slow-client-missed", "--max-name-len", "--max-room-len",
         "--max-rooms-per-client", "--max-protocol-errors", "--presence-limit", "--history-size",
         "--history-ttl", "--redis", "--presence-ttl", "--push-token"]


def config(*pairs):
    return b"\n".join(bytes([FLAGS.index(flag)]) + value.encode() for flag, value in pairs)


write("config", "sizes", config(("--max-message-size", "1MiB"), ("--max-frame-size", "64 KiB"),
                                ("--max-outbound-buffer", "1.5MB"), ("--read-buffer-size", "16384")))
write("config", "durations", config(("--ping-interval", "1m 30s"), ("--idle-timeout", "2h"),
                                    ("--close-timeout", "250ms"), ("--history-ttl", "1day 3us")))
write("config", "others", config(("--listen", "[::1]:0"), ("--deflate", "off"),
                                 ("--redis", "redis://u:p@127.0.0.1:6379/1"), ("--push-token", "s3cret")))
write("config", "bad", config(("--max-message-size", "12 parsecs"), ("--ping-interval", "0s")))
