"""Real Pipecat bots for the interop tests: a bot script run as a process, and an event log.

A :class:`BotProcess` runs a script of ``tests/interop`` (``voice_bot.py``, ``runner_bot.py``)
under the interop python on a free loopback port and is ready once its HTTP port answers.
:class:`EventLog` records every event a client fires, in callback order, and waits for them
without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from lifecycle import EVENT_NAMES, PipecatClient
from tests.support.processes import terminate

REPO = Path(__file__).resolve().parent.parent.parent
INTEROP = REPO / "tests" / "interop"
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BotProcess:
    """A bot script of ``tests/interop`` running in the interop venv.

    ``args`` may contain ``{port}``, replaced by the chosen port. The process is ready once an
    HTTP request to ``http://{host}:{port}/`` gets any answer. Its output goes to
    ``log_dir/<name>.log``.
    """

    def __init__(
        self,
        python: Path,
        script: str,
        args: Sequence[str],
        log_dir: Path,
        *,
        host: str = "127.0.0.1",
        name: str | None = None,
    ) -> None:
        self.python = python
        self.script = INTEROP / script
        self.host = host
        self.port = free_port()
        self.args = [a.format(port=self.port) for a in args]
        self.name = name or self.script.stem
        self.log_path = log_dir / f"{self.name}.log"
        self.base_url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0
        self._started = 0.0
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until its HTTP port answers."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (several bots start at once this way)."""
        self._started = time.monotonic()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(self.python), str(self.script), *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(INTEROP),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self) -> None:
        """Wait until the launched process's HTTP port answers (RuntimeError if it dies)."""
        assert self.process is not None, "launch() first"
        deadline = self._started + READY_TIMEOUT_S
        with httpx.Client(timeout=1.0) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}; {self.tail()}"
                    )
                try:
                    http.get(f"{self.base_url}/")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"{self.name} not ready in {READY_TIMEOUT_S}s; {self.tail()}"
                        ) from None
                    time.sleep(0.05)  # polling a port that has nothing to wait on
        self.start_seconds = time.monotonic() - self._started

    def tail(self, lines: int = 30) -> str:
        """The last lines of the process's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "no log"
        return f"log {self.log_path}:\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        terminate(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode


@contextlib.contextmanager
def running_voice_bot(
    python: Path, prefix: str, script: str = "voice_bot.py"
) -> Iterator[BotProcess]:
    """tests/interop/``script`` (the voice bot, or one built on it) started on a free port
    (logs in a new temp dir), then stopped."""
    bot = BotProcess(python, script, ["--port", "{port}"], Path(tempfile.mkdtemp(prefix=prefix)))
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()


class EventLog:
    """Every event a client fires, as ``(name, argument)`` in the order callbacks saw them."""

    def __init__(self, client: PipecatClient) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        for name in sorted(EVENT_NAMES):
            client.add_event_handler(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events.append((name, args[0] if args else None))
            self._changed.set()

        return record

    def of(self, name: str) -> list[Any]:
        """The arguments of every ``name`` event so far."""
        return [arg for n, arg in self.events if n == name]

    def index(self, name: str, predicate: Callable[[Any], bool] = lambda _: True) -> int:
        """Position of the first ``name`` event whose argument matches; ValueError if none."""
        for i, (n, arg) in enumerate(self.events):
            if n == name and predicate(arg):
                return i
        raise ValueError(f"no {name} event matched; seen: {self.names()}")

    def names(self) -> list[str]:
        """Event names so far, without transitions and audio frames."""
        skip = {"on_transition", "on_transport_state_changed", "on_bot_audio"}
        return [n for n, _ in self.events if n not in skip]

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        *,
        after: int = 0,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """Wait for a ``name`` event at position >= ``after`` that matches; (index, argument)."""

        async def waiter() -> tuple[int, Any]:
            while True:
                for i in range(after, len(self.events)):
                    n, arg = self.events[i]
                    if n == name and predicate(arg):
                        return i, arg
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {name} within {timeout}s; seen: {self.names()[after:]}"
            ) from None


def rtvi_types_received(client: PipecatClient) -> list[str]:
    """The RTVI types the client received in its trace's sessions, in order of first arrival."""
    seen: dict[str, None] = {}
    for row in client.trace.to_dicts():
        if row["kind"] == "message-in" and row["detail"]:
            seen.setdefault(str(row["detail"]), None)
    return list(seen)
