"""The fault switch of the HTTP demo sources (PROTOCOL.md "Fault switch").

`PUT /_fault {"mode": M, "delay_ms": D, "count": C}` makes the next C requests (default:
all until reset) to other paths misbehave; `{"mode": "none"}` resets; `GET /_fault` shows
the state. Only mounted with `--allow-faults`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MODES = ("none", "hang", "slow", "error", "ratelimit", "malformed", "partial", "unauthorized")
# (status, content type, body) of an error answer, per server flavour
ErrorBody = Callable[[int, str], tuple[str, bytes]]


@dataclass
class FaultState:
    mode: str = "none"
    delay_ms: int = 0
    count: int | None = None  # None: until reset

    def take(self) -> str:
        """The mode for this request (and count it)."""
        if self.mode == "none":
            return "none"
        mode = self.mode
        if self.count is not None:
            self.count -= 1
            if self.count <= 0:
                self.mode, self.count = "none", None
        return mode

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "delay_ms": self.delay_ms, "count": self.count}


async def _send(send: Send, status: int, body: bytes, content_type: str, extra: Any = ()) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FaultSwitch:
    """ASGI middleware: the /_fault endpoint and the faults it switches on."""

    def __init__(self, app: ASGIApp, error_body: ErrorBody) -> None:
        self.app, self.error_body, self.state = app, error_body, FaultState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_fault":
            await self._control(scope, receive, send)
            return
        mode = self.state.take()
        if mode == "none":
            await self.app(scope, receive, send)
        elif mode == "hang":
            while (await receive())["type"] != "http.disconnect":
                pass
        elif mode == "slow":
            await asyncio.sleep(self.state.delay_ms / 1000)
            await self.app(scope, receive, send)
        elif mode in ("error", "ratelimit", "unauthorized"):
            status = {"error": 500, "ratelimit": 429, "unauthorized": 401}[mode]
            content_type, body = self.error_body(status, f"injected fault: {mode}")
            extra = [(b"retry-after", b"1")] if status == 429 else []
            if status == 401:
                extra = [(b"www-authenticate", b'Bearer error="invalid_token"')]
            await _send(send, status, body, content_type, extra)
        elif mode == "malformed":
            await _send(send, 200, b"<html><body>Service temporarily", "application/json")
        else:  # partial: the real answer cut off mid-JSON
            await self._partial(scope, receive, send)

    async def _partial(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        cut = body[: max(1, len(body) // 2)]
        content_type = dict(start.get("headers", [])).get(b"content-type", b"application/json")
        await _send(send, 200, cut, content_type.decode())

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "PUT":
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                wanted = json.loads(raw or b"{}")
                mode = str(wanted.get("mode", "none"))
                if mode not in MODES:
                    raise ValueError(mode)
                count = wanted.get("count")
                self.state = FaultState(
                    mode,
                    int(wanted.get("delay_ms") or 0),
                    int(count) if count is not None else None,
                )
            except (ValueError, TypeError, AttributeError):
                body = json.dumps({"error": f"mode must be one of {', '.join(MODES)}"}).encode()
                await _send(send, 400, body, "application/json")
                return
        elif scope["method"] != "GET":
            await _send(send, 405, b'{"error": "method not allowed"}', "application/json")
            return
        await _send(send, 200, json.dumps(self.state.as_json()).encode(), "application/json")
