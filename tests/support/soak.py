"""Soak runs: sessions in a row while tasks, fds and RSS are measured; they must stay flat.

Shared by tests/test_soak.py (loopback) and tests/interop/test_soak_interop.py (real bot).
``SOAK=1`` (``make soak``) selects the long counts.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
