"""The pytest plugin (entry point ``pytest11``: ``pipecat_lifecycle``): bot and client fixtures.

It does nothing unless a test asks for its fixtures:

* ``pipecat_client``: a :class:`~lifecycle.PipecatClient` already READY when the test starts,
  disconnected after it. It reaches the bot as the command line's ``--start`` options do:
  ``--pipecat-start URL`` (a start endpoint, e.g. ``python bot.py``'s or a deployed bot's),
  ``--pipecat-start-data JSON`` (the start body; with the WebSocket transport it defaults to
  ``{"transport": "websocket"}``), ``--pipecat-header NAME=VALUE`` (repeatable),
  ``--pipecat-transport ws|webrtc`` and ``--pipecat-connect-timeout S``. The same settings
  can live in the ini file (``pipecat_start``, ``pipecat_start_data``, ``pipecat_headers``,
  one per line, ``pipecat_transport``, ``pipecat_connect_timeout``; the command line wins),
  and one test can override them with the marker
  ``@pytest.mark.pipecat_bot(start=..., start_data=..., headers={...}, transport=...,
  connect_timeout=...)`` (``start=None`` there: the local testing bot).
* ``pipecat_bot``: the local testing bot (``transports.testing.TestingBotServer``, or the
  SmallWebRTC one with the ``webrtc`` transport) the client talks to when no start URL is
  set; it is not started at all when one is (a test that asks for it is then skipped).

So the same test file runs against the testing bot in CI and against a real bot from a
laptop (``pytest --pipecat-start http://localhost:7860/start``). The fixtures are
pytest-asyncio fixtures, and an ``async def`` test that uses them (directly or through
its own fixtures) gets ``@pytest.mark.asyncio`` from the plugin: tests run as written in
pytest-asyncio's ``strict`` mode (its default) and in ``auto`` mode alike.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.start import StartSettings

__all__ = ["pipecat_bot", "pipecat_client", "pytest_addoption"]

CONNECT_TIMEOUT: Final = 30.0
_MISSING: Final = 'the pipecat fixtures are async: pip install "pipecat-lifecycle[pytest]"'
_FIXTURES: Final = frozenset({"pipecat_client", "pipecat_bot"})
_MARKER_KEYS: Final = ("start", "start_data", "headers", "transport", "connect_timeout")
_MARKER_HELP: Final = (
    "pipecat_bot(start=None, *, start_data=None, headers=None, transport=None, "
    "connect_timeout=None): how this test's pipecat_client reaches the bot (start=None: the "
    "local testing bot); unset keys come from --pipecat-* / pipecat_* settings"
)

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(func: _F) -> _F:
    """A pytest-asyncio fixture (any mode); without pytest-asyncio a fixture that fails."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - the plugin must not break pytest without it

        def missing() -> None:
            pytest.fail(_MISSING, pytrace=False)

        return cast(_F, pytest.fixture(name=func.__name__)(missing))
    return cast(_F, pytest_asyncio.fixture(func))


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--pipecat-*`` options and their ``pipecat_*`` ini keys."""
    group = parser.getgroup("pipecat", "Pipecat bot tests (pipecat-lifecycle)")
    group.addoption(
        "--pipecat-start",
        metavar="URL",
        default=None,
        help="pipecat_client starts its bot at this start endpoint (POST), e.g. "
        "http://localhost:7860/start (default: the local testing bot)",
    )
    group.addoption(
        "--pipecat-start-data",
        metavar="JSON",
        default=None,
        help='the start request body (default with ws: {"transport": "websocket"})',
    )
    group.addoption(
        "--pipecat-header",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a start request header; repeatable",
    )
    group.addoption(
        "--pipecat-transport",
        choices=("ws", "webrtc"),
        default=None,
        help="ws (WebSocket) or webrtc (SmallWebRTC); default: ws",
    )
    group.addoption(
        "--pipecat-connect-timeout",
        metavar="S",
        default=None,
        help="seconds for the start request, and again for bot-ready (default: 30)",
    )
    parser.addini("pipecat_start", "the start endpoint (as --pipecat-start)", default=None)
    parser.addini("pipecat_start_data", "the start body, JSON (--pipecat-start-data)", default=None)
    parser.addini("pipecat_headers", "start request headers, NAME=VALUE per line", type="linelist")
    parser.addini("pipecat_transport", "ws or webrtc (as --pipecat-transport)", default=None)
    parser.addini("pipecat_connect_timeout", "seconds (--pipecat-connect-timeout)", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; check the session-wide settings once (a bad one: usage error)."""
    config.addinivalue_line("markers", _MARKER_HELP)
    if any(_setting(config, key) not in (None, [], "") for key in _MARKER_KEYS):
        try:
            _base(config)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    """Mark ``async def`` tests that use the pipecat fixtures ``asyncio`` (strict mode)."""
    if (
        inspect.iscoroutinefunction(obj)
        and collector.config.pluginmanager.hasplugin("asyncio")
        and _is_test(collector, obj, name)
        and not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", ()))
        and _uses_fixtures(collector, obj)
    ):
        pytest.mark.asyncio(obj)
    return (yield)


