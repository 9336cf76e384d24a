// npm ws client for gorillaws's interop tests (tests/interop/test_node_ws_peer.py).
//
// usage: node interop_client.js URL '{"deflate": "off" | "deflate" | "deflate-nct"}'
// Talks to a gorillaws echo server: text, binary, empty, large, fragmented
// messages, a ping, then "close:4001:server bye" (the server closes with that
// code), then a second connection that it closes itself with 4000 "client bye".
// Prints one line "result JSON" and exits.
'use strict';
const WebSocket = require('ws');
const { deflateOptions } = require('./interop_options');

const url = process.argv[2];
const cfg = JSON.parse(process.argv[3] || '{}');

function open() {
  const ws = new WebSocket(url, { perMessageDeflate: deflateOptions(cfg.deflate), maxPayload: 64 * 1024 * 1024 });
  const queue = [];
  const waiters = [];
  const events = { pongs: [], close: null, closed: null, extensions: null, errors: [] };
  ws.on('message', (data, isBinary) => {
    const item = { data, isBinary };
    if (waiters.length) waiters.shift()(item); else queue.push(item);
  });
  ws.on('pong', (data) => events.pongs.push(data.toString()));
  ws.on('error', (err) => events.errors.push(err.message));
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    events.close = { code, reason: reason.toString() };
    resolve();
  }));
  const opened = new Promise((resolve, reject) => {
    ws.on('open', () => { events.extensions = ws.extensions; resolve(); });
    ws.on('error', reject);
  });
  const next = () => new Promise((resolve) => {
    if (queue.length) resolve(queue.shift()); else waiters.push(resolve);
  });
  return { ws, next, closed, opened, events };
}

async function main() {
  const out = { echoes: {} };
  const c = open();
  await c.opened;
  out.extensions = c.events.extensions;
  const check = async (name, payload, binary) => {
    c.ws.send(payload, { binary });
    const got = await c.next();
    out.echoes[name] = got.isBinary === binary && Buffer.compare(Buffer.from(got.data), Buffer.from(payload)) === 0;
  };
  await check('text', Buffer.from('hello \u03ba\u1f79\u03c3\u03bc\u03b5'), false);
  await check('empty-text', Buffer.alloc(0), false);
  const bin = Buffer.alloc(1024);
  for (let i = 0; i < bin.length; i++) bin[i] = i & 255;
  await check('binary', bin, true);
  await check('large', Buffer.from('interop '.repeat(32768)), false);
  await check('large-again', Buffer.from('interop '.repeat(32768)), false);
  // A text message in three fragments, split inside a character.
  const text = Buffer.from('\u03ba\u1f79\u03c3\u03bc\u03b5'.repeat(300));
  c.ws.send(text.subarray(0, 101), { binary: false, fin: false });
  c.ws.send(text.subarray(101, 2001), { binary: false, fin: false });
  c.ws.send(text.subarray(2001), { binary: false, fin: true });
  const frag = await c.next();
  out.echoes.fragmented = !frag.isBinary && Buffer.compare(Buffer.from(frag.data), text) === 0;
  c.ws.ping('ping!');
  await check('after-ping', Buffer.from('after ping'), false);
  out.pongs = c.events.pongs;
  c.ws.send('close:4001:server bye');
  await c.closed;
  out.server_close = c.events.close;
  out.errors = c.events.errors;

  const d = open();
  await d.opened;
  d.ws.send('before close');
  await d.next();
  d.ws.close(4000, 'client bye');
  await d.closed;
  out.client_close_echo = d.events.close;
  console.log('result ' + JSON.stringify(out));
  process.exit(0);
}

setTimeout(() => { console.log('result {"timeout": true}'); process.exit(1); }, 20000);
main().catch((err) => { console.log('result ' + JSON.stringify({ error: String(err) })); process.exit(1); });
