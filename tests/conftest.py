"""Shared fixtures: a loopback bot and client, a testing bot server, a recorder, captured
logs, an HTTP stub.

The helpers they use live in tests/support/ (tests import them from there, never from here).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from hypothesis import settings

from lifecycle import PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.testing import TestingBotServer

from .support.http_stub import HTTPStub
from .support.recorder import Recorder, within

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default "dev"; `make test` uses "ci").
# Both print the failing example and a @reproduce_failure blob. "ci" is derandomized (the
# same examples on every run, no example database), so a CI failure reruns as it failed.
settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", print_blob=True, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Any:
    # The CLI's in-process runs configure structlog for their process; put the defaults
    # back so a later test's logging does not depend on which tests ran before it.
    yield
    structlog.reset_defaults()


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host has only loopback: aioice must offer 127.0.0.1 (tests only, never the library)."""
    aioice_ice = pytest.importorskip("aioice.ice")

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice_ice, "get_host_addresses", host_addresses)


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


@pytest.fixture
async def server() -> AsyncIterator[TestingBotServer]:
    """The WebSocket testing bot, served on 127.0.0.1 for the test (start and stop bounded)."""
    async with asyncio.timeout(10):
        await (bot := TestingBotServer()).start()
    try:
        yield bot
    finally:
        async with asyncio.timeout(10):
            await bot.stop()
