"""Session overhead: connect→ready and request round trip, `PipecatClient` vs a raw client.

Both sides talk to the same real Pipecat 1.14 bot (tests/interop/bot_server.py), interleaved
A B / B A. What is compared, exactly:

* WS connect→ready: both get a ``wsUrl`` from ``POST /start`` outside the timing, then time
  socket open + client-ready + bot-ready (client: ``connect({"wsUrl": ...})``).
* WS start+connect→ready: ``POST /start`` included. The client's ``start_bot_and_connect``
  opens a new httpx client per start (TLS context cached); the raw side reuses ONE httpx client.
* WebRTC connect→ready: both POST the offer to the direct ``/api/offer``. The transport opens
  a new httpx client per connect and sends a live (silent) audio track; the raw side reuses
  one httpx client and offers transceivers without tracks.
* Round trip: one session of each kind open at once; ``echo`` requests alternate between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._stats import Row, ratio_text, ratios, summarize
from benchmarks.raw_webrtc_client import RawWebRTCClient
from benchmarks.raw_ws_client import RawWSClient
from benchmarks.trigger_cost import json_logger
from lifecycle import APIRequest, PipecatClient
from transports.websocket import WebSocketTransport

GOAL = 1.10
STEP_TIMEOUT = 20.0


async def _timed(step: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await asyncio.wait_for(step(), STEP_TIMEOUT)
    return (time.perf_counter() - t0) * 1000


def _row(measure: str, ours: list[float], base: list[float], unit: str = " ms") -> Row:
    a, b = summarize(ours), summarize(base)
    r = summarize(ratios(ours, base))
    p99_ratio = a.p99 / b.p99
    row = Row(
        "2",
        measure,
        a.fmt(unit, 2),
        b.fmt(unit, 2),
        ratio_text(r, p99_ratio),
        f"≤ x{GOAL:.2f}",
        r.median <= GOAL,
    )
    if p99_ratio > GOAL:
        row.notes.append(f"p99 ratio x{p99_ratio:.2f} is over x{GOAL:.2f}")
    return row


async def _pairs(
    n: int, ours: Callable[[], Awaitable[float]], base: Callable[[], Awaitable[float]]
) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    await ours()  # warm-up, both sides
    await base()
    for i in range(n):
        if i % 2:
            b.append(await base())
            a.append(await ours())
        else:
            a.append(await ours())
            b.append(await base())
    return a, b


async def _ws(base_url: str, quick: bool, http: httpx.AsyncClient) -> list[Row]:
    log = json_logger()
    client = PipecatClient(WebSocketTransport(logger=log), logger=log, connect_timeout=10)
    raw = RawWSClient()

    async def ws_url() -> str:
        response = await http.post(f"{base_url}/start", json={})
        url: str = response.json()["wsUrl"]
        return url

    async def client_connect() -> float:
        url = await ws_url()
        ms = await _timed(lambda: client.connect({"wsUrl": url}))
        await client.disconnect()
        return ms

    async def raw_connect() -> float:
        url = await ws_url()
        ms = await _timed(lambda: raw.connect(url))
        await raw.close()
        return ms

    async def client_start() -> float:
        request = APIRequest(f"{base_url}/start", request_data={})
        ms = await _timed(lambda: client.start_bot_and_connect(request))
        await client.disconnect()
        return ms

    async def raw_start() -> float:
        async def go() -> None:
            await raw.connect(await ws_url())

        ms = await _timed(go)
        await raw.close()
        return ms

    n_connect = 3 if quick else 40
    rows = [
        _row(
            "WS connect→ready (wsUrl given)", *await _pairs(n_connect, client_connect, raw_connect)
        ),
        _row("WS /start+connect→ready", *await _pairs(n_connect, client_start, raw_start)),
    ]
    await client.connect({"wsUrl": await ws_url()})
    await raw.connect(await ws_url())
    try:
        rows.append(await _rtt("WS request round trip (echo)", client, raw, 20 if quick else 400))
    finally:
        await client.disconnect()
        await raw.close()
    return rows


async def _rtt(measure: str, client: PipecatClient, raw: Any, n: int) -> Row:
    async def ours() -> float:
        return await _timed(lambda: client.send_client_request("echo", {"n": 1}))

    async def base() -> float:
        return await _timed(lambda: raw.request("echo", {"n": 1}))

    a, b = await _pairs(n, ours, base)
    return _row(measure, [x * 1000 for x in a], [x * 1000 for x in b], " µs")


async def _webrtc(base_url: str, quick: bool, http: httpx.AsyncClient) -> list[Row]:
    from transports.small_webrtc import SmallWebRTCTransport

    log = json_logger()
    offer = f"{base_url}/api/offer"
    client = PipecatClient(
        SmallWebRTCTransport(ice_servers=[], logger=log), logger=log, connect_timeout=15
    )
    raw = RawWebRTCClient(http)

    async def client_connect() -> float:
        ms = await _timed(lambda: client.connect({"webrtcUrl": offer}))
        await client.disconnect()
        return ms

    async def raw_connect() -> float:
        ms = await _timed(lambda: raw.connect(offer))
        await raw.close()
        return ms

    rows = [
        _row(
            "WebRTC connect→ready (offer URL given)",
            *await _pairs(2 if quick else 15, client_connect, raw_connect),
        )
    ]
    await client.connect({"webrtcUrl": offer})
    await raw.connect(offer)
    try:
        rows.append(
            await _rtt("WebRTC request round trip (echo)", client, raw, 20 if quick else 300)
        )
    finally:
        await client.disconnect()
        await raw.close()
    return rows


async def measure(base_url: str, quick: bool, webrtc: bool = True) -> list[Row]:
    """All session-overhead rows against the bot at ``base_url``."""
    async with httpx.AsyncClient(timeout=10) as http:
        rows = await _ws(base_url, quick, http)
        if webrtc:
            rows += await _webrtc(base_url, quick, http)
    return rows


def run(base_url: str, quick: bool = False) -> list[Row]:
    """Run the section (the bot must be running at ``base_url``)."""
    from benchmarks.raw_webrtc_client import loopback_ice

    loopback_ice()
    return asyncio.run(measure(base_url, quick))
