"""A TCP proxy that misbehaves on request, to put any source (HTTP or SQL) through the faults
real agency systems have: hung, down, cut off mid-answer, answering garbage.

It runs its own event loop in a background thread, so sync and async tests, the demo and the
benchmarks can all use it:

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/police"
        proxy.mode = "hang"
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

MODES = ("pass", "hang", "down", "cut", "garbage")
GARBAGE = b"\x00\xffthis is not the protocol you are looking for\r\n\r\n\x17\x03"


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `host`:`target_port`, faulted by `mode`:

    - `pass`: forward both ways;
    - `hang`: accept and read, never answer;
    - `down`: refuse new connections (as a stopped server would) and drop open ones;
    - `cut`: forward the request, then close after `cut_after` bytes of the answer;
    - `garbage`: answer every connection with bytes of no protocol, then close.
    """

    def __init__(self, host: str, target_port: int, cut_after: int = 64) -> None:
        self.host, self.target_port, self.cut_after = host, target_port, cut_after
        self._mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        sock.close()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._call(self._set_mode(mode))

    def start(self) -> Self:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _set_mode(self, mode: str) -> None:
        self._mode = mode
        if mode == "down":
            await self._close()
        elif self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            if self._mode == "hang":
                while await reader.read(65536):
                    pass
                return
            if self._mode == "garbage":
                writer.write(GARBAGE)
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
            self._conns.add(up_writer)
            limit = self.cut_after if self._mode == "cut" else None
            await asyncio.gather(
                self._pipe(reader, up_writer, None), self._pipe(up_reader, writer, limit)
            )
        except (ConnectionError, OSError):
            pass
        finally:
            self._conns.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
    ) -> None:
        """Copy one direction. A mode set later applies to open connections too: a source
        that hangs stops answering on the connections a client already pools."""
        sent = 0
        try:
            while data := await reader.read(65536):
                if self._mode == "hang":
                    continue  # swallowed: the other side waits for ever
                if self._mode in ("cut", "garbage") and limit is None and sent:
                    break
                if limit is not None and sent + len(data) >= limit:
                    writer.write(data[: max(0, limit - sent)])
                    await writer.drain()
                    return
                writer.write(data)
                sent += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
