"""The RTVI messages a Pipecat 1.14 voice bot sends, as plain builders (no I/O, no state).

Shapes follow ``pipecat/processors/frameworks/rtvi/models.py`` and ``observer.py`` of
pipecat-ai 1.14 (as a real Pipecat 1.14 voice bot sends them). The bot script
(:mod:`transports.testing.script`) strings them together into turns; ``LoopbackBot`` uses
them for its event and function-call helpers.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL

__all__ = [
    "BOT_EVENT_TYPES",
    "USER_ID",
    "envelope",
    "function_call_in_progress",
    "function_call_started",
    "function_call_stopped",
    "metrics",
    "sine_frames",
    "sine_pcm",
    "timestamp",
    "tokens",
    "user_input",
    "user_transcription",
]

USER_ID: Final = "user"
"""The ``user_id`` the testing bots put in transcripts."""

LLM: Final = {"processor": "TestingLLMService#0", "model": "testing-llm"}
TTS: Final = {"processor": "TestingTTSService#0", "model": "testing-tts"}

BOT_EVENT_TYPES: Final = frozenset(
    {
        "user-started-speaking",
        "user-stopped-speaking",
        "vad-user-started-speaking",
        "vad-user-stopped-speaking",
        "user-mute-started",
        "user-mute-stopped",
        "bot-started-speaking",
        "bot-stopped-speaking",
        "bot-interrupted",
        "user-transcription",
        "user-input",
        "user-llm-text",
        "bot-output",
        "bot-transcription",
        "bot-llm-started",
        "bot-llm-stopped",
        "bot-llm-text",
        "bot-tts-started",
        "bot-tts-stopped",
        "bot-tts-text",
        "stt-raw-text",
        "llm-raw-text",
        "tts-raw-text",
        "metrics",
        "llm-function-call-started",
        "llm-function-call-in-progress",
        "llm-function-call",
        "llm-function-call-stopped",
        "bot-llm-marker",
        "bot-tts-audio",
        "user-audio-level",
        "bot-audio-level",
        "system-log",
        "bot-llm-search-response",
        "ui-command",
        "ui-job-group",
        "server-message",
        "error",
    }
)
"""The server-to-client RTVI types with a typed event (plus ``server-message`` and ``error``)."""


def envelope(msg_type: str, data: Any = None, msg_id: Any = None) -> dict[str, Any]:
    """An RTVI message; ``id`` only when given (Pipecat's events carry none)."""
    message: dict[str, Any] = {"label": LABEL, "type": msg_type}
    if msg_id is not None:
        message["id"] = msg_id
    if data is not None:
        message["data"] = data
    return message


def _present(**fields: Any) -> dict[str, Any]:
    """The fields that are not ``None`` (Pipecat serialises with ``exclude_none``)."""
    return {key: value for key, value in fields.items() if value is not None}


def timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as Pipecat's ``time_now_iso8601()``."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def user_input(text: str, input_type: str, msg_id: Any, when: str) -> dict[str, Any]:
    """``user-input`` (2.2): ``msg_id`` is the send-text id for ``input_type`` "chat"."""
    data = {"text": text, "input_type": input_type, "final": True, "timestamp": when}
    return envelope("user-input", _present(**data, user_id=USER_ID, msg_id=msg_id))


def user_transcription(text: str, when: str) -> dict[str, Any]:
    """A final ``user-transcription``."""
    data = {"text": text, "user_id": USER_ID, "timestamp": when, "final": True}
    return envelope("user-transcription", data)


def function_call_started(name: str) -> dict[str, Any]:
    """``llm-function-call-started`` (report level NAME or FULL)."""
    return envelope("llm-function-call-started", {"function_name": name})


def function_call_in_progress(
    tool_call_id: str, name: str, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """``llm-function-call-in-progress`` (report level FULL)."""
    data = {"tool_call_id": tool_call_id, "function_name": name, "arguments": dict(arguments)}
    return envelope("llm-function-call-in-progress", data)


def function_call_stopped(
    tool_call_id: str, name: str, *, cancelled: bool, result: Any = None
) -> dict[str, Any]:
    """``llm-function-call-stopped``; ``result`` left out when ``None``."""
    data = _present(
        tool_call_id=tool_call_id, cancelled=cancelled, function_name=name, result=result
    )
    return envelope("llm-function-call-stopped", data)


def tokens(text: str) -> list[str]:
    """``text`` cut into LLM-like tokens: words, each keeping its trailing space."""
    words = text.split(" ")
    return [w + " " for w in words[:-1] if w] + ([words[-1]] if words[-1] else [])


def metrics(reply: str, *, ttfb: float, processing: float) -> dict[str, Any]:
    """One ``metrics`` message for a reply: LLM ttfb/processing/tokens, TTS characters.

    Token items are the usage mapping itself (``d.value.model_dump()`` in Pipecat's
    observer), the others ``{processor, model, value}``.
    """
    completion = len(tokens(reply))
    data = {
        "ttfb": [{**LLM, "value": ttfb}],
        "processing": [{**LLM, "value": processing}],
        "tokens": [
            {"prompt_tokens": 1, "completion_tokens": completion, "total_tokens": 1 + completion}
        ],
        "characters": [{**TTS, "value": len(reply)}],
    }
    return envelope("metrics", data)


def sine_pcm(ms: int, sample_rate: int, hz: float = 440.0) -> bytes:
    """Mono s16le PCM of a sine wave, ``ms`` milliseconds long."""
    n = sample_rate * max(ms, 0) // 1000
    amp = 0.3 * 32767
    step = 2 * math.pi * hz / sample_rate
    return struct.pack(f"<{n}h", *(int(amp * math.sin(step * i)) for i in range(n)))


def sine_frames(ms: int, sample_rate: int, chunk_ms: int = 40) -> list[AudioFrame]:
    """``ms`` of a 440 Hz sine as mono frames of ``chunk_ms`` (Pipecat's WS bot: 40 ms)."""
    pcm = sine_pcm(ms, sample_rate)
    chunk = sample_rate * chunk_ms // 1000 * 2
    return [AudioFrame(pcm[i : i + chunk], sample_rate, 1) for i in range(0, len(pcm), chunk)]
