"""The events a client fires: every name, and the typed data of Pipecat's RTVI messages.

Pure data, no I/O. Each server-to-client RTVI type of Pipecat 1.14 maps to
one event name and an argument: none, a frozen dataclass below, the data mapping itself,
or an :class:`~lifecycle.media.AudioFrame`. The dataclasses keep the wire fields in
snake_case plus ``raw`` (the whole ``data`` mapping as received). Building one never
raises: a missing or mistyped field becomes ``None`` (or empty) and the event still fires,
because a bot on another Pipecat version must not silence a whole kind of event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, Self, get_args

from lifecycle.media import AudioFrame

__all__ = [
    "EVENT_GROUPS",
    "EVENT_NAMES",
    "HIGH_RATE_EVENTS",
    "LIFECYCLE_EVENTS",
    "SINGLE_EVENTS",
    "TYPED_EVENTS",
    "AnyDataEvent",
    "AudioEvent",
    "AudioLevel",
    "AudioLevelEvent",
    "BotOutput",
    "BotText",
    "BotTextEvent",
    "DataMappingEvent",
    "FunctionCall",
    "FunctionCallEvent",
    "FunctionCallStarted",
    "FunctionCallStopped",
    "LLMMarker",
    "MessageEvent",
    "Metrics",
    "NoArgumentEvent",
    "TypedEvent",
    "UserInput",
    "UserTranscript",
    "event_for_type",
    "event_table_markdown",
]

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def _mapping(value: Any) -> Mapping[str, Any]:
    # JSON gives plain dicts: checked before the (slower) Mapping ABC.
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _items(data: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any], ...]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        return ()
    return tuple(item for item in value if isinstance(item, Mapping))


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """``user-transcription``: what the STT heard (interim ones have ``final=False``)."""

    text: str | None = None
    final: bool | None = None
    timestamp: str | None = None
    user_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(_str(d, "text"), _bool(d, "final"), _str(d, "timestamp"), _str(d, "user_id"), d)


@dataclass(frozen=True, slots=True)
class UserInput:
    """``user-input``: what the user said or typed (``input_type`` transcription/chat/...)."""

    text: str | None = None
    input_type: str | None = None
    final: bool | None = None
    timestamp: str | None = None
    user_id: str | None = None
    msg_id: str | None = None
    """For chat input, the id :meth:`~lifecycle.PipecatClient.send_text` returned."""
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(
            text=_str(d, "text"),
            input_type=_str(d, "input_type"),
            final=_bool(d, "final"),
            timestamp=_str(d, "timestamp"),
            user_id=_str(d, "user_id"),
            msg_id=_str(d, "msg_id"),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class BotText:
    """A text event (LLM/TTS/STT text, system log...): just ``text``; the rest is in ``raw``."""

    text: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        text = d.get("text")  # one per token: _str's check inlined
        text = text if isinstance(text, str) else None
        if cls is not BotText:
            return cls(text, d)
        # Built per token: the frozen __init__'s object.__setattr__ calls cost as much again
        # as filling the two slots directly.
        event = _new_object(cls)
        _set_text(event, text)
        _set_raw(event, d)
        return event


_new_object: Final = object.__new__
_set_text: Final = BotText.__dict__["text"].__set__
_set_raw: Final = BotText.__dict__["raw"].__set__


@dataclass(frozen=True, slots=True)
class BotOutput:
    """``bot-output``: what the bot says or shows, per segment, with its spoken progress."""

    text: str | None = None
    output_type: str | None = None
    """``sentence``, ``word``...; read from the older ``aggregated_by``/``text_type`` too."""
    segment_id: int | None = None
    will_be_spoken: bool | None = None
    spoken_status: str | None = None
    """``new``, ``in-progress`` or ``completed``."""
    spoken_progress: Mapping[str, Any] | None = None
    """``{accumulated_text, remaining_text}`` when the segment is spoken."""
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        output_type = _str(d, "output_type") or _str(d, "aggregated_by") or _str(d, "text_type")
        progress = d.get("spoken_progress")
        return cls(
            text=_str(d, "text"),
            output_type=output_type,
            segment_id=_int(d, "segment_id"),
            will_be_spoken=_bool(d, "will_be_spoken"),
            spoken_status=_str(d, "spoken_status"),
            spoken_progress=progress if isinstance(progress, Mapping) else None,
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Metrics:
    """``metrics``: the bot's own measurements, each a tuple of the wire's item mappings.

    Items look like ``{"processor": ..., "model": ..., "value": ...}``; a kind the bot did
    not report is an empty tuple.
    """

    ttfb: tuple[Mapping[str, Any], ...] = ()
    ttfa: tuple[Mapping[str, Any], ...] = ()
    ttfat: tuple[Mapping[str, Any], ...] = ()
    processing: tuple[Mapping[str, Any], ...] = ()
    tokens: tuple[Mapping[str, Any], ...] = ()
    characters: tuple[Mapping[str, Any], ...] = ()
    stt_usage: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(
            ttfb=_items(d, "ttfb"),
            ttfa=_items(d, "ttfa"),
            ttfat=_items(d, "ttfat"),
            processing=_items(d, "processing"),
            tokens=_items(d, "tokens"),
            characters=_items(d, "characters"),
            stt_usage=_items(d, "stt_usage"),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class FunctionCallStarted:
    """``llm-function-call-started``; ``function_name`` only with the bot's report level NAME+."""

    function_name: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(_str(d, "function_name"), d)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """``llm-function-call-in-progress`` (or the older ``llm-function-call``): a call to answer.

    ``arguments`` is empty when the bot sent none (or not a mapping); the deprecated
    message's ``args`` land here too.
    """

    tool_call_id: str | None = None
    function_name: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=_empty)
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        arguments = d.get("arguments", d.get("args"))
        return cls(_str(d, "tool_call_id"), _str(d, "function_name"), _mapping(arguments), d)


