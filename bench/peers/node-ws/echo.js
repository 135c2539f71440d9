// A peer of the comparison: the echo server of the `ws` package for
// Node.js, default options (no compression; ws's default payload limit).
// Every message goes back as it came, binary as binary.
//
// Usage: node echo.js [HOST:PORT] (default 127.0.0.1:0), with `ws` on
// NODE_PATH (scripts/bench.sh installs it). Prints
// {"message":"listening","local":"IP:PORT"} on stderr once bound.
'use strict';

const { WebSocketServer } = require('ws');

const listen = process.argv[2] || '127.0.0.1:0';
const colon = listen.lastIndexOf(':');
const server = new WebSocketServer({
  host: listen.slice(0, colon),
  port: Number(listen.slice(colon + 1)),
});

server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  // A client that resets is not news; without a listener Node would throw.
  socket.on('error', () => {});
});

server.on('listening', () => {
  const { address, port } = server.address();
  process.stderr.write(`${JSON.stringify({ message: 'listening', local: `${address}:${port}` })}\n`);
});

// Stop on SIGTERM like the other servers.
process.on('SIGTERM', () => process.exit(0));
