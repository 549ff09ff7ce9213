"""Interop fixtures: a real Pipecat bot server (tests/interop/bot_server.py) in its own venv.

The bot runs under the interop python: env ``PIPECAT_INTEROP_PYTHON``, default
``<repo>/.venv-interop/bin/python`` (``make`` builds it from tests/interop/requirements.txt).
Without it the interop tests are skipped, except under CI (env ``CI`` set), where that fails.

Every test in this folder is marked ``interop``. Fixtures: ``bot_server`` (one bot server for
the whole run) and ``own_bot``/``control`` (a bot process of the requesting module alone, which
the fault matrices kill and stop). Their helpers are in tests/support/.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_matrix_interop import BotControl
from tests.support.processes import BotServer, interop_python

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.interop)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: runs against a real Pipecat bot (interop venv)")


@pytest.fixture(scope="session")
def interop_python_path() -> Path:
    return interop_python()


@pytest.fixture(scope="session")
def bot_server(interop_python_path: Path) -> Iterator[BotServer]:
    log_dir = Path(tempfile.mkdtemp(prefix="pipecat-interop-"))
    server = BotServer(interop_python_path, log_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        sys.stderr.write(f"\nbot server logs: {log_dir}\n")


@pytest.fixture(scope="module")
def own_bot(interop_python_path: Path) -> Iterator[BotServer]:
    """A bot server of the requesting module alone (the fault matrices kill and stop it)."""
    server = BotServer(interop_python_path, Path(tempfile.mkdtemp(prefix="pipecat-fault-")))
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
def control(own_bot: BotServer) -> Iterator[BotControl]:
    own_bot.ensure_running()
    ctl = BotControl(own_bot)
    try:
        yield ctl
    finally:
        ctl.sigcont()
        own_bot.ensure_running()
