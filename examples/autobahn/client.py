"""A client driver for the Autobahn TestSuite's ``fuzzingserver``.

It speaks the fuzzing server's usual protocol:

1. ``GET /getCaseCount``: the server sends the number of cases as one text
   message;
2. for each case ``N`` (1-based), ``GET /runCase?case=N&agent=AGENT``: the
   server plays the case; we echo every message back until it closes;
3. ``GET /updateReports?agent=AGENT``: the server writes its reports.

Usage (with a fuzzing server on its default port)::

    python3 examples/autobahn/client.py --url ws://127.0.0.1:9001 --agent gorillaws

``--cases 1-20,45`` runs a subset.  Compression (permessage-deflate, context
takeover) is offered unless ``--compression off``.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional
from urllib.parse import quote

import gorillaws
from gorillaws import deflate

READ_LIMIT = 32 << 20


def make_dialer(compression: str = "context") -> gorillaws.Dialer:
    """The Dialer used for every connection."""
    mode = {
        "off": deflate.COMPRESSION_DISABLED,
        "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
        "context": deflate.COMPRESSION_CONTEXT_TAKEOVER,
    }[compression]
    return gorillaws.Dialer(
        compression_mode=mode,
        handshake_timeout=30.0,
        read_buffer_size=65536,
        write_buffer_size=65536,
    )


def get_case_count(dialer: gorillaws.Dialer, base: str) -> int:
    """Ask the fuzzing server how many cases it has."""
    conn, _ = dialer.dial(base + "/getCaseCount")
    try:
        _, data = conn.read_message()
        return int(data.decode("ascii").strip())
    finally:
        conn.close()


def run_case(dialer: gorillaws.Dialer, base: str, case: int, agent: str) -> None:
    """Play one case: echo every message (streaming) until the server closes."""
    conn, _ = dialer.dial("%s/runCase?case=%d&agent=%s" % (base, case, quote(agent)))
    conn.set_read_limit(READ_LIMIT)
    try:
        while True:
            message_type, reader = conn.next_reader()
            writer = conn.next_writer(message_type)
            while True:
                chunk = reader.read(32768)
                if not chunk:
                    break
                writer.write(chunk)
            writer.close()
    except (gorillaws.WebSocketError, OSError):
        pass  # the case ended: the server closed, or we failed the connection on purpose
    finally:
        conn.close()


def update_reports(dialer: gorillaws.Dialer, base: str, agent: str) -> None:
    """Tell the fuzzing server to write its reports."""
    conn, _ = dialer.dial("%s/updateReports?agent=%s" % (base, quote(agent)))
    try:
        conn.read_message()  # the server closes when done
    except (gorillaws.WebSocketError, OSError):
        pass
    finally:
        conn.close()


def parse_cases(spec: str, count: int) -> List[int]:
    """``"1-5,9"`` -> [1, 2, 3, 4, 5, 9]; "" -> every case."""
    if not spec:
        return list(range(1, count + 1))
    out: List[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return [c for c in out if 1 <= c <= count]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9001", help="fuzzing server (default %(default)s)")
    parser.add_argument("--agent", default="gorillaws")
    parser.add_argument("--cases", default="", help="subset, e.g. 1-20,45 (default: all)")
    parser.add_argument("--compression", choices=("off", "no-context", "context"), default="context")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    dialer = make_dialer(args.compression)
    count = get_case_count(dialer, base)
    cases = parse_cases(args.cases, count)
    if not args.quiet:
        print("%d cases on %s, running %d" % (count, base, len(cases)), flush=True)
    for case in cases:
        if not args.quiet:
            print("case %d" % case, flush=True)
        run_case(dialer, base, case, args.agent)
    update_reports(dialer, base, args.agent)
    if not args.quiet:
        print("reports updated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
