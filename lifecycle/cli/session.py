"""The interactive part of ``connect``: stdin lines become messages, Ctrl-C a disconnect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Final

from lifecycle.cli.arguments import loads_json
from lifecycle.cli.output import Output, compact, elapsed_ms
from lifecycle.cli.signals import FirstSigint
from lifecycle.cli.watch import Watch
from lifecycle.errors import MessageError, PipecatClientError, RequestTimeoutError
from lifecycle.states import State

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient

_READ_CHUNK: Final = 65536
_END_WAIT: Final = 15.0
ANSWER_TIMEOUT: Final = 30.0
"""Default seconds a piped ``connect`` waits for the bot's answer (``--answer-timeout``)."""


class StdinLines:
    """Lines of stdin delivered to the event loop by a daemon thread (``None`` at EOF).

    The thread reads the file descriptor directly (no buffered object, whose lock could
    block interpreter shutdown) and works for terminals, pipes and regular files alike.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        thread = threading.Thread(target=self._read, name="pipecat-lifecycle-stdin", daemon=True)
        thread.start()

    async def get(self) -> str | None:
        """The next line without its newline, or ``None`` at end of input."""
        return await self._queue.get()

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    def _read(self) -> None:
        buffer = b""
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            self._put(None)
            return
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                if buffer:
                    self._put(buffer.decode("utf-8", "replace"))
                self._put(None)
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                self._put(raw.decode("utf-8", "replace").rstrip("\r"))


async def first(awaitable: Awaitable[Any], event: asyncio.Event) -> tuple[bool, Any]:
    """Await ``awaitable`` unless ``event`` is set first.

    Returns ``(True, result)``, or ``(False, None)`` when the event won.
    """
    task = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False, None


async def interact(
    client: PipecatClient,
    watch: Watch,
    out: Output,
    *,
    say: Sequence[str] = (),
    answer_timeout: float = ANSWER_TIMEOUT,
) -> None:
    """Send ``say``'s texts, then read stdin lines and act on them, until the session ends
    or the user leaves.

    Not on a terminal (a pipe, a file), each text waits (at most ``answer_timeout`` s) for
    the bot's answer to the one before, and end of input waits for the last answer before
    it disconnects.
    """
    piped = not _is_terminal()
    lines = StdinLines(asyncio.get_running_loop())
    out.say("ready: type text to send, /msg TYPE JSON for a request, /quit to leave")
    queued = list(say)
    while not watch.ended.is_set():
        if queued:
            line: str | None = queued.pop(0)
        else:
            got, line = await first(lines.get(), watch.ended)
            if not got:
                return
        if line is None:
            if (piped or say) and watch.answer.sent_any:
                await _await_answer(watch, out, answer_timeout)
            if watch.ended.is_set():
                return
            out.emit("input-closed", "end of input: disconnecting")
            await client.disconnect()
            return
        line = line.strip()
        if not line:
            continue
        if line == "/quit":
            out.emit("quit", "disconnecting")
            await client.disconnect()
            return
        if line == "/msg" or line.startswith("/msg "):
            await request(client, out, line)
        else:
            if piped and watch.answer.sent_any:
                await _await_answer(watch, out, answer_timeout)
            if await _send_text(client, out, line):
                watch.answer.sent()
        if client.state is not State.READY:
            # The session is ending (the bot left, a fatal error): let its events print first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.ended.wait(), _END_WAIT)
            return


async def _await_answer(watch: Watch, out: Output, limit: float) -> None:
    if not await watch.answer.settled(limit, watch.ended) and not watch.ended.is_set():
        out.emit(
            "no-answer",
            f"the bot did not finish answering within {limit:g} s (--answer-timeout)",
            timeout_s=limit,
        )


def _is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


async def _send_text(client: PipecatClient, out: Output, line: str) -> bool:
    try:
        await client.send_text(line)
    except PipecatClientError as exc:
        out.emit("send-failed", f"not sent: {exc}", error=type(exc).__name__, message=str(exc))
        return False
    out.emit("sent-text", f"sent text: {line}", content=line)
    return True


async def request(client: PipecatClient, out: Output, line: str) -> None:
    """Handle ``/msg TYPE [JSON]``: send the request and print its response."""
    parts = line.split(None, 2)
    if len(parts) < 2:
        out.emit("usage", "usage: /msg TYPE [JSON]", message="usage: /msg TYPE [JSON]")
        return
    msg_type = parts[1]
    data: Any = None
    if len(parts) == 3:
        try:
            data = loads_json(parts[2])
        except ValueError as exc:
            out.emit("usage", f"invalid JSON: {exc}", message=f"invalid JSON: {exc}")
            return
    started = time.monotonic()
    try:
        result = await client.send_client_request(msg_type, data)
    except MessageError as exc:
        out.emit(
            "error-response",
            f"{msg_type}: error-response {exc} ({elapsed_ms(started)} ms)",
            type=msg_type,
            error=str(exc),
            data=exc.data,
            rtt_ms=elapsed_ms(started),
        )
    except RequestTimeoutError as exc:
        out.emit("request-timeout", f"{msg_type}: {exc}", type=msg_type, message=str(exc))
    except PipecatClientError as exc:
        out.emit(
            "request-failed",
            f"{msg_type}: {type(exc).__name__}: {exc}",
            type=msg_type,
            error=type(exc).__name__,
            message=str(exc),
        )
    else:
        out.emit(
            "response",
            f"{msg_type} -> {compact(result)} ({elapsed_ms(started)} ms)",
            type=msg_type,
            data=result,
            rtt_ms=elapsed_ms(started),
        )


class Interrupt:
    """Ctrl-C (SIGINT) -> ``client.disconnect()`` once; a second Ctrl-C interrupts hard."""

    def __init__(self, client: PipecatClient, out: Output) -> None:
        self.client = client
        self.out = out
        self.hit = False
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._sigint = FirstSigint(self._loop, self._on_sigint)

    def _on_sigint(self) -> None:
        self.hit = True
        self.out.emit("interrupted", "Ctrl-C: disconnecting")
        self._task = self._loop.create_task(self.client.disconnect())

    def remove(self) -> None:
        """Restore the default SIGINT behaviour."""
        self._sigint.remove()