@dataclass(frozen=True, slots=True)
class FunctionCallStopped:
    """``llm-function-call-stopped``: the call finished (``result``) or was ``cancelled``."""

    tool_call_id: str | None = None
    cancelled: bool | None = None
    function_name: str | None = None
    result: Any = None
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(
            _str(d, "tool_call_id"),
            _bool(d, "cancelled"),
            _str(d, "function_name"),
            d.get("result"),
            d,
        )


@dataclass(frozen=True, slots=True)
class LLMMarker:
    """``bot-llm-marker``: a sideband marker of an LLM response (e.g. turn completion)."""

    text: str | None = None
    kind: str | None = None
    response_text: str | None = None
    """The response's text as the LLM produced it, markers included (the wire's ``raw``)."""
    markers: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        markers = d.get("markers")
        kept = tuple(m for m in markers if isinstance(m, str)) if isinstance(markers, list) else ()
        return cls(_str(d, "text"), _str(d, "kind"), _str(d, "raw"), kept, d)


@dataclass(frozen=True, slots=True)
class AudioLevel:
    """``user-audio-level`` / ``bot-audio-level``: a level ``value`` (0..1)."""

    value: float | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)
    """The whole ``data`` mapping as received."""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from a message's ``data``; never raises."""
        d = _mapping(data)
        return cls(_float(d, "value"), d)


def audio_from_data(data: Any) -> AudioFrame:
    """``bot-tts-audio``'s data as PCM: base64 ``audio`` decoded; bad fields give empty/0."""
    d = _mapping(data)
    encoded = d.get("audio")
    pcm = b""
    if isinstance(encoded, str):
        try:
            pcm = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            pcm = b""
    return AudioFrame(pcm, _int(d, "sample_rate") or 0, _int(d, "num_channels") or 0)


def data_mapping(data: Any) -> Mapping[str, Any]:
    """The message's ``data`` itself (empty when it is not a mapping)."""
    return _mapping(data)


TypedEvent = (
    UserTranscript
    | UserInput
    | BotText
    | BotOutput
    | Metrics
    | FunctionCallStarted
    | FunctionCall
    | FunctionCallStopped
    | LLMMarker
    | AudioLevel
)
"""Every dataclass a §9 event carries."""

ArgumentBuilder = Callable[[Any], Any]
"""Turns a message's ``data`` into the event's one argument."""


@dataclass(frozen=True, slots=True)
class _Row:
    rtvi_type: str
    event: str
    build: ArgumentBuilder | None  # None: the event has no argument
    argument: str  # how the README's table names the argument
    high_rate: bool = False  # streamed per token/frame: dropped first from a full queue


def _none(rtvi_type: str, event: str) -> _Row:
    return _Row(rtvi_type, event, None, "none")


def _typed(rtvi_type: str, event: str, kind: type[Any], *, high_rate: bool = False) -> _Row:
    return _Row(rtvi_type, event, kind.from_data, f"`{kind.__name__}`", high_rate)


