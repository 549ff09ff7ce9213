"""The fault matrix's cells and checks, shared by the loopback, WebSocket and WebRTC matrices.

Phase: the state the client is in when the fault strikes. Fault: what goes wrong. A cell's
awaited call must settle with the documented error within its bound, leave no task, fd or
pending request behind (:func:`assert_no_leaks`), and the same client must then run a clean
session. The matrices: tests/test_fault_matrix_loopback.py and tests/interop/test_fault_matrix_*.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lifecycle import PipecatClient, State

from .recorder import within

FAULTS = ("disconnect", "cancel", "kill", "close", "stop", "never_ready")
"""client disconnect, caller's task cancelled, bot killed, server closes, server silent,
bot never sends bot-ready."""

PHASES = (
    State.AUTHENTICATING,
    State.AUTHENTICATED,
    State.CONNECTING,
    State.CONNECTED,
    State.READY,
)

MEANINGLESS: dict[tuple[State, str], str] = {
    (State.AUTHENTICATING, "never_ready"): (
        "no bot runs while the start request is in flight: bot-ready is not due yet"
    ),
    (State.CONNECTING, "never_ready"): (
        "bot-ready is due only once the transport is up; a silent handshake is the "
        "'stop' cell of this phase"
    ),
    (State.READY, "never_ready"): "bot-ready has already arrived in READY",
}
"""The only cells that cannot exist, and why."""


def matrix() -> Iterator[Any]:
    """Every (phase, fault) cell as a pytest param; meaningless cells skipped with a reason."""
    for phase in PHASES:
        for fault in FAULTS:
            reason = MEANINGLESS.get((phase, fault))
            marks = [pytest.mark.skip(reason=f"meaningless cell: {reason}")] if reason else []
            yield pytest.param(phase, fault, id=f"{phase.value}-{fault}", marks=marks)


MATRIX = list(matrix())


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Snapshot:
    """What a cell starts with: the tasks that are not the cell's, and the fd count."""

    tasks: set[asyncio.Task[Any]]
    fds: int


def snapshot() -> Snapshot:
    """Take the resource baseline of a cell (call it first thing in the test)."""
    gc.collect()
    return Snapshot(set(asyncio.all_tasks()), fd_count())


def leftover_tasks(base: Snapshot) -> list[asyncio.Task[Any]]:
    """Tasks alive now that were not alive at the snapshot (the caller's excluded)."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t not in base.tasks and t is not current]


async def assert_no_leaks(base: Snapshot, *, fd_slack: int = 0, wait: float = 3.0) -> None:
    """No task and no fd beyond the baseline (a task ending may take a few loop turns)."""
    left = leftover_tasks(base)
    if left:
        await asyncio.wait(left, timeout=wait)  # returns as soon as they have all ended
    left = leftover_tasks(base)
    assert not left, "tasks left: " + ", ".join(f"{t.get_name()} {t.get_coro()!r}" for t in left)
    gc.collect()
    assert fd_count() <= base.fds + fd_slack, f"fds: {base.fds} -> {fd_count()}"


def pending_requests(client: PipecatClient) -> int:
    """Requests still waiting for a response (white-box: the client keeps them per session)."""
    session = getattr(client, "_session", None)
    return len(session.pending) if session is not None else 0


class StateWatch:
    """Lets a test wait until the client has entered a state (events, not polling)."""

    def __init__(self, client: PipecatClient) -> None:
        self._entered: dict[State, asyncio.Event] = {s: asyncio.Event() for s in State}
        client.add_event_handler("on_transport_state_changed", self._on_state)

    def _on_state(self, state: State) -> None:
        self._entered[state].set()

    async def reached(self, state: State, timeout: float = 5.0) -> None:
        """Wait until ``state`` has been entered (at least once)."""
        await within(self._entered[state].wait(), timeout)

    def reset(self) -> None:
        """Forget every state seen so far."""
        for event in self._entered.values():
            event.clear()


class Gate:
    """A TCP server on 127.0.0.1 that accepts, reads, and then does what the test says.

    ``release("close")`` closes every connection (FIN), ``release("reset")`` aborts them with
    RST (what a killed process's kernel does), and without a release it never answers (a
    server that stops answering, or a handshake that never completes).
    """

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self._release: asyncio.Future[str] | None = None
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Gate:
        self._release = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release("close")
        assert self._server is not None
        self._server.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        for writer in self._writers:
            writer.close()
        await within(self._server.wait_closed())

    @property
    def port(self) -> int:
        """The listening port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, scheme: str = "http", path: str = "/start") -> str:
        """A URL to this server."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def release(self, how: str) -> None:
        """End every connection: "close" (FIN) or "reset" (RST)."""
        if self._release is not None and not self._release.done():
            self._release.set_result(how)

    async def drain(self) -> None:
        """Close every connection and wait until the server side has let go of them."""
        self.release("close")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._release is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            with contextlib.suppress(ConnectionError):
                await reader.read(65536)  # the request (or handshake) has arrived
            self.arrived.set()
            how = await self._release
            if how == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
        finally:
            self._tasks.discard(task)


async def expect(task: asyncio.Task[Any], error: type[BaseException] | None, bound: float) -> None:
    """The awaited call settles within ``bound`` s with ``error`` (None: with a result)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    done, _ = await asyncio.wait([task], timeout=bound)
    if not done:
        # Say how late it was (bounded), for the bug report.
        await asyncio.wait([task], timeout=10.0)
        late = f"settled after {loop.time() - started:.2f} s" if task.done() else "never settled"
        if task.done() and not task.cancelled():
            late += f" with {task.exception()!r}"
        else:
            task.cancel()
        raise AssertionError(f"the awaited call did not settle within {bound} s ({late})")
    if error is None:
        assert not task.cancelled() and task.exception() is None, f"unexpected end: {task!r}"
        return
    if error is asyncio.CancelledError:
        assert task.cancelled(), f"expected cancellation, got {task!r}"
        return
    assert not task.cancelled(), f"expected {error.__name__}, the task was cancelled"
    exc = task.exception()
    assert isinstance(exc, error), f"expected {error.__name__}, got {exc!r}"


def cancel_on_entering(
    client: PipecatClient, state: State, task_ref: list[asyncio.Task[Any]]
) -> None:
    """Cancel ``task_ref[0]`` from the callback that reports ``state`` was entered.

    Callbacks run on the client's dispatcher task, scheduled by the transition itself, so the
    cancellation lands while the call that caused the transition is still finishing.
    """

    def on_state(entered: State) -> None:
        if entered is state and task_ref:
            task_ref[0].cancel()

    client.add_event_handler("on_transport_state_changed", on_state)
