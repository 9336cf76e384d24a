"""A fuzzing WebSocket peer for the conformance suite.

:class:`FuzzPeer` speaks raw RFC 6455 frames over a connected socket, in the
role opposite to the system under test: as a client it masks its frames, as a
server it does not.  Frames are built by hand here (header, mask, optional
permessage-deflate with zlib) without using gorillaws, so the suite checks
gorillaws against an independent implementation.

A background thread reads everything the system under test sends, checks it
(masking for the role, RSV bits, opcodes, fragmentation, UTF-8 of text,
nothing after a close frame) and records it.  When the peer under test sends a
close frame, the fuzzer answers with a close frame carrying the same code, as
a well-behaved endpoint does, unless it already sent one.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

from helpers import close_payload, encode_frame, mask_bytes  # frames built by hand, shared with the unit tests

__all__ = [
    "Frame",
    "DeflateSetup",
    "FuzzPeer",
    "Observed",
    "mask_bytes",
    "close_payload",
    "encode_frame",
]

TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
_TAIL = b"\x00\x00\xff\xff"


class Frame(NamedTuple):
    """A frame received from the system under test (payload unmasked)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes
    at: float  # time.monotonic() when it was complete


@dataclass
class DeflateSetup:
    """permessage-deflate as agreed for one connection, from the fuzzer's point of view.

    ``fuzzer_*`` describe how the fuzzer compresses (what the system under
    test must decompress), ``sut_*`` how the system under test compresses.
    Window bits are 8..15; ``*_no_context_takeover`` resets per message.
    """

    fuzzer_no_context_takeover: bool = False
    fuzzer_window_bits: int = 15
    sut_no_context_takeover: bool = False
    sut_window_bits: int = 15
    level: int = 6

    def describe(self) -> str:
        """A short human-readable summary for case descriptions."""
        return "fuzzer(nct=%s,bits=%d) sut(nct=%s,bits=%d)" % (
            self.fuzzer_no_context_takeover,
            self.fuzzer_window_bits,
            self.sut_no_context_takeover,
            self.sut_window_bits,
        )


@dataclass
class Observed:
    """Everything the system under test did on one connection, as seen by the fuzzer.

    ``events`` lists, in order, the complete data messages (``("text", bytes)``
    / ``("binary", bytes)``) and pongs/pings (``("pong", bytes)``).  ``close``
    is the close frame's ``(code, reason)`` (``(1005, b"")`` for an empty
    payload), None if none came.  ``eof`` says the system under test closed
    the TCP connection (a reset counts).  ``violations`` lists protocol
    errors the system under test made.
    """

    events: List[Tuple[str, bytes]] = field(default_factory=list)
    frames: List[Frame] = field(default_factory=list)
    close: Optional[Tuple[int, bytes]] = None
    close_at: Optional[float] = None
    eof: bool = False
    reset: bool = False
    violations: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


_KIND = {TEXT: "text", BINARY: "binary"}