_ROWS: Final[tuple[_Row, ...]] = (
    _none("user-started-speaking", "on_user_started_speaking"),
    _none("user-stopped-speaking", "on_user_stopped_speaking"),
    _none("vad-user-started-speaking", "on_vad_user_started_speaking"),
    _none("vad-user-stopped-speaking", "on_vad_user_stopped_speaking"),
    _none("user-mute-started", "on_user_mute_started"),
    _none("user-mute-stopped", "on_user_mute_stopped"),
    _none("bot-started-speaking", "on_bot_started_speaking"),
    _none("bot-stopped-speaking", "on_bot_stopped_speaking"),
    _none("bot-interrupted", "on_bot_interrupted"),
    _typed("user-transcription", "on_user_transcript", UserTranscript),
    _typed("user-input", "on_user_input", UserInput),
    _typed("user-llm-text", "on_user_llm_text", BotText),
    _typed("bot-output", "on_bot_output", BotOutput),
    _typed("bot-transcription", "on_bot_transcript", BotText),
    _none("bot-llm-started", "on_bot_llm_started"),
    _none("bot-llm-stopped", "on_bot_llm_stopped"),
    _typed("bot-llm-text", "on_bot_llm_text", BotText, high_rate=True),
    _none("bot-tts-started", "on_bot_tts_started"),
    _none("bot-tts-stopped", "on_bot_tts_stopped"),
    _typed("bot-tts-text", "on_bot_tts_text", BotText, high_rate=True),
    _typed("stt-raw-text", "on_stt_raw_text", BotText, high_rate=True),
    _typed("llm-raw-text", "on_llm_raw_text", BotText, high_rate=True),
    _typed("tts-raw-text", "on_tts_raw_text", BotText, high_rate=True),
    _typed("metrics", "on_metrics", Metrics, high_rate=True),
    _typed("llm-function-call-started", "on_llm_function_call_started", FunctionCallStarted),
    _typed("llm-function-call-in-progress", "on_llm_function_call_in_progress", FunctionCall),
    _typed("llm-function-call", "on_llm_function_call", FunctionCall),
    _typed("llm-function-call-stopped", "on_llm_function_call_stopped", FunctionCallStopped),
    _typed("bot-llm-marker", "on_bot_llm_marker", LLMMarker),
    _Row("bot-tts-audio", "on_bot_tts_audio", audio_from_data, "`AudioFrame` (PCM decoded)", True),
    _typed("user-audio-level", "on_user_audio_level", AudioLevel, high_rate=True),
    _typed("bot-audio-level", "on_bot_audio_level", AudioLevel, high_rate=True),
    _typed("system-log", "on_system_log", BotText, high_rate=True),
    _Row("bot-llm-search-response", "on_bot_llm_search_response", data_mapping, "the data mapping"),
    _Row("ui-command", "on_ui_command", data_mapping, "the data mapping"),
    _Row("ui-job-group", "on_ui_job_group", data_mapping, "the data mapping"),
)

TYPED_EVENTS: Final[Mapping[str, tuple[str, ArgumentBuilder | None]]] = MappingProxyType(
    {row.rtvi_type: (row.event, row.build) for row in _ROWS}
)
"""RTVI type -> (event name, builder of its argument from ``data``, or None: no argument)."""

LIFECYCLE_EVENTS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "on_transition": ("`TransitionEvent`", "after every state change"),
        "on_transport_state_changed": ("`State`", "after every state change"),
        "on_bot_started": ("the start response", "start_bot got its response"),
        "on_connected": ("none", "the transport connected"),
        "on_bot_ready": ("`BotReadyData`", "`bot-ready` received"),
        "on_disconnected": ("none", "the session reached disconnected (any cause)"),
        "on_bot_disconnected": ("none", "the bot left (bot-initiated end, transport lost)"),
        "on_server_message": ("the data", "RTVI `server-message`"),
        "on_message_error": ("the message dict", "an `error-response` matching no request"),
        "on_error": ("`RTVIError`", "RTVI `error`, or the transport lost after READY"),
        "on_unhandled_message": ("the message dict", "an RTVI type this client does not know"),
        "on_bot_audio": ("`AudioFrame`", "audio from the bot (transports that carry audio)"),
    }
)
"""The session and protocol events: name -> (argument, when it fires)."""

