"""How the testing bots talk: :class:`Dialogue` (replies, pacing, function calls, hearing).

Plain settings, shared by every session of a bot; every reply they produce is deterministic,
so tests can assert on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEFAULT_DIALOGUE",
    "WEATHER",
    "Dialogue",
    "FunctionTrigger",
    "echo_reply",
    "result_reply",
]


@dataclass(frozen=True)
class FunctionTrigger:
    """A user text containing ``word`` (any case) makes the bot call ``name(arguments)``."""

    word: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


def echo_reply(text: str) -> str:
    """The default reply: ``You said: <text>``."""
    return f"You said: {text}"


def result_reply(name: str, result: Any) -> str:
    """The default reply after a function call: quotes the result (JSON unless a string)."""
    if result is None:
        return f"I got no result from {name}."
    shown = result if isinstance(result, str) else json.dumps(result, sort_keys=True)
    return f"{name} says: {shown}"


WEATHER: Final = FunctionTrigger("weather", "get_weather", {"location": "Lisbon"})
"""The default function call: "weather" in the user's text calls ``get_weather``."""


@dataclass(frozen=True)
class Dialogue:
    """How a testing bot talks; every reply is deterministic.

    ``reply(user_text)``: the bot's answer. ``function_reply(name, result)``: its answer
    after a function call (``result`` is ``None`` when none came). ``token_delay``: seconds
    between LLM tokens. ``speech_ms`` of a 440 Hz sine at ``speech_rate`` play as the reply's
    audio. ``functions``: the words that make it call a function; ``function_timeout``: how
    long it waits for the client's result. A microphone turn is ``min_voice_ms`` of sound
    (peak at least ``voice_threshold``) then ``end_of_speech_ms`` of silence or no audio;
    it is heard as ``audio_transcript``. ``greeting``: what the bot says once it is ready
    (as a Pipecat bot greets on client-ready); ``None``: it waits for the user.
    """

    reply: Callable[[str], str] = echo_reply
    function_reply: Callable[[str, Any], str] = result_reply
    token_delay: float = 0.0
    speech_ms: int = 200
    speech_rate: int = 24000
    functions: tuple[FunctionTrigger, ...] = (WEATHER,)
    function_timeout: float = 10.0
    audio_transcript: str = "Hello from the microphone."
    min_voice_ms: float = 100.0
    end_of_speech_ms: float = 300.0
    voice_threshold: int = 1000
    greeting: str | None = None


DEFAULT_DIALOGUE: Final = Dialogue()
"""The testing bots' default: echoes the user (``You said: ...``), ``weather`` calls a function."""
