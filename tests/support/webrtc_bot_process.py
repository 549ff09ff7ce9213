"""A TestingWebRTCBotServer in a process of its own, so that a test can SIGKILL it.

``python -m tests.support.webrtc_bot_process`` prints ``READY <start url>`` once it listens
and then serves until it is killed. Loopback-only ICE is set up here, in the bot process (this
machine has nothing but loopback); no library code is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

READY = "READY "
REPO = Path(__file__).resolve().parents[2]


@dataclass
class BotProcess:
    """The running bot: its start URL, and :meth:`kill` (SIGKILL, a crash)."""

    process: asyncio.subprocess.Process
    start_url: str

    def kill(self) -> None:
        """SIGKILL the bot: no peerLeft, no close, nothing more on the wire."""
        if self.process.returncode is None:
            self.process.kill()


@contextlib.asynccontextmanager
async def webrtc_bot_process(timeout: float = 30.0) -> AsyncIterator[BotProcess]:
    """Start the bot process, wait (bounded) for its READY line; kill it on exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.webrtc_bot_process",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=str(REPO),
        env=env,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()
        assert line.startswith(READY), f"bot process said {line!r}"
        yield BotProcess(process, line[len(READY) :].strip())
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), timeout)


async def _serve() -> None:
    import aioice.ice
    import structlog

    # stdout carries the READY line only: nobody reads it afterwards, so logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback

    from transports.testing_webrtc import TestingWebRTCBotServer

    async with TestingWebRTCBotServer() as server:
        print(READY + server.start_url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve())
