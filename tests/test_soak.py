"""Soak and concurrency over loopback: sessions in a row leave nothing behind.

One client runs many sessions (connect -> READY -> request -> disconnect); asyncio tasks, open
file descriptors and RSS are measured after a warm-up ("before"), at every tenth of the run
("during", between sessions) and at the end ("after"), and must stay flat. ``SOAK=1`` (``make
soak``) runs the long counts; ``make test`` runs a short version. :class:`Meter` and
:func:`soak_count` are shared with tests/interop/test_soak_interop.py.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from lifecycle import PipecatClient, State
from transports.loopback import LoopbackBot, LoopbackTransport

from .conftest import within

pytestmark = pytest.mark.soak

LONG = os.environ.get("SOAK") == "1"
"""Long counts (``make soak``) instead of the short ones in ``make test``."""

MIB = 1024 * 1024

# Bounds, chosen from measured runs with a wide margin (figures in RELIABILITY.md).
FD_TOLERANCE = 2
RSS_GROWTH_MIB = 8.0


def soak_count(short: int, long: int) -> int:
    """The number of sessions for this run."""
    return long if LONG else short


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@dataclass
class Sample:
    """One measurement."""

    sessions: int
    tasks: int
    fds: int
    rss: int


@dataclass
class Meter:
    """Tasks, fds and RSS before, during and after a run of sessions."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    def take(self, sessions: int) -> Sample:
        """Measure now (after a gc, so RSS and fds reflect what is really held)."""
        gc.collect()
        sample = Sample(
            sessions, len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd")), rss_bytes()
        )
        self.samples.append(sample)
        return sample

    @property
    def before(self) -> Sample:
        """The first sample (after warm-up)."""
        return self.samples[0]

    @property
    def after(self) -> Sample:
        """The last sample."""
        return self.samples[-1]

    def report(self) -> str:
        """One line with the figures (printed; `pytest -s` shows them)."""
        b, a = self.before, self.after
        peak_fds = max(s.fds for s in self.samples)
        peak_tasks = max(s.tasks for s in self.samples)
        peak_rss = max(s.rss for s in self.samples)
        return (
            f"SOAK {self.label}: {a.sessions - b.sessions} sessions; "
            f"tasks {b.tasks} -> {a.tasks} (peak {peak_tasks}); "
            f"fds {b.fds} -> {a.fds} (peak {peak_fds}); "
            f"RSS {b.rss / MIB:.1f} -> {a.rss / MIB:.1f} MiB "
            f"(+{(a.rss - b.rss) / MIB:.2f}, peak {peak_rss / MIB:.1f})"
        )

    def assert_flat(self, *, rss_growth_mib: float = RSS_GROWTH_MIB) -> None:
        """Tasks equal, fds within the tolerance, RSS growth under the bound, at every sample."""
        print(self.report())
        b = self.before
        for s in self.samples:
            assert s.tasks == b.tasks, f"{self.label}: tasks {b.tasks} -> {s.tasks} at {s}"
            assert abs(s.fds - b.fds) <= FD_TOLERANCE, f"{self.label}: fds {b.fds} -> {s}"
            growth = (s.rss - b.rss) / MIB
            assert growth < rss_growth_mib, f"{self.label}: RSS +{growth:.1f} MiB at {s}"


async def soak(
    label: str,
    session: Callable[[], Awaitable[None]],
    count: int,
    *,
    warmup: int,
    rss_growth_mib: float = RSS_GROWTH_MIB,
) -> Meter:
    """Run ``warmup`` then ``count`` sessions in a row, measuring ten times along the way."""
    for _ in range(warmup):
        await session()
    meter = Meter(label)
    meter.take(0)
    step = max(1, count // 10)
    for i in range(1, count + 1):
        await session()
        if i % step == 0 or i == count:
            meter.take(i)
    meter.assert_flat(rss_growth_mib=rss_growth_mib)
    return meter


async def test_soak_loopback_sessions_in_a_row() -> None:
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=5.0, request_timeout=5.0)
    disconnects = 0

    def on_disconnected() -> None:
        nonlocal disconnects
        disconnects += 1

    client.add_event_handler("on_disconnected", on_disconnected)

    async def session() -> None:
        await within(client.connect())
        assert client.state is State.READY
        assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}
        await within(client.disconnect())
        assert client.state is State.DISCONNECTED

    count = soak_count(100, 1000)
    await soak("loopback", session, count, warmup=10)
    assert disconnects == count + 10
    assert client.session_id == count + 10


async def test_concurrent_loopback_clients() -> None:
    n = 100
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    fds_before = len(os.listdir("/proc/self/fd"))
    clients = [
        PipecatClient(
            LoopbackTransport(LoopbackBot(handlers={"echo": lambda d: d})),
            connect_timeout=10.0,
            request_timeout=10.0,
        )
        for _ in range(n)
    ]
    all_ready = asyncio.Event()
    ready = 0

    async def run(i: int, client: PipecatClient) -> None:
        nonlocal ready
        await client.connect()
        ready += 1
        if ready == n:
            all_ready.set()
        await all_ready.wait()  # every client is READY at the same time
        assert client.state is State.READY
        assert await client.send_client_request("echo", i) == i
        await client.disconnect()
        assert client.state is State.DISCONNECTED

    await within(asyncio.gather(*(run(i, c) for i, c in enumerate(clients))), 30.0)
    assert ready == n
    gc.collect()
    assert len(asyncio.all_tasks()) == tasks_before
    assert len(os.listdir("/proc/self/fd")) == fds_before