EVENT_NAMES: Final[frozenset[str]] = frozenset(LIFECYCLE_EVENTS) | {row.event for row in _ROWS}
"""Every event name a callback can be registered for."""

HIGH_RATE_EVENTS: Final[frozenset[str]] = frozenset(
    {"on_bot_audio", "on_unhandled_message"} | {row.event for row in _ROWS if row.high_rate}
)
"""Events that come per token or frame: dropped first from a full callback queue (with a
non-fatal ``on_error``). An RTVI type's row says whether it is one."""


def event_for_type(rtvi_type: str) -> str | None:
    """The event an RTVI message type fires, ``None`` for a type without a typed event."""
    entry = TYPED_EVENTS.get(rtvi_type)
    return entry[0] if entry is not None else None


def event_table_markdown() -> str:
    """The README's event table (Markdown), generated from this module's tables."""
    lines = ["| event | argument | fired on |", "|---|---|---|"]
    for name, (argument, when) in LIFECYCLE_EVENTS.items():
        lines.append(f"| `{name}` | {argument} | {when} |")
    for row in _ROWS:
        lines.append(f"| `{row.event}` | {row.argument} | RTVI `{row.rtvi_type}` |")
    return "\n".join(lines) + "\n"


# Event names grouped by their callback's argument, for typed registration: the client's
# event_handler/add_event_handler have one overload per group (a test keeps them complete).
NoArgumentEvent = Literal[
    "on_connected",
    "on_disconnected",
    "on_bot_disconnected",
    "on_user_started_speaking",
    "on_user_stopped_speaking",
    "on_vad_user_started_speaking",
    "on_vad_user_stopped_speaking",
    "on_user_mute_started",
    "on_user_mute_stopped",
    "on_bot_started_speaking",
    "on_bot_stopped_speaking",
    "on_bot_interrupted",
    "on_bot_llm_started",
    "on_bot_llm_stopped",
    "on_bot_tts_started",
    "on_bot_tts_stopped",
]
"""Events whose callback takes no argument."""
AnyDataEvent = Literal["on_bot_started", "on_server_message"]
"""Events whose argument is whatever the bot sent (a start response, server-message data)."""
MessageEvent = Literal["on_message_error", "on_unhandled_message"]
"""Events whose argument is the whole RTVI message dict."""
AudioEvent = Literal["on_bot_audio", "on_bot_tts_audio"]
"""Events whose argument is an :class:`~lifecycle.media.AudioFrame`."""
BotTextEvent = Literal[
    "on_user_llm_text",
    "on_bot_transcript",
    "on_bot_llm_text",
    "on_bot_tts_text",
    "on_stt_raw_text",
    "on_llm_raw_text",
    "on_tts_raw_text",
    "on_system_log",
]
"""Events whose argument is a :class:`BotText`."""
FunctionCallEvent = Literal["on_llm_function_call_in_progress", "on_llm_function_call"]
"""Events whose argument is a :class:`FunctionCall`."""
AudioLevelEvent = Literal["on_user_audio_level", "on_bot_audio_level"]
"""Events whose argument is an :class:`AudioLevel`."""
DataMappingEvent = Literal["on_bot_llm_search_response", "on_ui_command", "on_ui_job_group"]
"""Events whose argument is the message's data mapping."""

SINGLE_EVENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "on_transition": "TransitionEvent",
        "on_transport_state_changed": "State",
        "on_bot_ready": "BotReadyData",
        "on_error": "RTVIError",
        "on_user_transcript": "UserTranscript",
        "on_user_input": "UserInput",
        "on_bot_output": "BotOutput",
        "on_metrics": "Metrics",
        "on_llm_function_call_started": "FunctionCallStarted",
        "on_llm_function_call_stopped": "FunctionCallStopped",
        "on_bot_llm_marker": "LLMMarker",
    }
)
"""Events with an overload of their own: name -> argument type name."""

EVENT_GROUPS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        alias: get_args(value)
        for alias, value in (
            ("NoArgumentEvent", NoArgumentEvent),
            ("AnyDataEvent", AnyDataEvent),
            ("MessageEvent", MessageEvent),
            ("AudioEvent", AudioEvent),
            ("BotTextEvent", BotTextEvent),
            ("FunctionCallEvent", FunctionCallEvent),
            ("AudioLevelEvent", AudioLevelEvent),
            ("DataMappingEvent", DataMappingEvent),
        )
    }
)
"""Each group alias's event names (what the typed-registration test checks)."""
