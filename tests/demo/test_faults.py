"""The fault proxy that puts sources through their failures."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from hub.demo.faults import FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true, "pad": "' + b"x" * 500 + b'"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1], cut_after=300) as p:
        yield p
    server.shutdown()


def test_proxy_forwards_then_fails_each_way_then_recovers(proxy: FaultProxy) -> None:
    url = f"http://127.0.0.1:{proxy.port}/"
    assert httpx.get(url).json()["ok"] is True
    proxy.mode = "hang"
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=0.5)
    assert time.perf_counter() - started < 2
    proxy.mode = "down"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    proxy.mode = "cut"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    proxy.mode = "garbage"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    proxy.mode = "pass"
    assert httpx.get(url).json()["ok"] is True


def test_proxy_refuses_an_unknown_mode(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="mode"):
        proxy.mode = "explode"
