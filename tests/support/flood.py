"""Floods and slow callbacks: flood bots, a gated callback, RSS readings.

The testing bots pace themselves like a real conversation, far too slowly to flood a
client. :class:`FloodTransport` is a transport with its bot built in: it answers
``client-ready`` with ``bot-ready`` and then delivers one pre-encoded RTVI message as fast
as asked, straight into the client's transport sink, as a socket reader task would.
:class:`WebSocketFloodBot` does the same over a real WebSocket (Pipecat protobuf frames),
from a process of its own: ``python -m tests.support.flood RATE MSG_TYPE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lifecycle.transport import ConnectRequest, Transport, TransportSink

REPO = Path(__file__).resolve().parent.parent.parent

BOT_READY = json.dumps(
    {
        "label": "rtvi-ai",
        "type": "bot-ready",
        "id": "ready",
        "data": {"version": "2.2.0", "about": {"library": "flood-bot"}},
    }
)


def rtvi_text(msg_type: str, data: Any) -> str:
    """One RTVI message as the JSON text a wire carries."""
    return json.dumps({"label": "rtvi-ai", "type": msg_type, "data": data})


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class FloodStats:
    """What one flood did."""

    sent: int = 0
    """Messages delivered to the client."""
    seconds: float = 0.0
    """How long the flood ran."""
    rss_start: int = 0
    rss_peak: int = 0

    @property
    def rate(self) -> float:
        """Messages per second actually delivered."""
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def rss_growth_mib(self) -> float:
        """Peak RSS during the flood minus RSS at its start, in MiB."""
        return (self.rss_peak - self.rss_start) / 2**20


class FloodTransport(Transport):
    """A transport and flood bot in one: connects at once, answers ``client-ready``."""

    def __init__(self) -> None:
        self._events: TransportSink | None = None

    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        self._events = events
        events.transport_connected()

    def send_message(self, message: Mapping[str, Any]) -> None:
        if message.get("type") == "client-ready":
            asyncio.get_running_loop().call_soon(self.deliver, BOT_READY)

    async def disconnect(self) -> None:
        self._events = None

    def deliver(self, payload: str) -> None:
        """Hand one message to the client, as the transport's reader would."""
        if self._events is not None:
            self._events.message_received(payload)

    async def flood(
        self,
        payload: str,
        rate: float,
        stats: FloodStats,
        reached: asyncio.Event,
        count: int,
    ) -> None:
        """Deliver ``payload`` at ``rate`` per second until cancelled or disconnected;
        ``reached`` once ``count`` were sent. Between bursts it yields to the loop (the
        client's dispatcher and timers run there, as beside a socket reader) and samples RSS.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        stats.rss_start = stats.rss_peak = rss_bytes()
        burst_cap = max(1, int(rate / 200))  # at most 5 ms worth of messages per burst
        next_sample = start
        try:
            while self._events is not None:
                now = loop.time()
                due = min(int((now - start) * rate) - stats.sent, burst_cap)
                for _ in range(due):
                    self.deliver(payload)
                stats.sent += max(due, 0)
                if stats.sent >= count:
                    reached.set()
                if now >= next_sample:
                    stats.rss_peak = max(stats.rss_peak, rss_bytes())
                    next_sample = now + 0.05
                await asyncio.sleep(0)
        finally:
            stats.seconds = loop.time() - start
            stats.rss_peak = max(stats.rss_peak, rss_bytes())


class Gate:
    """An async callback that holds the dispatcher until :meth:`open` (a slow callback)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._opened = asyncio.Event()
        self.calls = 0

    async def __call__(self, *args: Any) -> None:
        self.calls += 1
        self.entered.set()
        await self._opened.wait()

    def open(self) -> None:
        """Let every held and later call through."""
        self._opened.set()


class RssWatch:
    """``async with RssWatch() as rss``: this process's RSS at the start and its peak,
    and the event loop's worst lag (how late a 50 ms timer fired: a starved loop)."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.start = self.peak = 0
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssWatch:
        self.start = self.peak = rss_bytes()
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_bytes())

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.peak = max(self.peak, rss_bytes())
            before = loop.time()
            await asyncio.sleep(self.every)
            self.max_lag = max(self.max_lag, loop.time() - before - self.every)

    @property
    def growth_mib(self) -> float:
        """Peak minus start, in MiB."""
        return (self.peak - self.start) / 2**20


class WebSocketFloodBot:
    """A bot process on a WebSocket that answers ``client-ready`` then floods.

    ``async with WebSocketFloodBot(rate, "server-message") as bot``: ``bot.ws_url`` takes a
    ``WebSocketTransport``. Each connection gets bot-ready, then messages of ``msg_type`` at
    ``rate`` per second (as far as the socket takes them) until it closes.
    """

    def __init__(self, rate: int, msg_type: str) -> None:
        self.rate = rate
        self.msg_type = msg_type
        self.ws_url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> WebSocketFloodBot:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.flood",
            str(self.rate),
            self.msg_type,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(REPO),
            env=env,
        )
        assert self._process.stdout is not None
        async with asyncio.timeout(30):
            port = int((await self._process.stdout.readline()).decode() or "0")
        if not port:
            raise RuntimeError("the flood bot did not start")
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _serve_flood(rate: int, msg_type: str) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    from transports.websocket import decode_frame, encode_message

    flood_frame = encode_message(
        {"label": "rtvi-ai", "type": msg_type, "data": {"seq": 1, "text": "x" * 200}}
    )

    async def session(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for data in ws:
                message = decode_frame(data) if isinstance(data, bytes) else None
                if isinstance(message, str) and '"client-ready"' in message:
                    await ws.send(encode_message(json.loads(BOT_READY)))
                    break
            start, sent = loop.time(), 0
            while True:
                due = min(int((loop.time() - start) * rate) - sent, max(1, rate // 200))
                for _ in range(due):
                    await ws.send(flood_frame)  # waits when the client's socket is full
                sent += max(due, 0)
                await asyncio.sleep(0)

    async with serve(session, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(_serve_flood(int(sys.argv[1]), sys.argv[2]))
