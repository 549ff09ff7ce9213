"""A start endpoint on 127.0.0.1 that fails every third ``POST /start`` with HTTP 500.

The others answer ``{"wsUrl": <bot's WebSocket URL>}``, so a client connects to a real
testing bot. ``arrivals`` keeps the monotonic time of every request (for rate checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import h11


class FlakyStart:
    """``async with FlakyStart(ws_url, every=3) as start: start.url`` -> the start endpoint."""

    def __init__(self, ws_url: str, *, every: int = 3) -> None:
        self.ws_url = ws_url
        self.every = every
        self.arrivals: list[float] = []
        self.failed = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/start``."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/start"

    async def __aenter__(self) -> FlakyStart:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _answer(self) -> tuple[int, Any]:
        self.arrivals.append(time.monotonic())
        if len(self.arrivals) % self.every == 0:
            self.failed += 1
            return 500, {"detail": "every third start fails"}
        return 200, {"wsUrl": self.ws_url}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.EndOfMessage):
                    break
            status, body = self._answer()
            payload = json.dumps(body).encode()
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(payload))),
                ("connection", "close"),
            ]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            writer.write(conn.send(h11.Data(data=payload)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
