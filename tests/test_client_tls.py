"""wss:// tests for gorillaws.client.Dialer: a real websockets TLS server with a test CA."""

from __future__ import annotations

import os
import socket
import ssl
import sys
import time
from typing import Any, Iterator, List, Optional, Tuple

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from certs import TestPKI, make_test_pki  # noqa: E402
from helpers import silent_listener  # noqa: E402
from proxies import TcpServer, WsServer, microsocks, tinyproxy  # noqa: E402

from gorillaws.client import Dialer  # noqa: E402
from gorillaws.exceptions import DeadlineExceeded  # noqa: E402
from gorillaws.frames import TEXT_MESSAGE  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


class TlsWsServer(WsServer):
    """A websockets server over TLS that records the SNI names it saw."""

    def __init__(self, pki: TestPKI, **kwargs: Any) -> None:
        self.sni: List[Optional[str]] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.server_cert, pki.server_key)

        def record(sock: ssl.SSLObject, name: Optional[str], _ctx: ssl.SSLContext) -> None:
            self.sni.append(name)

        ctx.sni_callback = record
        super().__init__(ssl=ctx, **kwargs)


@pytest.fixture
def server(pki: TestPKI) -> Iterator[TlsWsServer]:
    with TlsWsServer(pki) as srv:
        yield srv


def client_ctx(pki: TestPKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=pki.ca_cert)


def echo_ok(conn: object) -> None:
    try:
        conn.write_message(TEXT_MESSAGE, "secure hello")  # type: ignore[attr-defined]
        assert conn.read_message() == (TEXT_MESSAGE, b"secure hello")  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]


def test_wss_with_test_ca(pki: TestPKI, server: TlsWsServer) -> None:
    d = Dialer(tls_client_config=client_ctx(pki), handshake_timeout=5)
    conn, resp = d.dial(f"wss://localhost:{server.port}/secure?x=1")
    assert resp.status == 101
    assert isinstance(conn.underlying_conn(), ssl.SSLSocket)
    echo_ok(conn)
    assert server.sni == ["localhost"]
    assert server.requests[0].path == "/secure?x=1"  # type: ignore[attr-defined]


def test_https_url_and_ip_literal(pki: TestPKI, server: TlsWsServer) -> None:
    d = Dialer(tls_client_config=client_ctx(pki), handshake_timeout=5)
    conn, _ = d.dial(f"https://127.0.0.1:{server.port}/")
    echo_ok(conn)
    # No SNI for an IP address; the certificate's IP SAN is what gets checked.
    assert server.sni == [None]


def test_default_config_rejects_unknown_ca(server: TlsWsServer) -> None:
    url = f"wss://localhost:{server.port}/"
    with pytest.raises(ssl.SSLCertVerificationError) as ei:
        Dialer(handshake_timeout=5).dial(url)
    # A sentence naming the URL and OpenSSL's reason, not a tuple or "[SSL: ...]" code.
    assert str(ei.value).startswith(f"websocket: TLS certificate verification failed for {url}: ")
    assert "[SSL" not in str(ei.value) and not str(ei.value).startswith("(")
    assert ei.value.verify_code != 0


def test_hostname_mismatch(pki: TestPKI, server: TlsWsServer) -> None:
    def net_dial(network: str, addr: str) -> socket.socket:
        return socket.create_connection(("127.0.0.1", server.port), timeout=5)

    d = Dialer(tls_client_config=client_ctx(pki), net_dial=net_dial, handshake_timeout=5)
    url = f"wss://not-the-name.test:{server.port}/"
    with pytest.raises(ssl.SSLCertVerificationError, match="not-the-name.test"):
        d.dial(url)
    assert server.sni == ["not-the-name.test"]


def test_verification_can_be_turned_off(server: TlsWsServer) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn, _ = Dialer(tls_client_config=ctx, handshake_timeout=5).dial(f"wss://localhost:{server.port}/")
    echo_ok(conn)


def test_net_dial_tls(pki: TestPKI, server: TlsWsServer) -> None:
    seen: List[Tuple[str, str]] = []
    ctx = client_ctx(pki)

    def dial_tls(network: str, addr: str) -> socket.socket:
        seen.append((network, addr))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        return ctx.wrap_socket(raw, server_hostname="localhost")

    # tls_client_config is not used with net_dial_tls: the default one (certifi's
    # CA bundle, without the test CA) would fail verification.
    d = Dialer(net_dial_tls=dial_tls, handshake_timeout=5)
    conn, _ = d.dial(f"wss://localhost:{server.port}/")
    echo_ok(conn)
    assert seen == [("tcp", f"localhost:{server.port}")]


def test_net_dial_tls_must_return_tls(pki: TestPKI, server: TlsWsServer) -> None:
    d = Dialer(net_dial_tls=lambda n, a: socket.create_connection(("127.0.0.1", server.port), timeout=5))
    with pytest.raises(TypeError):
        d.dial(f"wss://localhost:{server.port}/")


def test_alpn_other_than_http11_is_refused(pki: TestPKI) -> None:
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.server_cert, pki.server_key)
    sctx.set_alpn_protocols(["h2"])

    def handler(conn: socket.socket) -> None:
        try:
            tls = sctx.wrap_socket(conn, server_side=True)
            tls.recv(1024)
            tls.close()
        except (OSError, ssl.SSLError):
            pass

    cctx = client_ctx(pki)
    cctx.set_alpn_protocols(["h2", "http/1.1"])
    with TcpServer(handler) as srv:
        with pytest.raises(ssl.SSLError, match="ALPN"):
            Dialer(tls_client_config=cctx, handshake_timeout=5).dial(f"wss://localhost:{srv.port}/")


def test_tls_handshake_timeout() -> None:
    with silent_listener() as port:
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            Dialer(handshake_timeout=0.5).dial(f"wss://localhost:{port}/")
        assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("proxy_kind, scheme", [("tinyproxy", "http"), ("microsocks", "socks5h")])
def test_wss_through_a_proxy(pki: TestPKI, server: TlsWsServer, proxy_kind: str, scheme: str) -> None:
    run = tinyproxy if proxy_kind == "tinyproxy" else microsocks
    with run() as pport:
        d = Dialer(
            proxy=lambda u: f"{scheme}://127.0.0.1:{pport}", tls_client_config=client_ctx(pki), handshake_timeout=10
        )
        conn, _ = d.dial(f"wss://localhost:{server.port}/via-{proxy_kind}")
        echo_ok(conn)
    assert server.sni == ["localhost"]


def test_wss_compression(pki: TestPKI, server: TlsWsServer) -> None:
    d = Dialer(tls_client_config=client_ctx(pki), handshake_timeout=5, enable_compression=True)
    conn, _ = d.dial(f"wss://localhost:{server.port}/")
    assert conn.compression is not None
    echo_ok(conn)
