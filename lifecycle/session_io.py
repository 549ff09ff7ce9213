"""The asyncio side of one session: its futures and tasks, and the transport's sink.

The session's facts and rules live in :class:`~lifecycle.protocol.SessionProtocol`; what
is here is only what an asyncio driver needs to wait, cancel and time out.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from lifecycle.dispatch import EventBus
from lifecycle.errors import PipecatClientError, RequestTimeoutError
from lifecycle.functions import SessionCalls
from lifecycle.logs import SafeLogger, bounded
from lifecycle.media import AudioFrame
from lifecycle.protocol import Action, Emit, SessionProtocol
from lifecycle.rtvi import BotReadyData
from lifecycle.start import APIRequest
from lifecycle.transport import Inbound

__all__ = ["RequestDeadlines", "SessionIO", "SessionSink"]

_WIRE = (str, bytes, bytearray)  # a tuple: isinstance is faster with it than with a union


_PREFIX: Final = 100  # characters of a request's (caller-given) type in its timeout message
_COMPACT_FLOOR: Final = 1024  # answered requests' entries kept before a compaction

_Deadline = tuple[float, int, "asyncio.Future[Any]", str, float]
"""(loop time it expires, sequence number, the request's future, its type, its timeout)."""


class RequestDeadlines:
    """The timeouts of one session's requests, on one loop timer for them all.

    A request adds its deadline; the earliest one is the only loop timer armed. An answered
    request's entry is not removed (no per-request timer to cancel): entries whose future
    is done are dropped as they reach the front, and all at once when they pile up behind a
    slow request (over twice the live ones), so memory stays bounded by what is in flight.
    """

    __slots__ = ("_heap", "_loop", "_next_compaction", "_seq", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[_Deadline] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._next_compaction = _COMPACT_FLOOR

    def __len__(self) -> int:
        """How many entries are held (answered ones not yet dropped included)."""
        return len(self._heap)

    def add(self, future: asyncio.Future[Any], msg_type: str, limit: float) -> None:
        """``future`` fails with RequestTimeoutError unless done within ``limit`` seconds."""
        heap = self._heap
        while heap and heap[0][2].done():  # answered in order: the front goes at once
            heapq.heappop(heap)
        if len(heap) >= self._next_compaction:
            heap[:] = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(heap)
            self._next_compaction = max(_COMPACT_FLOOR, 2 * len(heap))
        self._seq += 1
        deadline = self._loop.time() + limit
        heapq.heappush(heap, (deadline, self._seq, future, msg_type, limit))
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        heap, now = self._heap, self._loop.time()
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, future, msg_type, limit = heapq.heappop(heap)
            if not future.done():
                what = bounded(msg_type, _PREFIX)
                error = RequestTimeoutError(f"no response to {what!r} within {limit} s")
                future.set_exception(error)
        if heap:
            self._timer = self._loop.call_at(heap[0][0], self._expire)

    def close(self) -> None:
        """Stop timing: the session ended (its requests were failed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()


@dataclass(eq=False)
class SessionIO:
    """The futures and tasks of one session; dropped when the next one starts."""

    id: int
    log: SafeLogger
    ready: asyncio.Future[BotReadyData]
    loop: asyncio.AbstractEventLoop
    calls: SessionCalls
    deadlines: RequestDeadlines
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    attempt: asyncio.Task[Any] | None = None
    end_task: asyncio.Task[None] | None = None
    # What an awaiting start/connect raises when the client (not its caller) stops it.
    stop_error: PipecatClientError | None = None
    start_request: APIRequest | None = None
    transport_used: bool = False
    # Whether the transport's reports still count: false once the session began to end or
    # a newer one started (a flag, not a check of both: it is read for every message).
    live: bool = True


class SessionSink:
    """The :class:`~lifecycle.transport.TransportSink` sink of one session.

    Each report goes to the protocol, and the actions it returns to the driver's
    carrying-out loop (``carry_out(actions, True)``: a transport's report). Reports arriving
    once the session began to end, or from an older session (``session.live`` is false),
    are dropped, so a late transport callback never touches the next session.
    """

    __slots__ = ("_bus", "_carry_out", "_log", "_protocol", "_session")

    def __init__(
        self,
        protocol: SessionProtocol,
        bus: EventBus,
        carry_out: Callable[[list[Action], bool], None],
        session: SessionIO,
    ) -> None:
        self._protocol = protocol
        self._bus = bus
        self._carry_out = carry_out
        self._session = session
        self._log = session.log

    def transport_connected(self) -> None:
        """The transport is up."""
        if self._session.live:
            self._carry_out(self._protocol.transport_connected(), True)

    def message_received(self, message: Inbound) -> None:
        """One inbound message."""
        if self._session.live:
            # The events this message fires count its wire size against the byte bound.
            self._bus.inbound_size = len(message) if isinstance(message, _WIRE) else 0
            try:
                self._carry_out(self._protocol.receive(message), True)
            finally:
                self._bus.inbound_size = 0

    def message_dropped(self, reason: str) -> None:
        """The transport dropped an unusable frame."""
        if self._session.live:
            self._log.warning_limited("inbound frame dropped", reason=reason)

    def audio_received(self, frame: AudioFrame) -> None:
        """Audio from the bot."""
        if self._session.live:
            self._carry_out([Emit("on_bot_audio", (frame,))], True)

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        """The transport ended by itself."""
        if self._session.live:
            self._carry_out(
                self._protocol.transport_closed(clean=clean, error=error, reason=reason), True
            )
