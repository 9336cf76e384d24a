// Echo peer built on npm "ws", for gorillaws interop tests.
//
//   node peer.js server '<json options>'        prints "PORT <n>", echoes every message
//   node peer.js client <url> '<json options>'  echoes every message the server sends
//
// Options: {"deflate": <ws perMessageDeflate option object or false>,
//           "fragment": <n>  (echo in fragments of n bytes, 0 = whole)}
// Both modes print "EXT <Sec-WebSocket-Extensions response value>" once connected and exit when
// stdin closes, when the peer closes, or after 60 s at most.
"use strict";
const WebSocket = require("ws");

const mode = process.argv[2];
const opts = JSON.parse(process.argv[mode === "client" ? 4 : 3] || "{}");
const deflate = opts.deflate === undefined ? true : opts.deflate;
const fragment = opts.fragment || 0;

setTimeout(() => process.exit(3), 60000).unref();
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

function echo(ws) {
  ws.on("message", (data, isBinary) => {
    if (!fragment || data.length <= fragment) {
      ws.send(data, { binary: isBinary });
      return;
    }
    for (let i = 0; i < data.length; i += fragment) {
      const last = i + fragment >= data.length;
      ws.send(data.subarray(i, i + fragment), { binary: isBinary, fin: last });
    }
  });
  ws.on("error", (err) => console.log("ERROR " + err.message));
}

if (mode === "server") {
  const wss = new WebSocket.Server({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate }, () => {
    console.log("PORT " + wss.address().port);
  });
  wss.on("headers", (headers) => {
    const ext = headers.find((h) => h.toLowerCase().startsWith("sec-websocket-extensions:"));
    console.log("EXT " + (ext ? ext.slice(ext.indexOf(":") + 1).trim() : ""));
  });
  wss.on("connection", (ws) => echo(ws));
} else if (mode === "client") {
  const ws = new WebSocket(process.argv[3], { perMessageDeflate: deflate });
  ws.on("upgrade", (res) => console.log("EXT " + (res.headers["sec-websocket-extensions"] || "")));
  ws.on("close", (code) => {
    console.log("CLOSED " + code);
    process.exit(0);
  });
  echo(ws);
} else {
  console.error("usage: node peer.js server|client ...");
  process.exit(2);
}
