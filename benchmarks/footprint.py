"""Footprint: memory per idle client and per live loopback session, and `import lifecycle` time.

Memory is what ``tracemalloc`` sees allocated (and still alive) while N objects exist, over N.
Import time is wall time of a fresh interpreter that imports lifecycle and uses the core
(``State``, ``TRANSITIONS``, ``SessionLifecycle``, one trigger fired) against ``python -c pass``,
interleaved; the difference of the medians is the cost (goal: at most 100 ms, issue 11.1;
tests/test_architecture.py asserts which modules that import loads).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from benchmarks._stats import Row, summarize
from benchmarks.throughput import RawLoopback
from benchmarks.trigger_cost import json_logger
from lifecycle import PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport

IMPORT_GOAL_MS = 100.0
CORE_USE = (
    "import lifecycle; from lifecycle import TRANSITIONS, SessionLifecycle, State; "
    "m = SessionLifecycle(); m.start_bot(); assert m.state is State.AUTHENTICATING and TRANSITIONS"
)
NO_AIORTC = (
    "import sys, lifecycle, transports.websocket, transports.loopback; "
    "bad = [m for m in ('aiortc', 'av', 'aioice') if m in sys.modules]; "
    "assert not bad, bad"
)


def _traced(build: Any) -> tuple[int, Any]:
    """Bytes ``build()``'s result keeps alive, and the result (kept alive by the caller)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, result


def idle_clients(n: int) -> float:
    """KiB per idle ``PipecatClient`` (its transport built beforehand, not counted)."""
    transports = [LoopbackTransport(LoopbackBot()) for _ in range(n)]
    log = json_logger()  # one logger shared by all, as an application would
    size, clients = _traced(lambda: [PipecatClient(t, logger=log) for t in transports])
    del clients
    return size / n / 1024


async def _live(n: int, raw: bool) -> float:
    """KiB per live loopback session (bot + transport + client, connected, READY)."""

    log = json_logger()

    async def build() -> list[Any]:
        if raw:
            sessions: list[Any] = [RawLoopback(LoopbackBot()) for _ in range(n)]
            await asyncio.gather(*(s.connect() for s in sessions))
        else:
            sessions = [
                PipecatClient(LoopbackTransport(LoopbackBot()), logger=log) for _ in range(n)
            ]
            await asyncio.gather(*(c.connect() for c in sessions))
        return sessions

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sessions = await asyncio.wait_for(build(), 120)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    if raw:
        await asyncio.gather(*(s.close() for s in sessions))
    else:
        await asyncio.gather(*(c.disconnect() for c in sessions))
    return (after - before) / n / 1024


def live_sessions(n: int) -> tuple[float, float]:
    """KiB per live session through the client, and through the raw loopback driver."""

    async def go() -> tuple[float, float]:
        return await _live(n, raw=False), await _live(n, raw=True)

    return asyncio.run(go())


def _run_python(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
    return (time.perf_counter() - t0) * 1000


def import_time(repeats: int) -> tuple[list[float], list[float]]:
    """Wall ms of importing and using the core and of ``pass`` in fresh interpreters."""
    ours: list[float] = []
    base: list[float] = []
    _run_python(CORE_USE)  # warm the file cache
    for i in range(repeats):
        if i % 2:
            base.append(_run_python("pass"))
            ours.append(_run_python(CORE_USE))
        else:
            ours.append(_run_python(CORE_USE))
            base.append(_run_python("pass"))
    return ours, base


def check_no_aiortc() -> None:
    """Fail when importing lifecycle or the WebSocket/loopback transports imports aiortc."""
    subprocess.run([sys.executable, "-c", NO_AIORTC], check=True, capture_output=True, timeout=60)


def slowest_imports(top: int = 8) -> list[tuple[float, str]]:
    """The biggest cumulative imports of ``import lifecycle`` (``-X importtime``), in ms."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lifecycle"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    found: list[tuple[float, str]] = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if name not in ("lifecycle", "site") and "." not in name:
                found.append((int(parts[1]) / 1000, name))
    return sorted(found, reverse=True)[:top]


def run(quick: bool = False) -> list[Row]:
    """Run the footprint section (``quick``: 100 sessions, 5 import repeats)."""
    n = 100 if quick else 1000
    idle = idle_clients(n)
    live, live_raw = live_sessions(n)
    check_no_aiortc()
    ours, base = import_time(5 if quick else 30)
    a, b = summarize(ours), summarize(base)
    delta = a.median - b.median
    return [
        Row("4", f"memory per idle PipecatClient ({n} at once)", f"{idle:.1f} KiB", "", "", ""),
        Row(
            "4",
            f"memory per live loopback session, bot+transport+client ({n} at once)",
            f"{live:.1f} KiB",
            f"raw loopback driver {live_raw:.1f} KiB",
            f"x{live / live_raw:.2f}",
        ),
        Row(
            "4",
            "`import lifecycle` + core use: State, TRANSITIONS, SessionLifecycle, a trigger "
            "(fresh interpreter, wall ms); aiortc/av/aioice not imported: ok",
            a.fmt(" ms", 1),
            f"`python -c pass` {b.fmt(' ms', 1)}",
            f"+{delta:.1f} ms",
            f"≤ +{IMPORT_GOAL_MS:.0f} ms",
            delta <= IMPORT_GOAL_MS,
        ),
    ]
