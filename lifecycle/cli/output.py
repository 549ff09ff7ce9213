"""How the commands print: one line per event, as text or as JSON, and a startup spinner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

from lifecycle.cli.exits import EXIT_STARTUP
from lifecycle.errors import StartBotError
from lifecycle.hints import startup_hint
from lifecycle.machine import TransitionEvent
from lifecycle.printable import json_line, printable
from lifecycle.table import WAITING_STATES

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient

_SPINNER: Final = "|/-\\"
_COMPACT_LIMIT: Final = 500


class Output:
    """Prints events as text lines or JSON lines, with ms since the command started."""

    def __init__(self, *, json_mode: bool, t0: float, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.t0 = t0
        self.stream = stream if stream is not None else sys.stdout
        self.progress: Progress | None = None

    def ms(self, at: float | None = None) -> float:
        """Milliseconds from the command's start to ``at`` (default: now)."""
        return ((time.monotonic() if at is None else at) - self.t0) * 1000.0

    def emit(self, event: str, text: str, /, *, at: float | None = None, **fields: Any) -> None:
        """Print one event: ``text`` in text mode, ``{"event", "ms", **fields}`` in JSON mode."""
        if self.progress is not None:
            self.progress.clear()
        ms = round(self.ms(at), 1)
        if self.json_mode:
            line = json_line({"event": event, "ms": ms, **fields})
        else:
            line = f"{ms:9.1f} ms  {printable(text)}"  # bot text: no raw escapes
        self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A plain text line (text mode only: JSON mode prints events only)."""
        if self.json_mode:
            return
        if self.progress is not None:
            self.progress.clear()
        self.stream.write(printable(text) + "\n")
        self.stream.flush()

    def transition(self, event: TransitionEvent) -> None:
        """One state change."""
        reason = f"  ({event.reason})" if event.reason else ""
        self.emit(
            "transition",
            f"{event.source.value:>14} -> {event.dest.value:<14} [{event.trigger}]{reason}",
            at=event.at,
            state=event.dest.value,
            source=event.source.value,
            trigger=event.trigger,
            reason=event.reason,
            session_id=event.session_id,
        )


class Progress:
    """A spinner on stderr while the session is starting; only on a terminal."""

    def __init__(self, client: PipecatClient) -> None:
        self._client = client
        self._task: asyncio.Task[None] | None = None
        self._shown = False

    @staticmethod
    def wanted() -> bool:
        """Progress shows only when stdout is a terminal (never when piped)."""
        return sys.stdout.isatty() and sys.stderr.isatty()

    def start(self) -> None:
        """Start spinning (from inside the event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._spin())

    async def stop(self) -> None:
        """Stop and erase the spinner."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.clear()

    def clear(self) -> None:
        """Erase the spinner line (before other output)."""
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False

    async def _spin(self) -> None:
        frame = 0
        while True:
            state = self._client.state
            if state in WAITING_STATES:
                sys.stderr.write(f"\r{_SPINNER[frame % len(_SPINNER)]} {state.value}...\033[K")
                sys.stderr.flush()
                self._shown = True
                frame += 1
            await asyncio.sleep(0.1)


def compact(value: Any) -> str:
    """One-line JSON of ``value``, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= _COMPACT_LIMIT else text[: _COMPACT_LIMIT - 1] + "…"


def elapsed_ms(started: float) -> float:
    """Milliseconds since the monotonic time ``started``, rounded for printing."""
    return round((time.monotonic() - started) * 1000.0, 2)


def startup_failed(out: Output, exc: BaseException) -> int:
    """Print why the session never became ready; returns the startup exit code."""
    kind = type(exc).__name__
    fields: dict[str, Any] = {"error": kind, "message": str(exc)}
    if isinstance(exc, StartBotError):
        fields["status"] = exc.status
    hint = startup_hint(exc)
    if hint is not None:
        fields["hint"] = hint
    out.emit(
        "startup-error",
        f"startup failed: {kind}: {exc}" + (f"\n  hint: {hint}" if hint else ""),
        **fields,
    )
    return EXIT_STARTUP


def unreachable(exc: BaseException) -> str:
    """``could not start or reach the bot: <class>: <message> (<hint>)``."""
    hint = startup_hint(exc)
    return f"could not start or reach the bot: {type(exc).__name__}: {exc}" + (
        f" ({hint})" if hint else ""
    )
