"""Floods and slow callbacks: an in-process flood bot, a gated callback, RSS readings.

The testing bots pace themselves like a real conversation, far too slowly to flood a
client. :class:`FloodTransport` is a transport with its bot built in: it answers
``client-ready`` with ``bot-ready`` and then delivers one pre-encoded RTVI message as fast
as asked, straight into the client's transport sink, as a socket reader task would.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.transport import ConnectRequest, Transport, TransportEvents

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
        self._events: TransportEvents | None = None

    async def connect(self, request: ConnectRequest, events: TransportEvents) -> None:
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
