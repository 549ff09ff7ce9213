"""The asyncio side of one session: its futures and tasks, and the transport's sink.

The session's facts and rules live in :class:`~lifecycle.protocol.SessionProtocol`; what
is here is only what an asyncio driver needs to wait, cancel and time out.
"""

from __future__ import annotations

import asyncio
from collections import deque
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

_Deadline = tuple[float, "asyncio.Future[Any]", str]
"""(loop time it expires, the request's future, its type)."""


class RequestDeadlines:
    """The timeouts of one session's requests, on one loop timer for them all.

    Requests with the same timeout expire in the order they were sent, so each timeout has
    a FIFO queue of deadlines (one, for requests left at the default): adding one is an
    append, and the loop timer is armed for the earliest front. An answered request's entry
    is not removed (no per-request timer to cancel): entries whose future is done are
    dropped as they reach the front, and all at once when they pile up behind a slow
    request (over twice the live ones), so memory stays bounded by what is in flight.
    """

    __slots__ = ("_loop", "_next_compaction", "_queues", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[_Deadline]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._next_compaction: dict[float, int] = {}

    def __len__(self) -> int:
        """How many entries are held (answered ones not yet dropped included)."""
        return sum(len(queue) for queue in self._queues.values())

    def add(self, future: asyncio.Future[Any], msg_type: str, limit: float) -> None:
        """``future`` fails with RequestTimeoutError unless done within ``limit`` seconds."""
        queue = self._queues.get(limit)
        if queue is None:
            queue = self._queues[limit] = deque()
        while queue and queue[0][1].done():  # answered in order: the front goes at once
            queue.popleft()
        if len(queue) >= self._next_compaction.get(limit, _COMPACT_FLOOR):
            live = [entry for entry in queue if not entry[1].done()]
            queue.clear()
            queue.extend(live)
            self._next_compaction[limit] = max(_COMPACT_FLOOR, 2 * len(live))
        deadline = self._loop.time() + limit
        queue.append((deadline, future, msg_type))
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._arm(deadline)

    def _arm(self, at: float) -> None:
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        earliest: float | None = None
        for limit, queue in list(self._queues.items()):
            while queue and (queue[0][0] <= now or queue[0][1].done()):
                _, future, msg_type = queue.popleft()
                if not future.done():
                    what = bounded(msg_type, _PREFIX)
                    error = RequestTimeoutError(f"no response to {what!r} within {limit} s")
                    future.set_exception(error)
            if not queue:  # a timeout no request uses now: its queue goes
                del self._queues[limit]
                self._next_compaction.pop(limit, None)
            elif earliest is None or queue[0][0] < earliest:
                earliest = queue[0][0]
        if earliest is not None:
            self._arm(earliest)

    def close(self) -> None:
        """Stop timing: the session ended (its requests were failed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queues.clear()
        self._next_compaction.clear()


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
