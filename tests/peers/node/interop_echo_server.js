// npm ws echo server for gorillaws's interop tests (tests/interop/test_node_ws_peer.py).
//
// usage: node interop_echo_server.js '{"deflate": "off" | "deflate" | "deflate-nct"}'
// Prints "listening PORT" once ready, and "closed CODE REASON" for each close
// frame a client sends.  Echoes every message with its type; a message longer
// than 1000 bytes is echoed in three fragments (split at arbitrary bytes).  The
// text message "close:CODE:REASON" makes it close with that code and reason.
// Ends when its stdin closes.
'use strict';
const { WebSocketServer } = require('ws');
const { deflateOptions } = require('./interop_options');

const cfg = JSON.parse(process.argv[2] || '{}');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: deflateOptions(cfg.deflate),
  maxPayload: 64 * 1024 * 1024,
});

wss.on('listening', () => {
  console.log('listening ' + wss.address().port);
});

wss.on('connection', (ws, req) => {
  console.log('extensions ' + (req.headers['sec-websocket-extensions'] || '-') + ' -> ' + (ws.extensions || '-'));
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length < 200 && data.toString().startsWith('close:')) {
      const parts = data.toString().split(':');
      ws.close(parseInt(parts[1], 10), parts.slice(2).join(':'));
      return;
    }
    if (data.length > 1000) {
      const a = Math.floor(data.length / 3);
      const b = Math.floor((2 * data.length) / 3) + 1;
      ws.send(data.subarray(0, a), { binary: isBinary, fin: false });
      ws.send(data.subarray(a, b), { binary: isBinary, fin: false });
      ws.send(data.subarray(b), { binary: isBinary, fin: true });
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('close', (code, reason) => {
    console.log('closed ' + code + ' ' + reason.toString());
  });
  ws.on('error', (err) => {
    console.log('error ' + err.message);
  });
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