def _is_test(collector: pytest.Module | pytest.Class, obj: object, name: str) -> bool:
    try:
        return bool(collector.istestfunction(obj, name))
    except Exception:  # a collector without it: let pytest decide as usual
        return False


def _uses_fixtures(collector: pytest.Module | pytest.Class, func: Any) -> bool:
    """Whether ``func`` needs a pipecat fixture, directly or through other fixtures."""
    try:
        todo = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    manager = getattr(collector.session, "_fixturemanager", None)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in _FIXTURES:
            return True
        if name in seen or manager is None:
            continue
        seen.add(name)
        try:
            definitions = manager.getfixturedefs(name, collector) or ()
        except Exception:  # pytest internals changed: direct use only
            continue
        for definition in definitions:
            todo.extend(definition.argnames)
    return False


# ----------------------------------------------------------------------------- settings


_OPTIONS: Final = {
    "start": "--pipecat-start",
    "start_data": "--pipecat-start-data",
    "headers": "--pipecat-header",
    "transport": "--pipecat-transport",
    "connect_timeout": "--pipecat-connect-timeout",
}
_INI: Final = {
    "start": "pipecat_start",
    "start_data": "pipecat_start_data",
    "headers": "pipecat_headers",
    "transport": "pipecat_transport",
    "connect_timeout": "pipecat_connect_timeout",
}


def _setting(config: pytest.Config, key: str) -> Any:
    """A setting from the command line, else the ini file (``None``/``[]`` when unset)."""
    value = config.getoption(_OPTIONS[key])
    if value in (None, []):
        value = config.getini(_INI[key])
    return value


def _where(key: str) -> str:
    """A setting's option and ini key, for messages (``"header"`` is ``headers``)."""
    key = "headers" if key == "header" else key
    return f"{_OPTIONS[key]} (ini: {_INI[key]})"


def _base(config: pytest.Config) -> dict[str, Any]:
    """The session-wide settings, checked (``ValueError`` naming the option)."""
    from lifecycle.start import parse_header

    settings: dict[str, Any] = {"start": _setting(config, "start") or None}
    data = _setting(config, "start_data")
    try:
        settings["start_data"] = json.loads(data) if data else None
    except ValueError:
        raise ValueError(f"{_where('start_data')} is not valid JSON") from None
    headers: dict[str, str] = {}
    for item in _setting(config, "headers") or ():
        try:
            name, value = parse_header(item)
        except ValueError as exc:
            raise ValueError(f"{_where('headers')}: {exc}") from None
        headers[name] = value
    settings["headers"] = headers
    transport = _setting(config, "transport") or "ws"
    if transport not in ("ws", "webrtc"):
        raise ValueError(f"{_where('transport')} is ws or webrtc, not {transport!r}")
    settings["transport"] = transport
    timeout = _setting(config, "connect_timeout")
    settings["connect_timeout"] = _seconds(timeout) if timeout else CONNECT_TIMEOUT
    return settings


