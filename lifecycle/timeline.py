"""The conversation marks of one session: what the user and the bot did, and when.

A :class:`Timeline` takes the events a client emits (name, argument, time) and keeps the
ones a turn or the HTML report needs as :class:`Mark` objects, each on a lane: the user
(speech, text, microphone audio), the LLM, the TTS, the bot's speech and audio, function
calls, the bot's metrics, and errors. Streaming events (LLM tokens, TTS text, audio frames)
coalesce into one mark per run, so a reply is one mark, not hundreds. Bounded, because a bot
controls how many events come and what they say: at most ``max_marks`` marks (the oldest
fall off first), at most :data:`MARK_TEXT_LIMIT` characters of text and
:data:`MARK_VALUES_LIMIT` metric values each. Pure data, no I/O.

``PipecatClient`` feeds its trace's timeline at emit time (so a slow callback never delays
or thins it); :func:`timeline_of_events` builds one from a recorded event stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from lifecycle.dispatch import ClientEvent
from lifecycle.events import (
    BotText,
    FunctionCall,
    FunctionCallStarted,
    FunctionCallStopped,
    Metrics,
    UserInput,
    UserTranscript,
)
from lifecycle.logs import BOT_TEXT_LIMIT, bounded
from lifecycle.media import AudioFrame

__all__ = [
    "LANES",
    "MARK_TEXT_LIMIT",
    "MARK_VALUES_LIMIT",
    "SEND_TEXT",
    "USER_AUDIO",
    "Mark",
    "Timeline",
    "timeline_of_events",
]

MARK_TEXT_LIMIT: Final = BOT_TEXT_LIMIT
"""Characters of text a mark keeps (then ``… (N chars)``; a coalesced reply its first ones)."""
MARK_VALUES_LIMIT: Final = 16
"""Metric values one mark keeps."""
DEFAULT_MAX_MARKS: Final = 1000
"""Marks one session keeps by default."""
SEND_TEXT: Final = "send_text"
"""The mark name of a ``send_text`` call (the client's own action, not an event)."""
USER_AUDIO: Final = "user_audio"
"""The mark name of audio the client sent as the user's microphone (``send_audio``)."""

LANES: Final = ("user", "llm", "tts", "bot", "function", "metrics", "error")
"""The lanes marks are drawn on, top to bottom."""

_NAME_LIMIT: Final = 80  # characters of a processor or function name
_TEXT_GAP: Final = 2.0  # seconds: tokens further apart start a new mark
_AUDIO_GAP: Final = 0.3  # seconds: audio frames further apart start a new mark

# name -> lane, for events kept as one mark each.
_POINTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "on_user_started_speaking": "user",
        "on_user_stopped_speaking": "user",
        "on_vad_user_started_speaking": "user",
        "on_vad_user_stopped_speaking": "user",
        "on_user_mute_started": "user",
        "on_user_mute_stopped": "user",
        "on_user_transcript": "user",
        "on_user_input": "user",
        SEND_TEXT: "user",
        "on_bot_llm_started": "llm",
        "on_bot_llm_stopped": "llm",
        "on_bot_tts_started": "tts",
        "on_bot_tts_stopped": "tts",
        "on_bot_started_speaking": "bot",
        "on_bot_stopped_speaking": "bot",
        "on_bot_interrupted": "bot",
        "on_llm_function_call_started": "function",
        "on_llm_function_call_in_progress": "function",
        "on_llm_function_call": "function",
        "on_llm_function_call_stopped": "function",
        "on_metrics": "metrics",
        "on_error": "error",
        "on_system_log": "error",
    }
)
# name -> (lane, gap), for streaming events coalesced into runs.
_RUNS: Final[Mapping[str, tuple[str, float]]] = MappingProxyType(
    {
        "on_bot_llm_text": ("llm", _TEXT_GAP),
        "on_llm_raw_text": ("llm", _TEXT_GAP),
        "on_bot_tts_text": ("tts", _TEXT_GAP),
        "on_tts_raw_text": ("tts", _TEXT_GAP),
        "on_bot_audio": ("bot", _AUDIO_GAP),
        "on_bot_tts_audio": ("bot", _AUDIO_GAP),
        USER_AUDIO: ("user", _AUDIO_GAP),
    }
)
# Events after which the bot's runs start anew (a new turn or a cut-off reply).
_BREAKS: Final = frozenset(
    {
        "on_user_started_speaking",
        "on_user_stopped_speaking",
        SEND_TEXT,
        "on_bot_interrupted",
        "on_bot_stopped_speaking",
        "on_bot_llm_stopped",
        "on_bot_tts_stopped",
    }
)
_RUN_OF: Final = dict(_RUNS)  # a dict's get is quicker than the read-only proxy's

