"""The three start paths a newcomer tries first, against Pipecat's development runner.

``python bot.py`` (tests/interop/runner_bot.py, ``pipecat.runner`` 1.14) serves WebSocket and
SmallWebRTC from one ``/start``; with no body it answers for WebRTC. Each path is run as a
user runs it, as a process, with nothing but the start URL and ``--transport``:

* ``pytest --pipecat-start URL [--pipecat-transport T]`` in a fresh project (no ini file:
  pytest-asyncio's default strict mode, the test unmarked);
* ``pipecat-lifecycle test FILE --start URL [--transport T]``;
* ``pipecat-lifecycle load --start URL [--transport T] --say TEXT``.

This host has only loopback, which aioice does not offer: the processes get a
``sitecustomize`` (the harness, never the library) that makes it offer 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.interop_bots import BotProcess
from tests.support.toolkit import CLI_TIMEOUT_S, REPO, plugin_args

TRANSPORTS = ["ws", "webrtc"]

LOOPBACK_ICE = """
try:
    import aioice.ice
except ImportError:
    pass
else:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
"""

SCENARIO = """
name: runner
scenarios:
  - name: one_turn
    turns:
      - user: "hello there"
        expect:
          - event: llm_started
            within_ms: 10000
          - event: response
            text_contains: "hello there"
            within_ms: 10000
"""

PYTEST_FILE = """
from lifecycle import PipecatClient
from lifecycle.testing import Conversation


async def test_the_runner_bot_answers(pipecat_client: PipecatClient) -> None:
    async with Conversation(pipecat_client) as conv:
        await conv.say("hello there")
        await conv.expect("bot_started_speaking", within=10)
        await conv.expect("on_bot_output", text_contains="hello there", within=10)
"""


@pytest.fixture(scope="module")
def runner(interop_python_path: Path) -> Iterator[BotProcess]:
    """One development runner, as ``python bot.py`` starts it (``--host localhost``)."""
    log_dir = Path(tempfile.mkdtemp(prefix="pipecat-start-paths-"))
    bot = BotProcess(
        interop_python_path,
        "runner_bot.py",
        ["--host", "localhost", "--port", "{port}"],
        log_dir,
        host="localhost",
        name="runner",
    )
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the loopback-ICE ``sitecustomize`` put first on the processes' path."""
    folder = tmp_path_factory.mktemp("harness")
    (folder / "sitecustomize.py").write_text(LOOPBACK_ICE)
    return folder


def run(harness: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(harness), str(REPO), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pytest_pipecat_start(
    runner: BotProcess, harness: Path, tmp_path: Path, transport: str
) -> None:
    (tmp_path / "test_bot.py").write_text(PYTEST_FILE)
    done = run(
        harness, tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args(),
        "--pipecat-start", f"{runner.base_url}/start", "--pipecat-transport", transport,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + runner.tail()
    assert "1 passed" in done.stdout


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_test_start(runner: BotProcess, harness: Path, tmp_path: Path, transport: str) -> None:
    scenario = tmp_path / "runner.yaml"
    scenario.write_text(SCENARIO)
    done = run(
        harness, tmp_path, "-m", "lifecycle", "test", str(scenario),
        "--start", f"{runner.base_url}/start", "--transport", transport,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + runner.tail()
    assert "1 of 1 scenarios passed" in done.stdout


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_load_start(runner: BotProcess, harness: Path, tmp_path: Path, transport: str) -> None:
    done = run(
        harness, tmp_path, "-m", "lifecycle", "load", "--start", f"{runner.base_url}/start",
        "--transport", transport, "--sessions", "2", "--concurrency", "2", "--say", "hello",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + runner.tail()
    summary = json.loads(done.stdout)
    assert summary["ok"] == 2 and summary["failures"] == [], summary
    assert summary["latency_ms"]["first_output"]["count"] == 2
