"""API.md §6: where the library's lines go without ``logger=``, decided for every line.

Unconfigured structlog (its built-in defaults print every line, debug included, to stdout):
the stdlib logger ``lifecycle``, as ``key=value`` text. Configured by the application, or
inside ``structlog.testing.capture_logs``: structlog, every field as before. The switch
happens when a line is logged: ``structlog.is_configured()`` stays true once capture_logs
has run, so each order is tested, within one session too.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from lifecycle import PipecatClient
from lifecycle.logs import get_logger, structlog_configured
from transports.loopback import LoopbackBot, LoopbackTransport

REPO = Path(__file__).resolve().parent.parent
WAIT = 10.0


@pytest.fixture(autouse=True)
def structlog_defaults() -> Iterator[None]:
    """Every test starts and ends with structlog's built-in defaults (unconfigured)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class Session:
    """A loopback client and bot; ``junk()`` makes the client log a warning and waits for it."""

    def __init__(self, **client_options: Any) -> None:
        self.bot = LoopbackBot()
        self._seen = asyncio.Event()
        self.client = PipecatClient(
            LoopbackTransport(self.bot),
            callbacks={"on_server_message": lambda _data: self._seen.set()},
            **client_options,
        )

    async def connect(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.client.connect()

    async def junk(self) -> None:
        """An undecodable frame (warning: inbound message dropped), then a marker message."""
        self._seen.clear()
        async with asyncio.timeout(WAIT):
            await self.bot.send_raw("not json")
            await self.bot.send_server_message({"marker": True})
            await self._seen.wait()  # delivered in order: the junk was handled before

    async def disconnect(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.client.disconnect()


async def whole_session(**client_options: Any) -> None:
    session = Session(**client_options)
    await session.connect()
    await session.junk()
    await session.disconnect()


def stdlib_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lifecycle"]


def json_configuration() -> io.StringIO:
    """The application configures structlog: JSON lines into the returned buffer."""
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    return out


# ------------------------------------------------------------------ unconfigured structlog


async def test_unconfigured_lines_go_to_the_stdlib_logger_as_key_value_text(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    await whole_session()
    assert capsys.readouterr().out == ""  # structlog's defaults would print here
    lines = stdlib_lines(caplog)
    transitions = [line for line in lines if line.startswith("event='transition'")]
    assert len(transitions) >= 4
    assert "session_id=1" in transitions[0] and "trigger='connect'" in transitions[0]
    assert "source='idle'" in transitions[0] and "dest='connecting'" in transitions[0]
    warning = next(r for r in caplog.records if "inbound message dropped" in r.getMessage())
    assert warning.levelno == logging.WARNING and "session_id=1" in warning.getMessage()
    assert warning.name == "lifecycle" and warning.pathname.endswith("client.py")


def test_stdlib_defaults_show_only_warnings_on_stderr_and_nothing_on_stdout() -> None:
    script = """
import asyncio
from lifecycle import PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport

async def main():
    bot, seen = LoopbackBot(), asyncio.Event()
    callbacks = {"on_server_message": lambda _data: seen.set()}
    client = PipecatClient(LoopbackTransport(bot), callbacks=callbacks)
    async with asyncio.timeout(10):
        await client.connect()
        await bot.send_raw("not json")
        await bot.send_server_message({})
        await seen.wait()
        await client.disconnect()

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "inbound message dropped" in done.stderr and "session_id=1" in done.stderr
    assert "transition" not in done.stderr  # INFO and DEBUG stay quiet by default


async def test_unconfigured_stdlib_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    log = get_logger().bind(session_id=7, api_key="k-secret")
    log.warning("start failed", url="http://h/start?token=t-secret", headers={"Cookie": "c"})
    (line,) = stdlib_lines(caplog)
    assert "secret" not in line and "'Cookie': '***'" in line and "session_id=7" in line


# --------------------------------------------------------------- configured and captured


async def test_configured_structlog_gets_every_line_and_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    out = json_configuration()
    await whole_session()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    transition = next(e for e in events if e["event"] == "transition")
    assert transition["session_id"] == 1 and transition["trigger"] == "connect"
    assert {"source", "dest", "reason", "level"} <= transition.keys()
    assert any(e["event"] == "inbound message dropped" for e in events)
    assert stdlib_lines(caplog) == []


async def test_capture_logs_then_unconfigured_again(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    with structlog.testing.capture_logs() as captured:
        await whole_session()
    assert any(e["event"] == "inbound message dropped" for e in captured)
    assert stdlib_lines(caplog) == []
    assert structlog.is_configured()  # yet its configuration is the built-in default again
    kept = len(captured)
    await whole_session()
    assert len(captured) == kept
    assert any("inbound message dropped" in line for line in stdlib_lines(caplog))
    assert capsys.readouterr().out == ""


async def test_unconfigured_then_capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    await whole_session()
    before = len(stdlib_lines(caplog))
    assert before
    with structlog.testing.capture_logs() as captured:
        await whole_session()
    assert len(stdlib_lines(caplog)) == before
    assert any(e["event"] == "transition" and e["session_id"] == 1 for e in captured)


async def test_configure_then_reset_defaults(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    out = json_configuration()
    await whole_session()
    written = out.getvalue()
    assert "inbound message dropped" in written and stdlib_lines(caplog) == []
    structlog.reset_defaults()
    await whole_session()
    assert out.getvalue() == written
    assert any("inbound message dropped" in line for line in stdlib_lines(caplog))


async def test_unconfigured_then_configure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    await whole_session()
    before = len(stdlib_lines(caplog))
    out = json_configuration()
    await whole_session()
    assert len(stdlib_lines(caplog)) == before and "inbound message dropped" in out.getvalue()


async def test_switch_happens_per_line_within_one_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    session = Session()
    await session.connect()  # the session's logger is bound now, unconfigured
    with structlog.testing.capture_logs() as captured:
        await session.junk()
    assert [e["session_id"] for e in captured if e["event"] == "inbound message dropped"] == [1]
    await session.junk()  # capture_logs is over: the same session logger goes to stdlib
    await session.disconnect()
    dropped = [line for line in stdlib_lines(caplog) if "inbound message dropped" in line]
    assert len(dropped) == 1 and "session_id=1" in dropped[0]


@pytest.mark.parametrize("configured", [False, True])
async def test_an_injected_logger_gets_every_line_whatever_the_global_state(
    configured: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lifecycle")
    global_out = json_configuration() if configured else io.StringIO()
    events: list[dict[str, Any]] = []

    def keep(_logger: Any, _name: str, event: Any) -> str:
        events.append(dict(event))
        return ""

    injected = structlog.wrap_logger(structlog.PrintLogger(io.StringIO()), processors=[keep])
    await whole_session(logger=injected)
    assert any(e["event"] == "transition" and e["session_id"] == 1 for e in events)
    assert any(e["event"] == "inbound message dropped" for e in events)
    assert stdlib_lines(caplog) == [] and global_out.getvalue() == ""


def test_structlog_configured_tells_the_application_s_configuration_from_the_defaults() -> None:
    assert not structlog_configured()
    with structlog.testing.capture_logs():
        assert structlog_configured()
    assert structlog.is_configured() and not structlog_configured()
    json_configuration()
    assert structlog_configured()
    structlog.reset_defaults()
    assert not structlog_configured()
