"""Interop fixtures: a real Pipecat bot server (tests/interop/bot_server.py) in its own venv.

The bot runs under the interop python: env ``PIPECAT_INTEROP_PYTHON``, default
``<repo>/.venv-interop/bin/python`` (``make`` builds it from tests/interop/requirements.txt).
Without it the interop tests are skipped, except under CI (env ``CI`` set), where that fails.

Every test in this folder is marked ``interop``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_support import HERE, BotServer, interop_python


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
