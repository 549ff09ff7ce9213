"""Soak and concurrency over loopback: sessions in a row leave nothing behind.

One client runs many sessions (connect -> READY -> request -> disconnect); asyncio tasks, open
file descriptors and RSS are measured after a warm-up ("before"), at every tenth of the run
("during", between sessions) and at the end ("after"), and must stay flat. ``SOAK=1`` (``make
soak``) runs the long counts; ``make test`` runs a short version. :class:`Meter`,
:func:`soak` and :func:`soak_count` are in tests/support/soak.py.
"""

from __future__ import annotations

import asyncio
import gc
import os

import pytest

from lifecycle import PipecatClient, State
from transports.loopback import LoopbackBot, LoopbackTransport

from .support.recorder import within
from .support.soak import soak, soak_count

pytestmark = pytest.mark.soak


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
