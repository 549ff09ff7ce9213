"""What the testing bot script asks its wire adapter to do: the actions, and a few makers.

:class:`~transports.testing.script.BotScript` returns lists of these;
:class:`~transports.testing.script_runner.ScriptRunner` carries them out over one wire.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lifecycle.media import AudioFrame
from transports.testing.messages import envelope

__all__ = [
    "MAX_DELAY",
    "Action",
    "CallHandler",
    "CancelTimer",
    "Handler",
    "Leave",
    "Send",
    "SendAudio",
    "Sleep",
    "Speak",
    "StartTimer",
    "StopSpeaking",
    "error_response",
    "server_response",
]

Handler = Callable[[Any], Any]
"""``handler(data) -> response data``, sync or async; raising makes an ``error-response``."""

MAX_DELAY: Final = 30.0
"""The longest :class:`Sleep` any message can ask the script for (seconds)."""


@dataclass(frozen=True)
class Send:
    """Send this RTVI message to the client."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class SendAudio:
    """Play this bot audio where the wire carries audio (WebRTC paces it in real time)."""

    frame: AudioFrame


@dataclass(frozen=True)
class Leave:
    """End the session from the bot's side, cleanly (WS close 1000, WebRTC ``peerLeft``)."""


@dataclass(frozen=True)
class Speak:
    """Play these actions in the speech lane: after earlier speech, stoppable as a whole.

    The adapter calls ``BotScript.speech_finished`` when they have all run.
    """

    actions: tuple[Action, ...]


@dataclass(frozen=True)
class StopSpeaking:
    """Stop the speech lane now (and drop queued bot audio; WS sends an interruption frame)."""


@dataclass(frozen=True)
class Sleep:
    """Wait before the actions that follow in the same list."""

    seconds: float


@dataclass(frozen=True)
class StartTimer:
    """Call ``BotScript.timer_expired`` with ``key`` after ``seconds`` (replaces one)."""

    key: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    """Forget the timer ``key`` if it has not fired."""

    key: str


@dataclass(frozen=True)
class CallHandler:
    """Run ``handler(data)`` (awaiting it when async), then report to the script.

    Report with ``BotScript.handler_returned`` or ``BotScript.handler_raised``.
    """

    handler: Handler
    data: Any
    msg_type: Any
    msg_id: Any


Action = (
    Send | SendAudio | Sleep | Leave | Speak | StopSpeaking | StartTimer | CancelTimer | CallHandler
)
"""What the script asks its wire adapter to do."""


def server_response(t: Any, value: Any, msg_id: Any) -> Send:
    """Send the ``server-response`` to client-message ``msg_id`` of type ``t``."""
    return Send(envelope("server-response", {"t": t, "d": value}, msg_id))


def error_response(text: str, msg_id: Any) -> Send:
    """Send an ``error-response`` to message ``msg_id``."""
    return Send(envelope("error-response", {"error": text}, msg_id))
