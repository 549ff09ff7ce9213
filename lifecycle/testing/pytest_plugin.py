"""The pytest plugin (entry point ``pytest11``: ``pipecat``): bot and client fixtures.

It does nothing unless a test asks for its fixtures:

* ``pipecat_bot``: a started local testing bot (``transports.testing.TestingBotServer``, or
  the SmallWebRTC one with ``--pipecat-transport webrtc``), stopped after the test.
* ``pipecat_client``: a :class:`~lifecycle.PipecatClient` already READY when the test starts,
  disconnected after it: connected to ``--pipecat-start URL`` (a start endpoint, e.g. a
  deployed bot's) when given, else to ``pipecat_bot``; over ``--pipecat-transport ws|webrtc``.

So the same test file runs against the testing bot in CI and against a real bot from a
laptop (``pytest --pipecat-start https://my-bot.example/start``). The fixtures are
pytest-asyncio fixtures: they work in its ``auto`` and ``strict`` modes alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient

__all__ = ["pipecat_bot", "pipecat_client", "pytest_addoption"]

CONNECT_TIMEOUT: Final = 30.0
_MISSING: Final = "the pipecat fixtures are async: pip install pytest-asyncio"

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(func: _F) -> _F:
    """A pytest-asyncio fixture (any mode); without pytest-asyncio a fixture that fails."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - the plugin must not break pytest without it

        def missing() -> None:
            pytest.fail(_MISSING)

        return cast(_F, pytest.fixture(name=func.__name__)(missing))
    return cast(_F, pytest_asyncio.fixture(func))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--pipecat-start URL`` and ``--pipecat-transport ws|webrtc``."""
    group = parser.getgroup("pipecat", "Pipecat bot tests (pipecat-lifecycle)")
    group.addoption(
        "--pipecat-start",
        metavar="URL",
        default=None,
        help="pipecat_client connects to the bot behind this start endpoint "
        "(default: the local testing bot of pipecat_bot)",
    )
    group.addoption(
        "--pipecat-transport",
        choices=("ws", "webrtc"),
        default="ws",
        help="transport of pipecat_bot and pipecat_client (default: ws)",
    )


def _transport_kind(config: pytest.Config) -> str:
    kind: str = config.getoption("--pipecat-transport")
    return kind


@_async_fixture
async def pipecat_bot(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A started local testing bot (WebSocket, or SmallWebRTC), stopped after the test."""
    server: Any
    if _transport_kind(request.config) == "webrtc":
        from transports.testing.webrtc import TestingWebRTCBotServer

        server = TestingWebRTCBotServer()
    else:
        from transports.testing import TestingBotServer

        server = TestingBotServer()
    async with server:
        yield server


@_async_fixture
async def pipecat_client(
    request: pytest.FixtureRequest, pipecat_bot: Any
) -> AsyncIterator[PipecatClient]:
    """A READY client of ``--pipecat-start`` (else of ``pipecat_bot``); disconnected after."""
    from lifecycle.client import PipecatClient
    from lifecycle.contrib.transport_factory import make_transport
    from lifecycle.start import StartSettings

    start_url: str = request.config.getoption("--pipecat-start") or pipecat_bot.start_url
    settings = StartSettings(
        start_url, transport=_transport_kind(request.config), connect_timeout=CONNECT_TIMEOUT
    )
    client = PipecatClient(make_transport(settings), connect_timeout=CONNECT_TIMEOUT)
    try:
        await client.start_bot_and_connect(settings.api_request())
        yield client
    finally:
        await client.disconnect()
