"""Flood figures and the per-event cost of emit + dispatch: ``python -m benchmarks.flood``.

Flood: an in-process bot (``tests/support/flood.py``) sends at a given rate to a client
whose async callback is slow; we report how long ``disconnect()`` takes (default
``drain_timeout`` 5 s) and the peak RSS growth during the flood.

Per-event cost: µs from a message handed to the client's transport sink (JSON decoded,
traced, emitted, queued) until its no-op sync callback ran, in batches of ``BATCH``; also
the bare bus (emit + dispatch) and emit with an open stream.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any, cast

from benchmarks._stats import Row
from benchmarks.trigger_cost import json_logger
from lifecycle import PipecatClient
from lifecycle.dispatch import EventBus
from lifecycle.logs import get_logger
from tests.support.flood import FloodStats, FloodTransport, rtvi_text

BATCH = 1000
PAYLOAD = rtvi_text("server-message", {"seq": 1, "text": "x" * 200})
INBOUND = {
    "on_server_message": PAYLOAD,
    "on_bot_llm_text": rtvi_text("bot-llm-text", {"text": "token "}),
    "on_unhandled_message": rtvi_text("x-custom", {"text": "token "}),
}
"""Event -> an RTVI message that fires it: §2's, a typed §9 one, and the untyped fallback."""


async def flood_case(
    rate: int, callback_seconds: float, *, seconds: float = 3.0, drain_timeout: float = 5.0
) -> dict[str, Any]:
    """Flood for ``seconds`` at ``rate`` to a ``callback_seconds`` callback, then disconnect."""
    transport = FloodTransport()
    # The production-like discarded JSON logger of the other sections: the flood's
    # queue-full and discarded warnings are not printed over the results.
    client = PipecatClient(transport, drain_timeout=drain_timeout, logger=json_logger())

    async def slow(data: Any) -> None:
        await asyncio.sleep(callback_seconds)

    client.add_event_handler("on_server_message", slow)
    await asyncio.wait_for(client.connect(), 10)
    gc.collect()
    stats, reached = FloodStats(), asyncio.Event()
    flood = asyncio.ensure_future(
        transport.flood(PAYLOAD, rate, stats, reached, count=int(rate * seconds))
    )
    await asyncio.wait_for(reached.wait(), seconds * 20)
    started = time.monotonic()
    await asyncio.wait_for(client.disconnect(), drain_timeout + 10)
    disconnect_seconds = time.monotonic() - started
    flood.cancel()
    await asyncio.gather(flood, return_exceptions=True)
    return {
        "rate_asked": rate,
        "rate_delivered": round(stats.rate),
        "callback_ms": callback_seconds * 1000,
        "disconnect_s": round(disconnect_seconds, 2),
        "rss_growth_mib": round(stats.rss_growth_mib, 1),
        "dropped": client.dropped_events,
    }


async def client_path_us(batches: int, event: str) -> float:
    """Median µs per message: transport sink -> decode -> emit -> queue -> sync callback."""
    payload = INBOUND[event]
    transport = FloodTransport()
    client = PipecatClient(transport, max_pending_events=BATCH * 2)
    done = asyncio.Event()
    count = 0

    def callback(data: Any) -> None:
        nonlocal count
        count += 1
        if count == BATCH:
            done.set()

    cast(Any, client.add_event_handler)(event, callback)  # the event is a parameter
    await asyncio.wait_for(client.connect(), 10)
    samples = []
    for _ in range(batches):
        count = 0
        done.clear()
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            transport.deliver(payload)
        await done.wait()
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    await client.disconnect()
    return statistics.median(samples)


async def bus_us(batches: int, *, stream: bool) -> float:
    """Median µs per event through the bare bus: emit + dispatch to a sync no-op callback."""
    bus = EventBus({"on_server_message"}, session_id=lambda: 1, log=get_logger())
    done = asyncio.Event()
    count = 0

    def callback(data: Any) -> None:
        nonlocal count
        count += 1
        if count == BATCH:
            done.set()

    bus.handlers_for("on_server_message").append(callback)
    opened = bus.stream((), BATCH * 2) if stream else None
    samples = []
    for _ in range(batches):
        count = 0
        done.clear()
        start = time.perf_counter_ns()
        for i in range(BATCH):
            bus.emit("on_server_message", (i,))
        await done.wait()
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
        if opened is not None:  # a reader keeps up, between batches (not timed)
            for _ in range(BATCH):
                await anext(opened)
    return statistics.median(samples)


async def _figures(quick: bool) -> list[Row]:
    batches = 5 if quick else 50
    seconds = 1.0 if quick else 3.0
    drain = 0.5 if quick else 5.0
    rows = [
        Row(
            "8",
            "per message: transport sink → decode → on_server_message (sync no-op)",
            f"{await client_path_us(batches, 'on_server_message'):.2f} µs",
            "",
            "",
        ),
        Row(
            "8",
            "per event: bare EventBus emit + dispatch (sync no-op); with one open stream",
            f"{await bus_us(batches, stream=False):.2f} µs; "
            f"{await bus_us(batches, stream=True):.2f} µs",
            "",
            "",
        ),
    ]
    for rate, callback_seconds in ((20_000, 0.001), (100_000, 0.01)):
        case = await flood_case(rate, callback_seconds, seconds=seconds, drain_timeout=drain)
        rows.append(
            Row(
                "8",
                f"flood {rate:,} msg/s asked ({case['rate_delivered']:,} delivered) for "
                f"{seconds:.0f} s to a {case['callback_ms']:.0f} ms async callback: "
                f"disconnect() time (drain_timeout {drain:g} s), peak RSS growth, events dropped",
                f"{case['disconnect_s']:.2f} s; +{case['rss_growth_mib']:.1f} MiB; "
                f"{case['dropped']:,} dropped",
                "",
                "",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    """Table rows: per-event costs and the flood figures (no goals: figures)."""
    return asyncio.run(_figures(quick))


async def main(quick: bool) -> None:
    """Print every figure."""
    batches = 5 if quick else 50
    for event in INBOUND:
        cost = await client_path_us(batches, event)
        print(f"client inbound path to {event}, per message: {cost:.2f} µs")
    print(f"bus emit + dispatch, per event:   {await bus_us(batches, stream=False):.2f} µs")
    print(f"  with one open stream:           {await bus_us(batches, stream=True):.2f} µs")
    seconds = 1.0 if quick else 3.0
    for rate, callback_seconds in ((20_000, 0.001), (100_000, 0.01)):
        print("flood", await flood_case(rate, callback_seconds, seconds=seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter floods")
    asyncio.run(main(parser.parse_args().quick))
