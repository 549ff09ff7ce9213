"""Soak and concurrency against the real Pipecat 1.14 bot: WebSocket and SmallWebRTC.

One client runs sessions in a row (start_bot_and_connect -> READY -> request -> disconnect)
while tasks, fds and RSS are measured (tests/test_soak.py's :class:`Meter`); ``SOAK=1`` (``make
soak``) runs 200 WebSocket and 50 SmallWebRTC sessions, ``make test`` 20 and 5. Concurrency:
20 WebSocket clients at once, all READY together, each doing a request and ending cleanly.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

import pytest

from lifecycle import APIRequest, PipecatClient, State
from tests.support.processes import BotServer
from tests.support.recorder import within
from tests.support.soak import soak, soak_count
from transports.base import Transport
from transports.websocket import WebSocketTransport

pytestmark = pytest.mark.soak

WAIT = 15.0
# Interop sessions go through httpx, websockets and aiortc: allocator and library caches
# settle more slowly than loopback. Measured growth is far below this (RELIABILITY.md).
RSS_GROWTH_MIB = 16.0


async def run_soak(
    label: str, transport: Transport, start_url: str, count: int, warmup: int
) -> None:
    client = PipecatClient(transport, connect_timeout=WAIT, request_timeout=WAIT)
    disconnects = 0

    def on_disconnected() -> None:
        nonlocal disconnects
        disconnects += 1

    client.add_event_handler("on_disconnected", on_disconnected)

    async def session() -> None:
        await within(client.start_bot_and_connect(APIRequest(start_url)), WAIT)
        assert client.state is State.READY
        assert await within(client.send_client_request("echo", {"n": 1}), WAIT) == {"n": 1}
        await within(client.disconnect(), WAIT)
        assert client.state is State.DISCONNECTED

    await soak(label, session, count, warmup=warmup, rss_growth_mib=RSS_GROWTH_MIB)
    assert disconnects == count + warmup


async def test_soak_websocket(bot_server: BotServer) -> None:
    bot_server.ensure_running()
    await run_soak(
        "websocket",
        WebSocketTransport(),
        f"{bot_server.base_url}/start",
        soak_count(20, 200),
        warmup=3,
    )


async def test_soak_small_webrtc(bot_server: BotServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aiortc")
    import aioice.ice

    from transports.small_webrtc import SmallWebRTCTransport

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", host_addresses)
    bot_server.ensure_running()
    await run_soak(
        "small-webrtc",
        SmallWebRTCTransport(ice_servers=[]),
        f"{bot_server.base_url}/api/start",
        soak_count(5, 50),
        warmup=2,
    )


async def test_concurrent_websocket_clients(bot_server: BotServer) -> None:
    bot_server.ensure_running()
    n = 20
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    fds_before = len(os.listdir("/proc/self/fd"))
    clients = [PipecatClient(WebSocketTransport(), connect_timeout=WAIT) for _ in range(n)]
    all_ready = asyncio.Event()
    ready = 0
    url = f"{bot_server.base_url}/start"

    async def run(i: int, client: PipecatClient) -> Any:
        nonlocal ready
        await client.start_bot_and_connect(url)
        ready += 1
        if ready == n:
            all_ready.set()
        await all_ready.wait()  # every client is READY at the same time
        assert client.state is State.READY
        assert await client.send_client_request("echo", {"client": i}) == {"client": i}
        await client.disconnect()
        assert client.state is State.DISCONNECTED

    await within(asyncio.gather(*(run(i, c) for i, c in enumerate(clients))), 60.0)
    assert ready == n
    gc.collect()
    assert len(asyncio.all_tasks()) == tasks_before
    assert len(os.listdir("/proc/self/fd")) == fds_before
