"""A start endpoint on 127.0.0.1 that fails every third ``POST /start`` with HTTP 500.

The others answer ``{"wsUrl": <bot's WebSocket URL>}``, so a client connects to a real
testing bot. ``arrivals`` keeps the monotonic time of every request (for rate checks).
"""

from __future__ import annotations

import json
import time

from tests.support.http_stub import HTTPStub, Reply, Seen


class FlakyStart:
    """``async with FlakyStart(ws_url, every=3) as start: start.url`` -> the start endpoint."""

    def __init__(self, ws_url: str, *, every: int = 3) -> None:
        self.ws_url = ws_url
        self.every = every
        self.arrivals: list[float] = []
        self.failed = 0
        self._stub = HTTPStub(respond=self._answer)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/start``."""
        return self._stub.url("/start")

    async def __aenter__(self) -> FlakyStart:
        await self._stub.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stub.__aexit__(*exc)

    def _answer(self, _seen: Seen) -> Reply:
        self.arrivals.append(time.monotonic())
        if len(self.arrivals) % self.every == 0:
            self.failed += 1
            return Reply(500, json.dumps({"detail": "every third start fails"}).encode())
        return Reply(200, json.dumps({"wsUrl": self.ws_url}).encode())
