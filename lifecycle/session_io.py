"""The asyncio side of one session: its futures and tasks, and the transport's sink.

The session's facts and rules live in :class:`~lifecycle.protocol.SessionProtocol`; what
is here is only what an asyncio driver needs to wait, cancel and time out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifecycle.dispatch import EventBus
from lifecycle.errors import PipecatClientError
from lifecycle.functions import SessionCalls
from lifecycle.logs import SafeLogger
from lifecycle.media import AudioFrame
from lifecycle.protocol import Action, Emit, SessionProtocol
from lifecycle.rtvi import BotReadyData
from lifecycle.start import APIRequest
from lifecycle.transport import Inbound

__all__ = ["SessionIO", "SessionSink"]

_WIRE = (str, bytes, bytearray)  # a tuple: isinstance is faster with it than with a union


@dataclass(eq=False)
class SessionIO:
    """The futures and tasks of one session; dropped when the next one starts."""

    id: int
    log: SafeLogger
    ready: asyncio.Future[BotReadyData]
    loop: asyncio.AbstractEventLoop
    calls: SessionCalls
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    attempt: asyncio.Task[Any] | None = None
    end_task: asyncio.Task[None] | None = None
    # What an awaiting start/connect raises when the client (not its caller) stops it.
    stop_error: PipecatClientError | None = None
    start_request: APIRequest | None = None
    transport_used: bool = False


class SessionSink:
    """The :class:`~lifecycle.transport.TransportSink` sink of one session.

    Each report goes to the protocol, and the actions it returns to the driver's
    carrying-out loop. Reports arriving once the session began to end, or from an older
    session (``live()`` is false), are dropped, so a late transport callback never
    touches the next session.
    """

    __slots__ = ("_bus", "_carry_out", "_live", "_log", "_protocol")

    def __init__(
        self,
        protocol: SessionProtocol,
        bus: EventBus,
        carry_out: Callable[[list[Action]], None],
        live: Callable[[], bool],
        log: SafeLogger,
    ) -> None:
        self._protocol = protocol
        self._bus = bus
        self._carry_out = carry_out
        self._live = live
        self._log = log

    def transport_connected(self) -> None:
        """The transport is up."""
        if self._live():
            self._carry_out(self._protocol.transport_connected())

    def message_received(self, message: Inbound) -> None:
        """One inbound message."""
        if self._live():
            # The events this message fires count its wire size against the byte bound.
            self._bus.inbound_size = len(message) if isinstance(message, _WIRE) else 0
            try:
                self._carry_out(self._protocol.receive(message))
            finally:
                self._bus.inbound_size = 0

    def message_dropped(self, reason: str) -> None:
        """The transport dropped an unusable frame."""
        if self._live():
            self._log.warning_limited("inbound frame dropped", reason=reason)

    def audio_received(self, frame: AudioFrame) -> None:
        """Audio from the bot."""
        if self._live():
            self._carry_out([Emit("on_bot_audio", (frame,))])

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        """The transport ended by itself."""
        if self._live():
            self._carry_out(
                self._protocol.transport_closed(clean=clean, error=error, reason=reason)
            )
