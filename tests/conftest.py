"""Shared fixtures: a loopback bot and client, a recorder, captured logs, an HTTP stub.

The helpers they use live in tests/support/ (tests import them from there, never from here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from lifecycle import PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport

from .support.http_stub import HTTPStub
from .support.recorder import Recorder, within


@pytest.fixture
def bot() -> LoopbackBot:
    return LoopbackBot(handlers={"echo": lambda d: d})


@pytest.fixture
async def client(bot: LoopbackBot) -> AsyncIterator[PipecatClient]:
    c = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0, request_timeout=2.0)
    yield c
    await within(c.disconnect())


@pytest.fixture
def recorder(client: PipecatClient) -> Recorder:
    return Recorder(client)


@pytest.fixture
def logs() -> Any:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def http() -> AsyncIterator[Any]:
    async with HTTPStub() as stub:
        yield stub
