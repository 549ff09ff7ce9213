"""Throughput: client-message request/response per second, `PipecatClient` vs a raw client.

Three bots, the same ``echo`` request on each, sequential (one in flight) and with
``CONCURRENCY`` in flight; bursts of the two sides alternate (A B / B A):

* loopback: ``LoopbackBot`` in process, no network. Raw side: the same ``LoopbackTransport``
  driven by a bare ``TransportSink`` sink (JSON decode + id match), no lifecycle.
* testing bot: ``transports.testing.TestingBotServer`` over WebSocket; raw side: RawWSClient.
* real Pipecat 1.14 bot over WebSocket (when its URL is given); raw side: RawWSClient.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._stats import Row, ratio_text, ratios, summarize
from benchmarks.raw_ws_client import RawWSClient
from benchmarks.trigger_cost import json_logger
from lifecycle import PipecatClient
from lifecycle.media import AudioFrame
from transports.base import ConnectRequest
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

GOAL = 0.90
CONCURRENCY = 16
BURST_TIMEOUT = 60.0

Request = Callable[[], Awaitable[Any]]


class RawLoopback:
    """A bare TransportSink sink on a LoopbackTransport: the minimum a client must do."""

    def __init__(self, bot: LoopbackBot) -> None:
        self.transport = LoopbackTransport(bot)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._n = 0

    async def connect(self) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        await self.transport.connect(ConnectRequest(params=None), self)
        await self._ready

    def transport_connected(self) -> None:
        self.transport.send_message(
            {"label": "rtvi-ai", "type": "client-ready", "id": "r", "data": {"version": "2.2.0"}}
        )

    def message_received(self, message: Any) -> None:
        msg = json.loads(message) if isinstance(message, str | bytes) else message
        kind = msg.get("type")
        if kind == "bot-ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        elif kind in ("server-response", "error-response"):
            future = self._pending.pop(msg.get("id"), None)
            if future is not None and not future.done():
                future.set_result(msg.get("data"))

    def message_dropped(self, reason: str) -> None:
        pass

    def audio_received(self, frame: AudioFrame) -> None:
        pass

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        pass

    async def request(self, msg_type: str, data: Any = None) -> Any:
        self._n += 1
        msg_id = f"m{self._n}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self.transport.send_message(
            {
                "label": "rtvi-ai",
                "type": "client-message",
                "id": msg_id,
                "data": {"t": msg_type, "d": data},
            }
        )
        return await future

    async def close(self) -> None:
        await self.transport.disconnect()


async def _burst(request: Request, count: int, concurrency: int) -> float:
    """Messages per second of ``count`` requests, ``concurrency`` in flight."""

    async def worker(k: int) -> None:
        for _ in range(k):
            await request()

    per = count // concurrency
    t0 = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker(per) for _ in range(concurrency))), BURST_TIMEOUT
    )
    return per * concurrency / (time.perf_counter() - t0)


async def _compare(bot: str, ours: Request, base: Request, rounds: int, count: int) -> list[Row]:
    rows = []
    for concurrency in (1, CONCURRENCY):
        a: list[float] = []
        b: list[float] = []
        await _burst(ours, count // 4, concurrency)  # warm-up
        await _burst(base, count // 4, concurrency)
        for i in range(rounds):
            if i % 2:
                b.append(await _burst(base, count, concurrency))
                a.append(await _burst(ours, count, concurrency))
            else:
                a.append(await _burst(ours, count, concurrency))
                b.append(await _burst(base, count, concurrency))
        r = summarize(ratios(a, b))
        mode = "sequential" if concurrency == 1 else f"{concurrency} in flight"
        sa, sb = summarize(a), summarize(b)
        rows.append(
            Row(
                "3",
                f"throughput {bot}, {mode} (msg/s)",
                _fmt_rate(sa.median, sa.q1, sa.q3),
                _fmt_rate(sb.median, sb.q1, sb.q3),
                ratio_text(r),
                f"≥ x{GOAL:.2f}",
                r.median >= GOAL,
            )
        )
    return rows


def _fmt_rate(median: float, q1: float, q3: float) -> str:
    return f"{median:,.0f} [{q1:,.0f}-{q3:,.0f}]"


def _client(transport: Any) -> PipecatClient:
    log = json_logger()
    return PipecatClient(transport, logger=log, connect_timeout=10)


async def _loopback(rounds: int, count: int) -> list[Row]:
    handlers = {"echo": lambda d: d}
    client = _client(LoopbackTransport(LoopbackBot(handlers=handlers)))
    raw = RawLoopback(LoopbackBot(handlers=handlers))
    await client.connect()
    await raw.connect()
    try:
        return await _compare(
            "loopback (in process)",
            lambda: client.send_client_request("echo", {"n": 1}),
            lambda: raw.request("echo", {"n": 1}),
            rounds,
            count,
        )
    finally:
        await client.disconnect()
        await raw.close()


async def _ws(
    bot: str, ws_urls: Callable[[], Awaitable[str]], rounds: int, count: int
) -> list[Row]:
    log = json_logger()
    client = _client(WebSocketTransport(logger=log))
    raw = RawWSClient()
    await client.connect({"wsUrl": await ws_urls()})
    await raw.connect(await ws_urls())
    try:
        return await _compare(
            bot,
            lambda: client.send_client_request("echo", {"n": 1}),
            lambda: raw.request("echo", {"n": 1}),
            rounds,
            count,
        )
    finally:
        await client.disconnect()
        await raw.close()


async def measure(real_bot_url: str | None, quick: bool) -> list[Row]:
    """All throughput rows; the real-bot rows only when ``real_bot_url`` is given."""
    rounds = 2 if quick else 10
    rows = await _loopback(rounds, 200 if quick else 2000)
    async with TestingBotServer() as server:
        rows += await _ws(
            "testing bot (WS)", lambda: _const(server.ws_url), rounds, 100 if quick else 800
        )
    if real_bot_url is not None:
        async with httpx.AsyncClient(timeout=10) as http:

            async def ws_url() -> str:
                url: str = (await http.post(f"{real_bot_url}/start", json={})).json()["wsUrl"]
                return url

            rows += await _ws("real Pipecat bot (WS)", ws_url, rounds, 64 if quick else 400)
    return rows


async def _const(value: str) -> str:
    return value


def run(real_bot_url: str | None, quick: bool = False) -> list[Row]:
    """Run the section."""
    return asyncio.run(measure(real_bot_url, quick))


def profile_target(requests: int = 5000) -> None:
    """Sequential client requests over loopback, for the profiler."""

    async def go() -> None:
        client = _client(LoopbackTransport(LoopbackBot(handlers={"echo": lambda d: d})))
        await client.connect()
        for _ in range(requests):
            await client.send_client_request("echo", {"n": 1})
        await client.disconnect()

    asyncio.run(go())
