"""Echo client: send lines from stdin to a WebSocket server and print the replies.

Usage::

    python examples/echo/client.py                       # ws://127.0.0.1:8080/ws
    python examples/echo/client.py wss://example.org/ws --insecure
    printf 'one\\ntwo\\n' | python examples/echo/client.py

Proxies come from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, as with
gorilla's DefaultDialer (localhost is never proxied).  Ctrl-D (end of input)
closes the connection cleanly; the exit status is 0 on a normal close.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
import time
from typing import List, Optional

from gorillaws import CLOSE_MESSAGE, CLOSE_NORMAL_CLOSURE, TEXT_MESSAGE, CloseError, format_close_message
from gorillaws.client import Dialer
from gorillaws.deflate import COMPRESSION_NO_CONTEXT_TAKEOVER
from gorillaws.exceptions import ErrBadHandshake
from gorillaws.proxy import proxy_from_environment


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--origin", help="Origin header to send")
    p.add_argument("--subprotocol", action="append", default=[], help="offer a subprotocol (repeatable)")
    p.add_argument("--compress", action="store_true", help="offer permessage-deflate")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    p.add_argument("--cafile", help="verify the server against this CA bundle instead of certifi's")
    p.add_argument("--timeout", type=float, default=10.0, help="handshake timeout in seconds")
    args = p.parse_args(argv)

    tls: Optional[ssl.SSLContext] = None
    if args.insecure:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    elif args.cafile:
        tls = ssl.create_default_context(cafile=args.cafile)

    dialer = Dialer(
        proxy=proxy_from_environment,
        handshake_timeout=args.timeout,
        tls_client_config=tls,
        subprotocols=args.subprotocol,
        compression_mode=COMPRESSION_NO_CONTEXT_TAKEOVER if args.compress else None,
    )
    header = {"Origin": args.origin} if args.origin else None
    try:
        conn, resp = dialer.dial(args.url, header)
    except ErrBadHandshake as exc:
        r = exc.response
        detail = f" ({r.status} {r.reason}: {r.body[:200]!r})" if r is not None else ""
        print(f"handshake failed: {exc}{detail}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"dial {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {args.url} (subprotocol {conn.subprotocol()!r})", file=sys.stderr)

    status = {"code": 0}
    # Replies still expected; at end of input we wait (briefly) for them
    # before closing, since an echo server stops answering once it has
    # seen our close frame.
    pending = {"n": 0}
    cond = threading.Condition()

    def read_loop() -> None:
        # The only reader: prints every message until the connection closes.
        try:
            while True:
                mtype, data = conn.read_message()
                text = data.decode("utf-8", "replace") if mtype == TEXT_MESSAGE else data.hex()
                print(f"< {text}", flush=True)
                with cond:
                    pending["n"] -= 1
                    cond.notify_all()
        except CloseError as exc:
            if exc.code not in (1000, 1001):
                print(f"closed: {exc}", file=sys.stderr)
                status["code"] = 1
        except Exception as exc:  # the connection broke
            print(f"read: {exc}", file=sys.stderr)
            status["code"] = 1

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        for line in sys.stdin:
            if not reader.is_alive():
                break
            with cond:
                pending["n"] += 1
            conn.write_message(TEXT_MESSAGE, line.rstrip("\r\n"))
        with cond:
            cond.wait_for(lambda: pending["n"] <= 0 or not reader.is_alive(), timeout=2.0)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"write: {exc}", file=sys.stderr)
        status["code"] = 1
    finally:
        # Start the close handshake but let the reader thread, which may still
        # be printing replies, be the one to receive the server's close frame.
        try:
            conn.write_control(CLOSE_MESSAGE, format_close_message(CLOSE_NORMAL_CLOSURE, ""), time.monotonic() + 5)
        except Exception:
            pass
        reader.join(5)
        conn.close_now()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
