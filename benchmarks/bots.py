"""Testing bots in subprocesses, so their CPU is not the client's: one, or a farm of several.

A farm spreads the sessions of a many-session benchmark over several bot processes (the
client assigns them round-robin), so the bot's event loop is not what is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A testing bot in a subprocess: prints its start URL, serves until stdin closes. A reply is
# ``tokens`` LLM tokens and ``speech_ms`` of audio (at 48 kHz).
_BOT = """
import asyncio, sys
kind, tokens, speech_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from transports.testing.dialogue import Dialogue
dialogue = Dialogue(
    reply=(lambda text: "tok " * tokens) if tokens else (lambda text: f"You said: {text}"),
    speech_ms=speech_ms,
    speech_rate=48000,
)
if kind == "webrtc":
    import aioice.ice
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
    from transports.testing_webrtc import TestingWebRTCBotServer as Server
else:
    from transports.testing import TestingBotServer as Server

async def main():
    async with Server(dialogue=dialogue) as server:
        server.received_audio = _Dropped()
        print(server.start_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

class _Dropped(list):
    # A long benchmark must not keep every frame the clients sent.
    def append(self, item):
        pass

asyncio.run(main())
"""


class BotProcess:
    """A testing bot subprocess (``ws`` or ``webrtc``), as a context manager."""

    def __init__(self, kind: str, tokens: int = 0, speech_ms: int = 0) -> None:
        self.args = [sys.executable, "-c", _BOT, kind, str(tokens), str(speech_ms)]
        self.proc: subprocess.Popen[str] | None = None
        self.start_url = ""

    def __enter__(self) -> BotProcess:
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(REPO),
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert self.proc.stdout is not None
        self.start_url = self.proc.stdout.readline().strip()
        if not self.start_url:
            self.__exit__()
            raise RuntimeError("testing bot subprocess did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class BotFarm:
    """``processes`` testing bot subprocesses; :attr:`start_urls` lists their start URLs."""

    def __init__(self, kind: str, processes: int, tokens: int = 0, speech_ms: int = 0) -> None:
        self.bots = [BotProcess(kind, tokens, speech_ms) for _ in range(processes)]
        self.start_urls: list[str] = []

    def __enter__(self) -> BotFarm:
        try:
            for bot in self.bots:
                self.start_urls.append(bot.__enter__().start_url)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for bot in self.bots:
            if bot.proc is not None:
                bot.__exit__()

    def url(self, index: int) -> str:
        """The start URL session ``index`` uses (round-robin)."""
        return self.start_urls[index % len(self.start_urls)]