class FuzzPeer:
    """The fuzzing endpoint of one connection.

    ``is_client`` is the fuzzer's role (a client masks).  ``deflate`` is the
    agreed permessage-deflate setup or None.  Sending methods never raise on
    a connection the other side already closed; they record it instead (a
    failing peer may close while the fuzzer is still sending, on purpose).
    Call :meth:`finish` at the end; it closes the socket.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        is_client: bool,
        deflate: Optional[DeflateSetup] = None,
        initial_data: bytes = b"",
        auto_close_reply: bool = True,
    ) -> None:
        self.sock = sock
        self.is_client = is_client
        self.deflate = deflate
        self.auto_close_reply = auto_close_reply
        sock.settimeout(None)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.obs = Observed()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self.close_sent = False
        self.send_failed: Optional[str] = None
        #: (description, passed) of checks made during the case's actions.
        self.checks: List[Tuple[str, bool]] = []
        self._compressor: Optional["zlib._Compress"] = None
        self._decompressor: Optional["zlib._Decompress"] = None
        self._buf = bytearray(initial_data)
        self._stop = False
        self._reader = threading.Thread(target=self._read_loop, name="fuzzer-reader", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def _key(self, mask: Optional[bool]) -> Optional[bytes]:
        if mask is None:
            mask = self.is_client
        return os.urandom(4) if mask else None

    def frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: Optional[bool] = None,
    ) -> bytes:
        """The bytes of one frame; masked by default when the fuzzer is the client."""
        return encode_frame(opcode, payload, fin=fin, rsv=rsv, key=self._key(mask))

    def send_raw(self, data: bytes, chop: Optional[int] = None, delay: float = 0.0) -> None:
        """Write ``data``; with ``chop``, in writes of that many bytes, ``delay`` s apart."""
        with self._send_lock:
            self._send_locked(data, chop, delay)

    def _send_locked(self, data: bytes, chop: Optional[int], delay: float) -> None:
        if self.send_failed is not None:
            return
        try:
            if not chop:
                self.sock.sendall(data)
                return
            view = memoryview(data)
            for i in range(0, len(data), chop):
                self.sock.sendall(view[i : i + chop])
                if delay:
                    time.sleep(delay)
        except OSError as e:
            self.send_failed = "%s: %s" % (type(e).__name__, e)

    def send_frame(
        self, opcode: int, payload: bytes = b"", *, chop: Optional[int] = None, delay: float = 0.0, **frame_args: Any
    ) -> None:
        """Build one frame (``frame_args``: ``fin``, ``rsv``, ``mask``; see :meth:`frame`) and send it,
        optionally chopped into small writes."""
        if opcode == CLOSE:
            self.close_sent = True
        self.send_raw(self.frame(opcode, payload, **frame_args), chop, delay)

    def send_frames(self, frames: Sequence[bytes], chop: Optional[int] = None, delay: float = 0.0) -> None:
        """Send several prebuilt frames in one go (one write unless chopped)."""
        self.send_raw(b"".join(frames), chop, delay)

    def compress(self, payload: bytes) -> bytes:
        """Compress one message payload the way the agreed deflate setup says (tail removed)."""
        d = self.deflate
        assert d is not None, "no permessage-deflate agreed"
        bits = max(9, d.fuzzer_window_bits)  # zlib cannot compress with 8; 9 stays within 256 bytes
        if self._compressor is None or d.fuzzer_no_context_takeover:
            self._compressor = zlib.compressobj(d.level, zlib.DEFLATED, -bits)
        out = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(_TAIL)
        return out[:-4]

    def message_frames(
        self,
        opcode: int,
        payload: bytes,
        *,
        compress: bool = False,
        frag: Optional[int] = None,
    ) -> List[bytes]:
        """The frames of one data message: compressed (RSV1 on the first) and/or fragmented."""
        rsv = 0
        if compress:
            payload = self.compress(payload)
            rsv = RSV1
        if not frag or len(payload) <= frag:
            return [self.frame(opcode, payload, rsv=rsv)]
        out: List[bytes] = []
        pieces = [payload[i : i + frag] for i in range(0, len(payload), frag)]
        for i, piece in enumerate(pieces):
            out.append(
                self.frame(opcode if i == 0 else CONT, piece, fin=i == len(pieces) - 1, rsv=rsv if i == 0 else 0)
            )
        return out

    def send_message(
        self,
        opcode: int,
        payload: bytes,
        *,
        compress: bool = False,
        frag: Optional[int] = None,
        chop: Optional[int] = None,
        delay: float = 0.0,
    ) -> None:
        """Send one data message (see :meth:`message_frames`)."""
        self.send_frames(self.message_frames(opcode, payload, compress=compress, frag=frag), chop, delay)

    def send_close(self, code: Optional[int] = 1000, reason: Union[bytes, str] = b"") -> None:
        """Send a close frame (``code`` None: empty payload)."""
        self.send_frame(CLOSE, close_payload(code, reason))

    # ------------------------------------------------------------------
    # Waiting
    # ------------------------------------------------------------------

    def wait_close(self, timeout: float) -> bool:
        """Wait until the system under test sent a close frame or the connection ended."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.obs.close is None and not self.obs.eof:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def sleep_short(self, seconds: float = 0.05) -> None:
        """Pause between writes (lets the other side act on what it has)."""
        time.sleep(seconds)

    def expect_closed_now(self, what: str, timeout: float = 1.5) -> None:
        """Record a check: the system under test must fail the connection now (fail fast)."""
        ok = self.wait_close(timeout)
        self.checks.append(("did not fail fast: no close within %.1f s after %s" % (timeout, what), ok))

    def wait_events(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` events were observed (or the connection ended)."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.obs.events) < n and not self.obs.eof and self.obs.close is None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return len(self.obs.events) >= n

    def wait_eof(self, timeout: float) -> bool:
        """Wait until the system under test closed the TCP connection."""
        end = time.monotonic() + timeout
        with self._cond:
            while not self.obs.eof:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def finish(self, timeout: float) -> Observed:
        """Wait up to ``timeout`` s for the end of the connection, then close our socket."""
        self.wait_eof(timeout)
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5.0)
        try:
            self.sock.close()
        except OSError:
            pass
        return self.obs

    # ------------------------------------------------------------------
    # Reading (background thread)
    # ------------------------------------------------------------------

    def _need(self, n: int) -> bool:
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except OSError as e:
                if not self._stop:
                    self.obs.reset = isinstance(e, ConnectionResetError)
                    self.obs.notes.append("recv: %s" % e)
                return False
            if not chunk:
                return False
            self._buf += chunk
        return True

    def _read_loop(self) -> None:
        msg_op = 0
        msg_rsv = 0
        parts: List[bytes] = []
        try:
            while True:
                if not self._need(2):
                    break
                b0, b1 = self._buf[0], self._buf[1]
                n = b1 & 0x7F
                pos = 2
                if n == 126:
                    if not self._need(4):
                        break
                    (n,) = struct.unpack_from("!H", self._buf, 2)
                    pos = 4
                elif n == 127:
                    if not self._need(10):
                        break
                    (n,) = struct.unpack_from("!Q", self._buf, 2)
                    pos = 10
                key: Optional[bytes] = None
                if b1 & 0x80:
                    if not self._need(pos + 4):
                        break
                    key = bytes(self._buf[pos : pos + 4])
                    pos += 4
                if not self._need(pos + n):
                    break
                payload = bytes(self._buf[pos : pos + n])
                del self._buf[: pos + n]
                if key is not None:
                    payload = mask_bytes(payload, key)
                f = Frame(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, key is not None, payload, time.monotonic())
                msg_op, msg_rsv, parts = self._handle(f, msg_op, msg_rsv, parts)
        finally:
            with self._cond:
                self.obs.eof = True
                self._cond.notify_all()

    def _violation(self, text: str) -> None:
        self.obs.violations.append(text)

    def _handle(self, f: Frame, msg_op: int, msg_rsv: int, parts: List[bytes]) -> Tuple[int, int, List[bytes]]:
        obs = self.obs
        with self._cond:
            obs.frames.append(f)
            if obs.close is not None:
                self._violation("frame (opcode %d) after the close frame" % f.opcode)
                return msg_op, msg_rsv, parts
        if f.masked == self.is_client:
            self._violation("server frame masked" if self.is_client else "client frame not masked")
        if f.opcode >= 8:
            if f.opcode > PONG:
                self._violation("reserved control opcode %d" % f.opcode)
            if not f.fin:
                self._violation("fragmented control frame")
            if len(f.payload) > 125:
                self._violation("control frame longer than 125 bytes")
            if f.rsv:
                self._violation("RSV bits on a control frame")
            self._control(f)
            return msg_op, msg_rsv, parts
        if f.opcode not in (CONT, TEXT, BINARY):
            self._violation("reserved data opcode %d" % f.opcode)
            return msg_op, msg_rsv, parts
        if f.opcode == CONT:
            if not msg_op:
                self._violation("continuation frame without a message")
                return msg_op, msg_rsv, parts
            if f.rsv:
                self._violation("RSV bits on a continuation frame")
        else:
            if msg_op:
                self._violation("new message before the previous one ended")
            if f.rsv & ~RSV1 or (f.rsv and self.deflate is None):
                self._violation("RSV bits 0x%02x without an extension" % f.rsv)
            msg_op, msg_rsv, parts = f.opcode, f.rsv, []
        parts.append(f.payload)
        if not f.fin:
            return msg_op, msg_rsv, parts
        payload = b"".join(parts)
        if msg_rsv & RSV1 and self.deflate is not None:
            payload = self._inflate(payload)
        if msg_op == TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                self._violation("text message is not valid UTF-8")
        with self._cond:
            obs.events.append((_KIND[msg_op], payload))
            self._cond.notify_all()
        return 0, 0, []

    def _inflate(self, payload: bytes) -> bytes:
        d = self.deflate
        assert d is not None
        if self._decompressor is None or d.sut_no_context_takeover:
            self._decompressor = zlib.decompressobj(-d.sut_window_bits)
        try:
            return self._decompressor.decompress(payload + _TAIL)
        except zlib.error as e:
            self._violation("corrupt compressed message: %s" % e)
            return b"<corrupt>"

    def _control(self, f: Frame) -> None:
        obs = self.obs
        if f.opcode == PING:
            with self._cond:
                obs.events.append(("ping", f.payload))
                self._cond.notify_all()
            return
        if f.opcode == PONG:
            with self._cond:
                obs.events.append(("pong", f.payload))
                self._cond.notify_all()
            return
        p = f.payload
        if len(p) == 1:
            self._violation("close payload of one byte")
            code, reason = -1, b""
        elif not p:
            code, reason = 1005, b""
        else:
            code, reason = struct.unpack("!H", p[:2])[0], p[2:]
            try:
                reason.decode("utf-8")
            except UnicodeDecodeError:
                self._violation("close reason not UTF-8")
        if self.auto_close_reply and not self.close_sent:
            self.send_close(None if code in (1005, -1) else code)
        with self._cond:
            obs.close = (code, reason)
            obs.close_at = f.at
            self._cond.notify_all()
