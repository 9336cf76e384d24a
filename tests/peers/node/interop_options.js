// The permessage-deflate option object of npm ws for the interop peers'
// '{"deflate": ...}' setting: "off" (or none), "deflate" (context takeover,
// every message compressed), "deflate-nct" (no context takeover both ways).
'use strict';

function deflateOptions(name) {
  if (!name || name === 'off') return false;
  const opts = { threshold: 0 };
  if (name === 'deflate-nct') {
    opts.serverNoContextTakeover = true;
    opts.clientNoContextTakeover = true;
  }
  return opts;
}

module.exports = { deflateOptions };
