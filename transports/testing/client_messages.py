"""The testing servers' client-messages (``echo``, ``error``, ``delay``, ...), as actions.

Each takes the message's ``t``, ``d`` and id and returns what the bot does; a ``ValueError``
or ``TypeError`` (a bad ``d``) becomes an ``error-response`` in the script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from transports.testing.actions import (
    MAX_DELAY,
    Action,
    Leave,
    Send,
    SendAudio,
    Sleep,
    error_response,
    server_response,
)
from transports.testing.messages import envelope, sine_frames

__all__ = ["BUILTIN_MESSAGES", "SAMPLE_RATE"]

SAMPLE_RATE: Final = 16000
"""The rate of the ``audio`` testing message's sine (Pipecat's WS bot default input rate)."""


def _options(d: Any) -> Mapping[str, Any]:
    return d if isinstance(d, Mapping) else {}


def _echo(t: str, d: Any, msg_id: Any) -> list[Action]:
    return [server_response(t, d, msg_id)]


def _error(t: str, d: Any, msg_id: Any) -> list[Action]:
    return [error_response(str(_options(d).get("message", "requested error")), msg_id)]


def _delay(t: str, d: Any, msg_id: Any) -> list[Action]:
    seconds = min(max(float(_options(d).get("seconds", 0)), 0.0), MAX_DELAY)
    return [Sleep(seconds), server_response(t, d, msg_id)]


def _push(t: str, d: Any, msg_id: Any) -> list[Action]:
    return [Send(envelope("server-message", d)), server_response(t, {"pushed": True}, msg_id)]


def _end(t: str, d: Any, msg_id: Any) -> list[Action]:
    return [Leave()]


def _rtvi_error(t: str, d: Any, msg_id: Any) -> list[Action]:
    fatal = t == "fatal"
    actions: list[Action] = [Send(envelope("error", {"error": f"requested {t}", "fatal": fatal}))]
    return actions if fatal else [*actions, server_response(t, d, msg_id)]


def _audio(t: str, d: Any, msg_id: Any) -> list[Action]:
    ms = max(0, min(int(_options(d).get("ms", 200)), 60_000))
    frames: list[Action] = [SendAudio(f) for f in sine_frames(ms, SAMPLE_RATE)]
    return [*frames, server_response(t, {"sent": True}, msg_id)]


BUILTIN_MESSAGES: Final[Mapping[str, Callable[[str, Any, Any], list[Action]]]] = {
    "echo": _echo,
    "error": _error,
    "delay": _delay,
    "push": _push,
    "end": _end,
    "fatal": _rtvi_error,
    "nonfatal": _rtvi_error,
    "audio": _audio,
}
"""The testing servers' client-messages: ``echo`` (server-response with ``d``), ``error``
(error-response ``d["message"]``), ``delay`` (``d["seconds"]``, at most 30, then echo),
``push`` (server-message ``d``, then ``{"pushed": true}``), ``end`` (the bot leaves),
``fatal``/``nonfatal`` (an RTVI ``error``; nonfatal then echoes), ``audio`` (``d["ms"]``,
default 200, of a 440 Hz sine at 16 kHz mono in 40 ms frames, then ``{"sent": true}``)."""
