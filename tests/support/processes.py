"""Processes of the interop tests and benchmarks: the real Pipecat bot server, the protobuf check.

Both run under the interop python (Pipecat 1.14 in its own venv, :func:`interop_python`).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
INTEROP = REPO / "tests" / "interop"
BOT_SERVER = INTEROP / "bot_server.py"
PROTOBUF_CHECK = INTEROP / "protobuf_check.py"
READY_PREFIX = "BOT-SERVER-READY "
READY_TIMEOUT_S = 60.0
TERM_GRACE_S = 5.0
SDIST_EVALS = REPO / ".venv-interop" / "sdist" / "pipecat_ai-1.14.0" / "evals"


def terminate(proc: subprocess.Popen[Any]) -> int:
    """SIGTERM a running process, SIGKILL it after ``TERM_GRACE_S``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TERM_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def interop_python() -> Path:
    """The interop venv's python, or skip (fail under CI) when it is missing."""
    configured = os.environ.get("PIPECAT_INTEROP_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-interop" / "bin" / "python"
    if not path.exists():
        msg = (
            f"interop python {path} not found: build it with `python -m venv .venv-interop && "
            ".venv-interop/bin/pip install -r tests/interop/requirements.txt` or set "
            "PIPECAT_INTEROP_PYTHON"
        )
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return path


def pipecat_evals_dir() -> Path:
    """Pipecat's published eval files (``PIPECAT_EVALS_DIR``, else the sdist ``make`` fetches),
    or skip (fail under CI) when they are missing."""
    configured = os.environ.get("PIPECAT_EVALS_DIR")
    path = Path(configured) if configured else SDIST_EVALS
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"Pipecat's eval files are missing ({path}): make builds them")
        pytest.skip(f"Pipecat's eval files are missing ({path}): run make interop")
    return path


class BotServer:
    """A running bot_server.py subprocess.

    ``base_url`` is ``http://127.0.0.1:N``. The port is chosen by the server on the first start
    (``--port 0``) and kept across ``restart()``, so URLs a test saved stay valid.
    """

    def __init__(self, python: Path, log_dir: Path) -> None:
        self.python = python
        self.log_dir = log_dir
        self.port = 0
        self.base_url = ""
        self.process: subprocess.Popen[str] | None = None
        self.log_path = log_dir / "bot_server.log"
        self._starts = 0
        self._log: IO[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "bot server not started"
        return self.process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self._starts += 1
        # stdout is a pipe only until the READY line; stderr (pipecat's logs) goes to a file.
        self._log = open(self.log_dir / f"bot_server.{self._starts}.stderr.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(self.python), str(BOT_SERVER), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=str(REPO),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.base_url = self._wait_ready()
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def _wait_ready(self) -> str:
        proc = self.process
        assert proc is not None and proc.stdout is not None
        # Read stdout in a thread so the wait is bounded even if the server prints nothing.
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = proc.stdout

        def pump() -> None:
            # After READY, keep draining stdout into the log so the pipe never fills.
            with open(self.log_dir / f"bot_server.{self._starts}.stdout.log", "w") as out:
                for line in stdout:
                    out.write(line)
                    out.flush()
                    lines.put(line)
            lines.put(None)

        self._pump = threading.Thread(target=pump, name="bot-server-stdout", daemon=True)
        self._pump.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError(f"bot server not ready in {READY_TIMEOUT_S}s; {self._tail()}")
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = proc.wait()
                raise RuntimeError(f"bot server exited with {code} before ready; {self._tail()}")
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].strip()

    def _tail(self) -> str:
        path = self.log_dir / f"bot_server.{self._starts}.stderr.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "no log"
        return f"log {path}:\n" + "\n".join(text.splitlines()[-30:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        terminate(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.join(2.0)  # it ends at EOF once the process is gone
        if proc.stdout is not None and (pump is None or not pump.is_alive()):
            proc.stdout.close()  # no ResourceWarning for the pipe
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the server (a crash), without restarting it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Stop the server if it still runs (SIGTERM/SIGKILL) and start it on the same port."""
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        """Restart the server if a test killed it."""
        if self.process is None or self.process.poll() is not None:
            self.restart()


def protobuf_check(python: Path, *args: str) -> str:
    """Run protobuf_check.py in the interop venv and return its stdout (stripped)."""
    out = subprocess.run(
        [str(python), str(PROTOBUF_CHECK), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()
