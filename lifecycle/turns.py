"""Turn latencies from the client's side, computed from a session's timeline marks.

A turn begins when the user's input ends and lasts until the next one does. Its anchor
(``started_at``) is when the client sent ``send_text`` for a typed turn; for a spoken one,
when ``user-stopped-speaking`` arrived (the bot's VAD: the client cannot tell a pause from
the end of a live microphone's speech), else when the last sound of the audio the client
sent went out (``play``); else when the bot echoed the input (``user-input``). From the
anchor, in milliseconds: the first LLM text (``bot-llm-text``/``llm-raw-text``), the first
TTS text (``bot-tts-text``/``tts-raw-text``), the first sound of the bot's audio, and
``bot-started-speaking``; beside them the bot's own ``metrics`` of the turn (ttfb and
processing per processor). Input that comes before the bot answered the open turn refines
that turn; input after it opens the next. Pure computation over
:class:`~lifecycle.timeline.Mark` objects, no I/O.

``client.trace.turns()`` gives the turns of the traced sessions; :func:`turns_from_events`
those of a recorded ``client.events()`` stream (what a load run or a scenario runner has).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from lifecycle.dispatch import ClientEvent
from lifecycle.timeline import MARK_TEXT_LIMIT, SEND_TEXT, USER_AUDIO, Mark, timeline_of_events

__all__ = ["BargeIn", "Turn", "barge_in", "turns_from_events", "turns_from_marks"]

_INPUT_ENDS: Final = frozenset({SEND_TEXT, USER_AUDIO})
_USER_TEXT: Final = frozenset({"on_user_input", "on_user_transcript"})
_LLM_TEXT: Final = frozenset({"on_bot_llm_text", "on_llm_raw_text"})
_TTS_TEXT: Final = frozenset({"on_bot_tts_text", "on_tts_raw_text"})
_BOT_AUDIO: Final = frozenset({"on_bot_audio", "on_bot_tts_audio"})
_CALLS: Final = frozenset({"on_llm_function_call_in_progress", "on_llm_function_call"})
_ANSWERS: Final = (
    _LLM_TEXT
    | _TTS_TEXT
    | _BOT_AUDIO
    | _CALLS
    | {"on_bot_llm_started", "on_bot_started_speaking", "on_llm_function_call_started"}
)


def _no_figures() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn and the bot's answer, timed from the client's side.

    Times ``*_at`` are seconds since the session's first traced moment; ``*_ms`` are
    milliseconds from ``started_at``; ``None`` where it did not happen.
    """

    session_id: int
    """The session it belongs to."""
    index: int
    """1 for the session's first turn."""
    source: str
    """What anchors it: ``"text"`` (send_text), ``"speech"`` (user-stopped-speaking),
    ``"audio"`` (the end of the audio sent), ``"input"`` (the bot's user-input echo)."""
    started_at: float
    """The anchor: when the user's input ended (see ``source``)."""
    user_stopped_at: float | None = None
    """When ``user-stopped-speaking`` arrived."""
    input_ended_at: float | None = None
    """When ``send_text`` was sent or the last sound of the user's audio went out."""
    llm_first_ms: float | None = None
    """To the first ``bot-llm-text`` (or ``llm-raw-text``)."""
    tts_first_ms: float | None = None
    """To the first ``bot-tts-text`` (or ``tts-raw-text``)."""
    audio_first_ms: float | None = None
    """To the first non-silent frame of the bot's audio."""
    bot_speaking_ms: float | None = None
    """To ``bot-started-speaking``."""
    bot_stopped_at: float | None = None
    """When ``bot-stopped-speaking`` arrived (after it started, in this turn)."""
    ttfb: Mapping[str, float] = field(default_factory=_no_figures)
    """The bot's own time to first byte, processor -> ms (its first figure in the turn)."""
    processing: Mapping[str, float] = field(default_factory=_no_figures)
    """The bot's own processing time, processor -> ms."""
    function_calls: tuple[str, ...] = ()
    """Names of the functions the bot called (``"?"`` where it sent no name)."""
    interrupted: bool = False
    """Whether the bot's answer was cut off (``bot-interrupted``, or the user spoke over it)."""
    user_text: str | None = None
    """What the user said or typed, as the bot echoed it (bounded)."""
    bot_text: str | None = None
    """The LLM's answer as its tokens arrived (bounded)."""
    barge_in_at: float | None = None
    """When the user's input began while the bot was speaking (a barge-in): the first
    sound of the audio sent, or the ``send_text``; None for a turn that waited its turn."""
    barge_in_to_interrupted_ms: float | None = None
    """From the barge-in to the bot's ``bot-interrupted``."""
    barge_in_to_bot_stopped_ms: float | None = None
    """From the barge-in to the bot's ``bot-stopped-speaking`` (its overrun)."""
    bot_audio_after_barge_in_s: float | None = None
    """Seconds of the bot's audible audio that still arrived after the barge-in, until it
    stopped speaking."""

    @property
    def answered_ms(self) -> float | None:
        """To the first sign of the answer a person notices: speech, else audio, else text."""
        for value in (self.bot_speaking_ms, self.audio_first_ms, self.tts_first_ms):
            if value is not None:
                return value
        return self.llm_first_ms

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (mappings as dicts, tuples as lists)."""
        return {
            f.name: dict(value)
            if isinstance(value, Mapping)
            else list(value)
            if isinstance(value, tuple)
            else value
            for f in fields(self)
            for value in (getattr(self, f.name),)
        }

    def summary(self) -> str:
        """One line: ``turn 1 (text): llm 2.1 ms · tts 3.0 ms · ... · bot ttfb LLM 1.0 ms``."""
        figures = " · ".join(
            f"{label} {_ms(value)}"
            for label, value in (
                ("llm", self.llm_first_ms),
                ("tts", self.tts_first_ms),
                ("audio", self.audio_first_ms),
                ("speaking", self.bot_speaking_ms),
            )
        )
        line = f"turn {self.index} ({self.source}): {figures}"
        if self.ttfb:
            line += " · bot ttfb " + ", ".join(f"{k} {_ms(v)}" for k, v in self.ttfb.items())
        if self.function_calls:
            line += " · calls " + ", ".join(self.function_calls)
        if self.interrupted:
            line += " · interrupted"
        if self.barge_in_at is not None:
            audio = self.bot_audio_after_barge_in_s
            line += (
                f" · barge-in: interrupted {_ms(self.barge_in_to_interrupted_ms)}, stopped "
                f"{_ms(self.barge_in_to_bot_stopped_ms)}, "
                f"{'-' if audio is None else f'{audio:.2f} s'} of bot audio after"
            )
        return line


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class _Builder:
    """One turn being read, mark by mark."""

    def __init__(self, session_id: int, index: int, origin: float) -> None:
        self.session_id, self.index, self.origin = session_id, index, origin
        self.user_stopped: float | None = None
        self.sent_text: float | None = None
        self.audio_end: float | None = None
        self.echo: float | None = None
        self.user_text: str | None = None
        self.answered = False
        self.llm: float | None = None
        self.tts: float | None = None
        self.audio: float | None = None
        self.speaking: float | None = None
        self.stopped: float | None = None
        self.ttfb: dict[str, float] = {}
        self.processing: dict[str, float] = {}
        self.calls: list[str] = []
        self.interrupted = False
        self.bot_texts: dict[str, list[str]] = {}
        self.input_began: float | None = None
        self.barge_in: BargeIn | None = None
        self.overrun = False  # the bot still speaks its previous answer over this turn

    def take_input(self, mark: Mark, at: float) -> None:
        if mark.name in _INPUT_ENDS and self.input_began is None:
            self.input_began = mark.at  # a text's send; the first sound of the audio
        if mark.name == "on_user_stopped_speaking":
            self.user_stopped = at
        elif mark.name == SEND_TEXT:
            self.sent_text = at
        elif mark.name == USER_AUDIO:
            self.audio_end = at
        elif mark.name == "on_user_input" and self.echo is None:
            self.echo = at

    def take_answer(self, mark: Mark) -> None:
        self.answered = True
        name, at = mark.name, mark.at
        if name in _LLM_TEXT:
            self.llm = at if self.llm is None else self.llm
            # The reply once: bot-llm-text, or llm-raw-text from a bot that sends only that.
            text = self.bot_texts.setdefault(name, [""])
            if mark.text and len(text[0]) < MARK_TEXT_LIMIT:
                text[0] = (text[0] + mark.text)[:MARK_TEXT_LIMIT]
        elif name in _TTS_TEXT:
            self.tts = at if self.tts is None else self.tts
        elif name in _BOT_AUDIO:
            self.audio = at if self.audio is None else self.audio
        elif name == "on_bot_started_speaking":
            self.speaking = at if self.speaking is None else self.speaking
        elif name in _CALLS:
            self.calls.append(mark.text or "?")

    def take_metrics(self, mark: Mark) -> None:
        for key, seconds in mark.values.items():
            kind, _, processor = key.partition("/")
            figures = self.ttfb if kind == "ttfb" else self.processing
            figures.setdefault(processor, seconds * 1000)

    def _bot_text(self) -> str | None:
        for name in ("on_bot_llm_text", "on_llm_raw_text"):
            text = self.bot_texts.get(name)
            if text and text[0]:
                return text[0]
        return None

    def turn(self) -> Turn | None:
        anchor, source = 0.0, ""
        for anchor_at, kind in (
            (self.sent_text, "text"),
            (self.user_stopped, "speech"),
            (self.audio_end, "audio"),
            (self.echo, "input"),
        ):
            if anchor_at is not None:
                anchor, source = anchor_at, kind
                break
        else:
            return None

        def since(at: float | None) -> float | None:
            return None if at is None else round((at - anchor) * 1000, 3)

        def rel(at: float | None) -> float | None:
            return None if at is None else round(at - self.origin, 6)

        started = rel(anchor)
        assert started is not None
        barge_in = self.barge_in or BargeIn(None, None, None, None)
        return Turn(
            session_id=self.session_id,
            index=self.index,
            source=source,
            started_at=started,
            user_stopped_at=rel(self.user_stopped),
            input_ended_at=rel(self.sent_text if self.sent_text is not None else self.audio_end),
            llm_first_ms=since(self.llm),
            tts_first_ms=since(self.tts),
            audio_first_ms=since(self.audio),
            bot_speaking_ms=since(self.speaking),
            bot_stopped_at=rel(self.stopped),
            ttfb=MappingProxyType(dict(self.ttfb)),
            processing=MappingProxyType(dict(self.processing)),
            function_calls=tuple(self.calls),
            interrupted=self.interrupted,
            user_text=self.user_text,
            bot_text=self._bot_text(),
            barge_in_at=rel(barge_in.at),
            barge_in_to_interrupted_ms=barge_in.to_interrupted_ms,
            barge_in_to_bot_stopped_ms=barge_in.to_stopped_ms,
            bot_audio_after_barge_in_s=barge_in.audio_after_s,
        )


def _cut_off(turn: _Builder, name: str) -> bool:
    speaking = turn.speaking is not None and turn.stopped is None
    return speaking or (name == "on_bot_interrupted" and turn.answered)


def _when(mark: Mark) -> float:
    # Audio the user sent counts at its end: that is when the input ended.
    return mark.end if mark.name == USER_AUDIO else mark.at


def turns_from_marks(marks: Sequence[Mark], session_id: int, origin: float) -> tuple[Turn, ...]:
    """The turns of one session's ``marks``; ``origin``: the monotonic time ``*_at`` count from."""
    built: list[_Builder] = []
    current: _Builder | None = None
    previous: _Builder | None = None
    pending_text: str | None = None
    bot_speaking = False
    for mark in sorted(marks, key=_when):
        name = mark.name
        if name in _INPUT_ENDS or name in ("on_user_stopped_speaking", "on_user_input"):
            if current is None or current.answered:
                previous, current = current, _Builder(session_id, len(built) + 1, origin)
                built.append(current)
                current.user_text, pending_text = pending_text, None
                current.overrun = bot_speaking
            current.take_input(mark, _when(mark))
        if name in ("on_bot_started_speaking", "on_bot_stopped_speaking"):
            bot_speaking = name == "on_bot_started_speaking"
            if current is not None:
                current.overrun = False
        if name in _USER_TEXT and mark.text and mark.final is not False:
            if current is not None and current.speaking is None:
                current.user_text = mark.text
            else:
                pending_text = mark.text
        elif current is None:
            continue
        elif name in _ANSWERS:
            if not (current.overrun and name in _BOT_AUDIO):  # not the previous answer's
                current.take_answer(mark)
        elif name == "on_metrics":
            current.take_metrics(mark)
        elif name == "on_bot_stopped_speaking":
            if current.speaking is not None and current.stopped is None:
                current.stopped = mark.at
        elif name in ("on_bot_interrupted", "on_user_started_speaking"):
            # An answer being cut off belongs to the turn that was answering.
            target = current if current.answered else previous
            if target is not None and _cut_off(target, name):
                target.interrupted = True
    ordered = sorted(marks, key=lambda m: m.at)
    for builder in built:
        if builder.input_began is not None:
            builder.barge_in = barge_in(ordered, builder.input_began)
    turns = (builder.turn() for builder in built)
    return tuple(turn for turn in turns if turn is not None)


