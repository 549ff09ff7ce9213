"""What a transport is: the interface between `PipecatClient` and a wire.

A transport moves bytes and reports what happened by calling a
:class:`TransportSink` that the client hands to :meth:`Transport.connect`.
Those calls are the table's transport triggers (``transport_connected``,
``transport_closed``) plus inbound messages and audio; the lifecycle decides what
they mean. A transport never sets or reads the session state, and never imports
the client.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from lifecycle.deprecation import renamed
from lifecycle.errors import TransportError
from lifecycle.media import AudioFrame
from lifecycle.rtvi import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["ConnectRequest", "Inbound", "Transport", "TransportSink", "first_param"]

Inbound = str | bytes | Mapping[str, Any]
"""An inbound RTVI message: JSON text/bytes as received, or an already parsed object."""


class TransportSink(Protocol):
    """The sink a transport reports to; the client implements it, one per session.

    Calls that arrive after the session ended are ignored by the client, so a
    transport need not guard against late callbacks. Every method returns at once.
    """

    def transport_connected(self) -> None:
        """The connection is up and can carry messages (the table's ``transport_connected``)."""

    def message_received(self, message: Inbound) -> None:
        """One inbound RTVI message (unchecked: the client validates and size-limits it)."""

    def message_dropped(self, reason: str) -> None:
        """An inbound frame was unusable (undecodable, oversize...) and was dropped."""

    def audio_received(self, frame: AudioFrame) -> None:
        """Audio from the bot."""

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        """The connection ended by itself (the table's ``transport_closed``).

        ``clean`` is True when the bot left on purpose (WebSocket close 1000, WebRTC
        ``peerLeft``), False when the link was lost; ``reason`` is a short description
        (e.g. ``"close 1006"``) kept in logs and traces.
        """


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """Everything a transport may need to connect."""

    params: Mapping[str, Any] | None = None
    """connect() params, or the start_bot response; None: use the constructor's settings."""
    start_endpoint: str | None = None
    """The URL start_bot posted to, when this session began with start_bot."""
    start_headers: Mapping[str, str] = field(default_factory=dict)
    """The headers start_bot sent (some servers want the same credentials again)."""
    session_id: int = 0
    """The client's session id, for the transport's log lines."""


def first_param(params: Mapping[str, Any] | None, *names: str) -> Any:
    """The value of the first of ``names`` present (and not None) in ``params``."""
    if not params:
        return None
    for name in names:
        value = params.get(name)
        if value is not None:
            return value
    return None


class Transport(abc.ABC):
    """Base class of every transport. One instance serves one client, session after session.

    Contract:

    * :meth:`connect` establishes the connection, calls ``events.transport_connected()``
      once it can carry messages, and returns. Any failure is raised (the client wraps it
      in :class:`~lifecycle.errors.TransportError`); cancellation leaves nothing running.
    * :meth:`send_message` and :meth:`send_audio` queue and return at once, preserving order.
    * When the connection ends by itself the transport calls ``events.transport_closed``.
    * :meth:`disconnect` closes gracefully within a bounded time, is idempotent, and when it
      returns no task, socket or timer of the transport is left.
    """

    carries_audio: ClassVar[bool] = False
    """Whether :meth:`send_audio` works and ``audio_received`` can fire."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """Inbound messages above this many bytes are dropped by the client."""

    @abc.abstractmethod
    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        """Connect, then call ``events.transport_connected()``; raise on failure."""

    @abc.abstractmethod
    def send_message(self, message: Mapping[str, Any]) -> None:
        """Queue one RTVI message for the bot; raise :class:`TransportError` if not connected."""

    def send_audio(self, frame: AudioFrame) -> None:
        """Queue PCM audio for the bot (transports with ``carries_audio``)."""
        raise TransportError(f"{type(self).__name__} does not carry audio")

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close gracefully (bounded), idempotent; leaves no task or socket behind."""


__getattr__ = renamed(__name__, {"TransportEvents": ("TransportSink", TransportSink)})