RECORDED: Final[frozenset[str]] = frozenset(_POINTS) | frozenset(_RUNS)
"""Every event name a timeline keeps marks of."""


@dataclass(frozen=True, slots=True)
class Mark:
    """One thing on a session's timeline: an event, or a run of streaming events."""

    name: str
    """The event name (``"on_bot_llm_text"``...), or :data:`SEND_TEXT` / :data:`USER_AUDIO`."""
    lane: str
    """One of :data:`LANES`."""
    at: float
    """``time.monotonic()`` of the (first) event."""
    end: float
    """``time.monotonic()`` of the last event of the run (``at`` for a single event)."""
    count: int = 1
    """How many events the mark stands for."""
    text: str | None = None
    """What the event said (a run's text joined), at most :data:`MARK_TEXT_LIMIT` chars."""
    values: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Metrics as ``"ttfb/<processor>"`` (``processing/``...) -> seconds, as the bot sent."""
    final: bool | None = None
    """For a user transcript: whether it is final."""
    seconds: float | None = None
    """For a run of audio: the seconds of audio it holds (its frames' durations added)."""


class _Run:
    """A mark still growing: a run of streaming events."""

    __slots__ = ("at", "count", "end", "lane", "name", "seconds", "text")

    def __init__(
        self, name: str, lane: str, at: float, text: str | None, seconds: float | None
    ) -> None:
        self.name, self.lane, self.at, self.end = name, lane, at, at
        self.count = 1
        self.text = text
        self.seconds = seconds

    def extend(self, at: float, text: str | None, seconds: float | None) -> None:
        self.end = at
        self.count += 1
        if text and (self.text is None or len(self.text) < MARK_TEXT_LIMIT):
            self.text = _bounded((self.text or "") + text)
        if seconds is not None:
            self.seconds = (self.seconds or 0.0) + seconds

    def mark(self) -> Mark:
        return Mark(
            self.name, self.lane, self.at, self.end, self.count, self.text, seconds=self.seconds
        )


class Timeline:
    """The marks of one session, oldest first, at most ``max_marks`` of them."""

    __slots__ = ("_marks", "_open", "dropped")

    def __init__(self, max_marks: int = DEFAULT_MAX_MARKS) -> None:
        """An empty timeline keeping at most ``max_marks`` (at least 1) marks."""
        if max_marks < 1:
            raise ValueError("max_marks must be at least 1")
        self._marks: deque[Mark | _Run] = deque(maxlen=max_marks)
        self._open: dict[str, _Run] = {}
        self.dropped = 0
        """How many marks fell off the front."""

    def record(self, name: str, data: Any, at: float) -> None:
        """Take one event: ``name`` as the client emits it, its argument, its monotonic time.

        Names outside :data:`RECORDED` are ignored; so is silent audio (all-zero PCM: a
        WebRTC track carries silence between replies).
        """
        run = _RUN_OF.get(name)
        if run is not None:
            current = self._open.get(name)
            if type(data) is BotText and current is not None and at - current.end <= run[1]:
                # One more token of a reply (most of what is recorded): extend its run.
                current.extend(at, data.text, None)
                return
            self._record_run(name, run, data, at)
            return
        lane = _POINTS.get(name)
        if lane is None or (isinstance(data, UserTranscript) and data.final is False):
            return  # interim transcripts: only the final one is a mark
        if name in _BREAKS:
            for key in [k for k, r in self._open.items() if r.lane != "user"]:
                del self._open[key]
        self._append(_point(name, lane, data, at))

    def _record_run(self, name: str, run: tuple[str, float], data: Any, at: float) -> None:
        lane, gap = run
        seconds: float | None = None
        audio = False
        if isinstance(data, AudioFrame):
            if data.pcm.count(0) == len(data.pcm):
                return  # silence
            audio, seconds = True, data.duration
        current = self._open.get(name)
        if current is not None and at - current.end <= gap:
            # A run's text stops growing at its limit: later tokens' text is not even read.
            full = current.text is not None and len(current.text) >= MARK_TEXT_LIMIT
            current.extend(at, None if audio or full else _text_of(data), seconds)
            return
        text = None if audio else _text_of(data)
        if name == USER_AUDIO:
            # The user starts to speak: at its first sound (a frame's sample n plays n/rate
            # after the frame is sent), and what the bot sends from now on is a run anew.
            at += _first_sound(data)
            for key in [k for k, r in self._open.items() if r.lane != "user"]:
                del self._open[key]
        current = _Run(name, lane, at, _bounded(text) if text else None, seconds)
        self._open[name] = current
        self._append(current)

    def _append(self, item: Mark | _Run) -> None:
        marks = self._marks
        if len(marks) == marks.maxlen:
            gone = marks[0]
            if isinstance(gone, _Run) and self._open.get(gone.name) is gone:
                del self._open[gone.name]
            self.dropped += 1
        marks.append(item)

    def marks(self) -> tuple[Mark, ...]:
        """The kept marks in the order they began."""
        return tuple(m.mark() if isinstance(m, _Run) else m for m in self._marks)

    def __len__(self) -> int:
        """How many marks are kept."""
        return len(self._marks)


def timeline_of_events(events: Iterable[ClientEvent], session_id: int | None = None) -> Timeline:
    """A timeline built from a recorded event stream (``client.events()``).

    Only the events of ``session_id`` when given. A stream has no ``send_text`` or
    microphone marks: turns built from it start at the bot's user-stopped-speaking (or its
    ``user-input`` echo).
    """
    timeline = Timeline()
    for event in events:
        if session_id is None or event.session_id == session_id:
            timeline.record(event.name, event.data, event.at)
    return timeline


def _first_sound(frame: Any) -> float:
    """Seconds from a frame's start to its first non-zero sample (0 for anything odd)."""
    if not isinstance(frame, AudioFrame) or frame.sample_rate <= 0 or frame.num_channels <= 0:
        return 0.0
    pcm = frame.pcm
    first = next((i for i in range(0, len(pcm) - 1, 2) if pcm[i] or pcm[i + 1]), 0)
    return first // (2 * frame.num_channels) / frame.sample_rate


def _point(name: str, lane: str, data: Any, at: float) -> Mark:
    match data:
        case Metrics():
            return Mark(name, lane, at, at, values=_metric_values(data))
        case UserTranscript(text=text, final=final):
            return Mark(name, lane, at, at, text=_bounded(text), final=final)
        case FunctionCall(function_name=fn) | FunctionCallStarted(function_name=fn):
            return Mark(name, lane, at, at, text=_bounded(fn, _NAME_LIMIT))
        case FunctionCallStopped(function_name=fn, cancelled=cancelled):
            label = f"{fn or 'call'}{' (cancelled)' if cancelled else ''}"
            return Mark(name, lane, at, at, text=_bounded(label, _NAME_LIMIT))
    return Mark(name, lane, at, at, text=_text_of(data))


def _text_of(data: Any) -> str | None:
    match data:
        case str():
            return _bounded(data)
        case BotText(text=text) | UserInput(text=text):
            return _bounded(text)
    message = getattr(data, "message", None)  # RTVIError
    return _bounded(message) if isinstance(message, str) else None


def _metric_values(metrics: Metrics) -> Mapping[str, float]:
    values: dict[str, float] = {}
    for kind, items in (("ttfb", metrics.ttfb), ("processing", metrics.processing)):
        for item in items:
            processor, value = item.get("processor"), item.get("value")
            if len(values) >= MARK_VALUES_LIMIT:
                break
            if isinstance(value, int | float) and not isinstance(value, bool):
                name = _bounded(str(processor), _NAME_LIMIT) if processor is not None else "?"
                values[f"{kind}/{name}"] = float(value)
    return MappingProxyType(values)


def _bounded(text: str | None, limit: int = MARK_TEXT_LIMIT) -> str | None:
    return None if text is None else bounded(text, limit)