@dataclass(frozen=True, slots=True)
class BargeIn:
    """What a barge-in did: its moment and the bot's reaction (see :func:`barge_in`)."""

    at: float | None
    """When the user's input began (monotonic)."""
    to_interrupted_ms: float | None
    """To the first ``bot-interrupted`` after it."""
    to_stopped_ms: float | None
    """To the first ``bot-stopped-speaking`` after it."""
    audio_after_s: float | None
    """Seconds of audible bot audio that arrived from it until the bot stopped speaking."""


def barge_in(marks: Sequence[Mark], began: float) -> BargeIn | None:
    """The barge-in of user input that began at ``began``, or None if the bot was not
    speaking then (``bot-started-speaking`` with no ``bot-stopped-speaking`` since).

    ``marks`` in time order. A pure function of the marks: the bot's audio after it is the
    audio runs that began from ``began`` until the bot stopped speaking (or, if it never
    said so, until it next started speaking), their seconds added.
    """
    speaking = False
    for mark in marks:
        if mark.at > began:
            break
        if mark.name == "on_bot_started_speaking":
            speaking = True
        elif mark.name == "on_bot_stopped_speaking":
            speaking = False
    if not speaking:
        return None
    interrupted = stopped = restarted = None
    for mark in marks:
        if mark.at < began:
            continue
        if mark.name == "on_bot_interrupted" and interrupted is None:
            interrupted = mark.at
        elif mark.name == "on_bot_stopped_speaking" and stopped is None:
            stopped = mark.at
        elif mark.name == "on_bot_started_speaking" and restarted is None:
            restarted = mark.at
    until = stopped if stopped is not None else restarted
    audio = 0.0
    for name in ("on_bot_audio", "on_bot_tts_audio"):  # the transport's audio, else TTS's
        runs = [m for m in marks if m.name == name and m.at >= began]
        audio = sum(m.seconds or 0.0 for m in runs if until is None or m.at <= until)
        if runs:
            break

    def since(at: float | None) -> float | None:
        return None if at is None else round((at - began) * 1000, 3)

    return BargeIn(began, since(interrupted), since(stopped), round(audio, 6))


def turns_from_events(events: Iterable[ClientEvent]) -> tuple[Turn, ...]:
    """The turns of every session in a recorded ``client.events()`` stream, session by session.

    ``*_at`` count from each session's first event in the stream.
    """
    by_session: dict[int, list[ClientEvent]] = {}
    for event in events:
        by_session.setdefault(event.session_id, []).append(event)
    turns: list[Turn] = []
    for session_id, session_events in sorted(by_session.items()):
        marks = timeline_of_events(session_events).marks()
        turns += turns_from_marks(marks, session_id, session_events[0].at)
    return tuple(turns)