def _seconds(text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ValueError(f"{_where('connect_timeout')} is a positive number of seconds")
    return value


def _settings(request: pytest.FixtureRequest) -> StartSettings:
    """This test's settings: its ``pipecat_bot`` marker over the session's."""
    from lifecycle.start import StartSettings

    try:
        settings = _base(request.config)
    except ValueError as exc:  # pragma: no cover - pytest_configure refused it already
        pytest.fail(str(exc), pytrace=False)
    marker = request.node.get_closest_marker("pipecat_bot")
    if marker is not None:
        settings.update(_marker_settings(marker))
    try:
        return StartSettings(
            start_url=settings["start"],
            start_data=settings["start_data"],
            headers=settings["headers"],
            transport=settings["transport"],
            connect_timeout=settings["connect_timeout"],
        )
    except (TypeError, ValueError) as exc:
        pytest.fail(f"pipecat_bot marker: {exc}", pytrace=False)


def _marker_settings(marker: pytest.Mark) -> dict[str, Any]:
    unknown = [key for key in marker.kwargs if key not in _MARKER_KEYS]
    for key in unknown:
        close = difflib.get_close_matches(key, _MARKER_KEYS, n=1)
        hint = f"; did you mean {close[0]}=?" if close else f"; it takes {', '.join(_MARKER_KEYS)}"
        pytest.fail(f"pipecat_bot marker: unknown key {key}={hint}", pytrace=False)
    if len(marker.args) > 1:
        pytest.fail("pipecat_bot marker: one positional argument (the start URL)", pytrace=False)
    settings = dict(marker.kwargs)
    if marker.args:
        settings["start"] = marker.args[0]
    headers = settings.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        pytest.fail("pipecat_bot marker: headers={'Name': 'value', ...}", pytrace=False)
    return settings


# ----------------------------------------------------------------------------- fixtures


@_async_fixture
async def _pipecat_local_bot(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The local testing bot, started only when this test's settings name no start URL."""
    settings = _settings(request)
    if settings.start_url is not None:
        yield None
        return
    from lifecycle.contrib.transport_factory import testing_bot

    async with testing_bot(settings.transport) as server:
        yield server


@pytest.fixture
def pipecat_bot(_pipecat_local_bot: Any) -> Any:
    """The started local testing bot (WebSocket, or SmallWebRTC), stopped after the test.

    With a start URL set (``--pipecat-start``, ``pipecat_start`` or the marker) there is no
    local bot: a test that asks for it is skipped.
    """
    if _pipecat_local_bot is None:
        pytest.skip("pipecat_bot is the local testing bot, and this test reaches a start URL")
    return _pipecat_local_bot


@_async_fixture
async def pipecat_client(
    request: pytest.FixtureRequest, _pipecat_local_bot: Any
) -> AsyncIterator[PipecatClient]:
    """A READY client of the configured bot (else of the local testing bot); disconnected
    after the test. A bot it cannot reach fails the test with the reason and the setting."""
    from lifecycle.client import PipecatClient
    from lifecycle.contrib.transport_factory import make_transport
    from lifecycle.errors import PipecatClientError
    from lifecycle.hints import startup_hint

    settings = _settings(request)
    url = settings.start_url or _pipecat_local_bot.start_url
    client = PipecatClient(make_transport(settings), connect_timeout=settings.connect_timeout)
    try:
        try:
            await client.start_bot_and_connect(settings.api_request(url))
        except PipecatClientError as exc:
            hint = startup_hint(exc, _where)
            pytest.fail(
                f"pipecat_client could not reach the bot over {settings.transport}: "
                f"{type(exc).__name__}: {exc}" + (f" ({hint})" if hint else ""),
                pytrace=False,
            )
        yield client
    finally:
        await client.disconnect()
