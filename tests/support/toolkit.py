"""Helpers for the testing-toolkit tests: WAV files, scenario files, loopback ICE, the CLI, a
READY WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from lifecycle import PipecatClient
from tests.support.recorder import within
from transports.websocket import WebSocketTransport

REPO = Path(__file__).resolve().parent.parent.parent
CLI_TIMEOUT_S = 120.0


@contextlib.asynccontextmanager
async def ready_client(start_url: str, connect_timeout: float) -> AsyncIterator[PipecatClient]:
    """A WebSocket client started and connected to ``start_url`` (READY), disconnected after."""
    client = PipecatClient(WebSocketTransport(), connect_timeout=connect_timeout)
    await within(client.start_bot_and_connect(start_url))
    try:
        yield client
    finally:
        await within(client.disconnect())


def write_tone(
    path: Path, *, rate: int, channels: int = 1, seconds: float = 1.0, level: float = 0.3
) -> Path:
    """A 440 Hz tone (every channel alike) as a 16-bit WAV file; returns ``path``."""
    t = np.arange(round(rate * seconds)) / rate
    tone = (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(path, np.repeat(tone[:, None], channels, axis=1), rate, subtype="PCM_16")
    return path


def write_scenario(directory: Path, name: str, text: str) -> Path:
    """``text`` (dedented) as ``directory/name``; returns the path."""
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def patch_loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice gathers no loopback address by default; this host has only loopback (tests only)."""
    aioice_ice = pytest.importorskip("aioice.ice")

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice_ice, "get_host_addresses", host_addresses)


def plugin_args() -> list[str]:
    """``-p`` for the pytest plugin unless its ``pytest11`` entry point is installed."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "pipecat_lifecycle" in names else ["-p", "lifecycle.testing.pytest_plugin"]


def cli_env() -> dict[str, str]:
    """The environment for ``python -m lifecycle``: this tree first on the path."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def cli_command(*args: str) -> list[str]:
    """``python -m lifecycle ARGS``."""
    return [sys.executable, "-m", "lifecycle", *args]


def run_cli(*args: str, cwd: Path = REPO) -> Any:
    """Run ``python -m lifecycle ARGS`` (bounded); the CompletedProcess."""
    return subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def free_port_url() -> str:
    """A start URL on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/start"


def readme_testing_blocks(lang: str) -> list[str]:
    """The ``lang`` code blocks of the README's "Testing your bot" section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your bot\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


async def let_webrtc_bot_close(server: Any, timeout: float = 5.0) -> None:
    """Wait (bounded) for the WebRTC testing bot's own tasks, its peers' close among them.

    Stopping the server while aiortc's ``close()`` of a peer still runs interrupts it and
    leaves an unretrieved InvalidStateError (a testing-bot issue, reported), which on
    CPython 3.11.7 can surface later as a SystemError from ``ast.parse``.
    """
    tasks = list(server._tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
