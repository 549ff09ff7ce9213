"""``Conversation``: drive a READY client like a user and assert what the bot does, in order.

Built on the client's event stream: the stream opens when the conversation is
built, so nothing the bot sends afterwards is missed, however late ``expect`` is awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from lifecycle.media import AudioFrame
from lifecycle.testing import audio
from lifecycle.testing.event_names import resolve_event_name
from lifecycle.testing.recording import Recording, TwoSidedWav

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import ClientEvent, EventStream
    from lifecycle.testing.hearing import Transcriber
    from lifecycle.testing.voice import Voice

__all__ = ["DEFAULT_WITHIN", "Conversation", "event_text", "speech_frames"]

DEFAULT_WITHIN: Final = 10.0
"""Seconds ``expect`` waits by default."""
TRAILING_SILENCE: Final = 1.0
"""Seconds of silence ``play`` and a spoken ``say`` send after the audio, as a microphone
keeps sending."""
SEND_AFTER_MAX_WAIT: Final = 30.0
"""Seconds ``say_after`` waits for its event by default (pipecat.evals' send_after limit)."""
MAX_PAUSE_MS: Final = 600_000
"""The longest ``pause_ms`` in a spoken list."""
_SHOWN_EVENTS: Final = 40  # the most events a failure lists (the latest ones)
_SHOWN_TEXT: Final = 80
_QUIET: Final = frozenset(
    {
        "on_bot_audio",
        "on_bot_tts_audio",
        "on_user_audio_level",
        "on_bot_audio_level",
        "on_transition",
        "on_transport_state_changed",
    }
)  # not listed one by one in a failure (only counted): they would bury the rest
_ENDS_SESSION: Final = "on_disconnected"
_SURVIVES_END: Final = frozenset(
    {"on_disconnected", "on_bot_disconnected", "on_transition", "on_transport_state_changed"}
    | {"on_error"}
)


def event_text(data: Any) -> str | None:
    """The text an event carries (``.text`` of the typed events, ``"text"`` of a mapping)."""
    text = data.get("text") if isinstance(data, Mapping) else getattr(data, "text", None)
    return text if isinstance(text, str) else None


def _squash(text: str) -> str:
    return " ".join(text.split())


def _contains(text: str | None, needle: str) -> bool:
    """Whether ``needle`` is in ``text``, ignoring differences in whitespace (as pipecat.evals)."""
    return text is not None and _squash(needle) in _squash(text)


class Conversation:
    """A user's side of a conversation with a READY client's bot.

    ``say`` / ``say_after`` / ``play`` / ``press`` act as the user (``say(..., speak=True)``
    speaks through ``voice``, by default the local voice of the ``voice`` extra);
    ``expect`` asserts the next matching event, in order; ``hear`` transcribes the bot's next
    utterance with ``transcriber`` (:mod:`lifecycle.testing.hearing`, optional); ``record``
    writes the bot's audio (or both sides) to a WAV file. Use it as
    ``async with Conversation(client) as conv:`` (or call :meth:`close`): that closes its
    event stream and any recording. It keeps at most ``history`` events.
    """

    def __init__(
        self,
        client: PipecatClient,
        *,
        voice: Voice | None = None,
        transcriber: Transcriber | None = None,
        history: int = 10_000,
    ) -> None:
        """Start watching ``client``'s events (from now on)."""
        self._client = client
        self._voice = voice
        self._transcriber = transcriber
        self._stream: EventStream = client.events(maxsize=history)
        self._seen: deque[ClientEvent] = deque(maxlen=history)
        self._first = 0  # absolute index of _seen[0]
        self._cursor = 0  # absolute index where the next expectation looks from
        self._acted_at = self._began_at = time.monotonic()
        self._acted = "the conversation started"
        self._matched_at: float | None = None
        self._recordings: list[Recording] = []
        self._two_sided: list[TwoSidedWav] = []

    # ------------------------------------------------------------------ the user's side
    async def say(
        self,
        text: str | Sequence[str | int],
        *,
        speak: bool = False,
        run_immediately: bool = True,
        audio_response: bool = True,
        trailing_silence: float = TRAILING_SILENCE,
    ) -> str | None:
        """Say ``text`` as the user: typed (RTVI ``send-text``), or spoken with ``speak``.

        Typed, it returns the message id. Spoken, the conversation's voice synthesizes it
        and it goes out as the microphone, paced in real time, then ``trailing_silence``
        seconds of silence (so the bot's VAD hears the end of the turn); it returns None
        once all of it is sent, and ``within`` of the next ``expect`` counts from the end of
        the speech. ``text`` may be a list of texts and pauses (``int`` milliseconds of
        silence, as pipecat.evals' ``pause_ms``): spoken as one stretch of audio, typed as
        the texts joined by spaces.
        """
        parts = _parts(text)
        shown = " ".join(p for p in parts if isinstance(p, str))
        self._began_at = time.monotonic()
        if not speak:
            msg_id = await self._client.send_text(
                shown, run_immediately=run_immediately, audio_response=audio_response
            )
            self._acted_now(f"say({shown[:_SHOWN_TEXT]!r})")
            return msg_id
        if trailing_silence < 0:
            raise ValueError("trailing_silence must be >= 0")
        rate, channels = audio.input_format(self._client.transport)
        voice = self._voice
        if voice is None:
            from lifecycle.testing.voice import local_voice

            # Loading espeak-ng's voice data takes a moment: off the event loop.
            voice = self._voice = await asyncio.to_thread(local_voice)
        frames = await asyncio.to_thread(speech_frames, voice, parts, rate, channels)
        await audio.stream_to(self._send_audio, frames)
        self._acted_now(f"say({shown[:_SHOWN_TEXT]!r}, speak=True)")
        await audio.stream_to(self._send_audio, audio.silence(trailing_silence, rate, channels))
        return None

    async def say_after(
        self,
        event_name: str,
        delay_ms: float,
        text: str | Sequence[str | int],
        *,
        speak: bool = False,
        within: float = SEND_AFTER_MAX_WAIT,
    ) -> str | None:
        """Say ``text`` ``delay_ms`` after ``event_name``: a barge-in (pipecat.evals' send_after).

        The event is the latest ``event_name`` since the last ``say``/``play``/``press``
        began, or, when none came yet, the next one (waited for up to ``within`` seconds,
        else ``AssertionError`` listing the events seen). Then, at the event's time plus
        ``delay_ms``, it says ``text`` as :meth:`say` does (``speak`` for speech). It does not
        move where the next ``expect`` looks from. ``event_name`` as :meth:`expect` takes it.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not the library's frames
        event_name = resolve_event_name(event_name)
        if not 0 <= delay_ms < float("inf"):
            raise ValueError("delay_ms must be a finite number >= 0")
        if not within > 0 or within == float("inf"):
            raise ValueError("within must be a positive, finite number of seconds")
        since, deadline = self._began_at, time.monotonic() + within
        seen = await self._latest(event_name, since, deadline)
        if seen is None:
            raise AssertionError(
                self._failure(f"no {event_name} to say after within {within:g}s", since, within)
            )
        wait = seen.at + delay_ms / 1000 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # the barge-in's own timing, not a wait for an event
        return await self.say(text, speak=speak)

    async def _latest(self, name: str, since: float, deadline: float) -> ClientEvent | None:
        """The latest ``name`` event at or after ``since`` already arrived, else the next one."""
        index = self._first
        latest: ClientEvent | None = None
        while True:
            now = time.monotonic()
            event = await self._event_at(index, now if latest is not None else deadline)
            if event is None:
                return latest
            index = max(index, self._first) + 1
            if event.name == name and event.at >= since:
                latest = event

    async def _send_audio(self, frame: AudioFrame) -> None:
        """Send one frame as the microphone, and put it on every two-sided recording."""
        at = time.monotonic()  # as the client's trace takes it, first thing in send_audio
        await self._client.send_audio(frame)
        for recorder in self._two_sided:
            recorder.caller(frame, at)

    async def play(
        self,
        source: str | PathLike[str] | Iterable[AudioFrame],
        *,
        trailing_silence: float = TRAILING_SILENCE,
    ) -> None:
        """Send a WAV file (or frames) as the user's microphone, in real time.

        The audio is converted to what the transport sends (WebSocket: 16 kHz mono,
        SmallWebRTC: 48 kHz mono) and sent in 20 ms frames at the pace of real time, then
        ``trailing_silence`` seconds of silence follow, as a microphone keeps sending (a
        bot's VAD hears the end of speech in it). ``within`` of the next ``expect`` counts
        from the end of the audio, before the silence.
        """
        if trailing_silence < 0:
            raise ValueError("trailing_silence must be >= 0")
        rate, channels = audio.input_format(self._client.transport)
        self._began_at = time.monotonic()
        frames = audio.prepare(source, rate, channels)
        await audio.stream_to(self._send_audio, frames)
        self._acted_now(f"play({source if isinstance(source, (str, PathLike)) else 'frames'})")
        await audio.stream_to(self._send_audio, audio.silence(trailing_silence, rate))

    async def press(self, keys: str | Iterable[str]) -> None:
        """Press DTMF keys (``0``-``9``, ``*``, ``#``); see ``PipecatClient.send_dtmf``."""
        buttons = keys if isinstance(keys, str) else list(keys)
        self._began_at = time.monotonic()
        await self._client.send_dtmf(buttons)
        self._acted_now(f"press({''.join(buttons)!r})")

    def _acted_now(self, what: str) -> None:
        self._acted_at = time.monotonic()
        self._acted = what

    # ------------------------------------------------------------------ expectations
    async def expect(
        self,
        event_name: str,
        *,
        text_contains: str | None = None,
        text_excludes: str | None = None,
        within: float = DEFAULT_WITHIN,
        predicate: Callable[[Any], object] | None = None,
    ) -> Any:
        """Wait for the next ``event_name`` event that matches; returns its data.

        Expectations are met in order: each looks only at events after the previous one's
        match. ``within`` (seconds) counts from the later of the last ``say``/``play``/
        ``press`` and the previous match. An event matches when its text holds
        ``text_contains`` (whitespace-insensitive) and ``predicate(data)`` is true; a
        matching event whose text holds ``text_excludes`` fails at once. Raises
        ``AssertionError`` (expected event, budget, and the events seen with their text and
        time since the anchor) when nothing matches in time or the session ends first.
        ``event_name`` may also be pipecat.evals' name (:mod:`lifecycle.testing.event_names`).
        """
        __tracebackhide__ = True  # pytest shows the test's line, not the library's frames
        event_name = resolve_event_name(event_name)
        if not within > 0 or within == float("inf"):
            raise ValueError("within must be a positive, finite number of seconds")
        anchor = max(self._acted_at, self._matched_at or 0.0)
        deadline = anchor + within
        wanted = _describe(event_name, text_contains, predicate)
        index = self._cursor
        while True:
            event = await self._event_at(index, deadline)
            if event is None or event.at > deadline:
                raise AssertionError(
                    self._failure(f"no {wanted} within {within:g}s", anchor, within)
                )
            index += 1
            if event.name == event_name:
                text = event_text(event.data)
                if (text_contains is None or _contains(text, text_contains)) and (
                    predicate is None or predicate(event.data)
                ):
                    if text_excludes is not None and _contains(text, text_excludes):
                        raise AssertionError(
                            self._failure(
                                f"{wanted} arrived but its text {text!r} holds the excluded "
                                f"{text_excludes!r}",
                                anchor,
                                within,
                            )
                        )
                    self._cursor = index
                    self._matched_at = time.monotonic()
                    return event.data
            if event.name == _ENDS_SESSION and event_name not in _SURVIVES_END:
                raise AssertionError(
                    self._failure(f"the session ended before {wanted}", anchor, within)
                )

    async def hear(
        self, *, text_contains: str | None = None, within: float = DEFAULT_WITHIN
    ) -> str:
        """The bot's next utterance (``bot-started-speaking`` to ``bot-stopped-speaking``)
        as the conversation's ``transcriber`` hears its audio; met in order, as ``expect``.

        ``within`` counts as for ``expect``, to the end of the utterance; one interrupted
        before its end is skipped. ``text_contains`` is checked as ``expect`` does. Raises
        ``AssertionError`` when no utterance ends in time or its text does not match, and
        ``ValueError`` when the conversation has no transcriber.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not the library's frames
        from lifecycle.testing.hearing import BotSpeech, transcribe

        if self._transcriber is None:
            raise ValueError("hear needs a transcriber: Conversation(client, transcriber=...)")
        if not within > 0 or within == float("inf"):
            raise ValueError("within must be a positive, finite number of seconds")
        anchor = max(self._acted_at, self._matched_at or 0.0)
        deadline, speech, index = anchor + within, BotSpeech(), self._cursor
        while True:
            event = await self._event_at(index, deadline)
            if event is None or event.at > deadline:
                raise AssertionError(
                    self._failure(f"no bot utterance ended within {within:g}s", anchor, within)
                )
            index += 1
            frames = speech.feed(event)
            if frames is not None:
                break
            if event.name == _ENDS_SESSION:
                raise AssertionError(
                    self._failure("the session ended before a bot utterance", anchor, within)
                )
        self._cursor, self._matched_at = index, time.monotonic()
        text = await transcribe(self._transcriber, frames)
        if text_contains is not None and not _contains(text, text_contains):
            raise AssertionError(f"the bot said {text[:_SHOWN_TEXT]!r}, not {text_contains!r}")
        return text

    async def _event_at(self, index: int, deadline: float) -> ClientEvent | None:
        """The event at absolute ``index``, waiting for it until ``deadline``; None on timeout."""
        index = max(index, self._first)
        while index >= self._first + len(self._seen):
            # Past the deadline this still takes what the stream already holds (timeout(0)
            # fires only once the stream would have to wait).
            remaining = max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(remaining):
                    event = await anext(self._stream)
            except (TimeoutError, StopAsyncIteration):
                return None
            if len(self._seen) == self._seen.maxlen:
                self._first += 1
            self._seen.append(event)
        return self._seen[index - self._first]

    @property
    def events(self) -> list[ClientEvent]:
        """The events taken from the stream so far (the latest ``history``), in order."""
        return list(self._seen)

    def _failure(self, headline: str, anchor: float, within: float) -> str:
        seen = list(self._seen)[max(0, self._cursor - self._first) :]
        shown = [e for e in seen if e.name not in _QUIET]
        quiet = len(seen) - len(shown)
        lines = [
            f"{headline} (budget {within:g}s from {self._anchor_name(anchor)})",
            f"events since the previous match ({len(shown)}, ms since the anchor):",
        ]
        if len(shown) > _SHOWN_EVENTS:
            lines.append(f"  ... {len(shown) - _SHOWN_EVENTS} earlier events")
        for event in shown[-_SHOWN_EVENTS:]:
            text = event_text(event.data)
            shown_text = "" if text is None else f"  {text[:_SHOWN_TEXT]!r}"
            lines.append(f"  {1000 * (event.at - anchor):+8.0f} ms  {event.name}{shown_text}")
        if not shown:
            lines.append("  (none)")
        if quiet:
            lines.append(f"  (+{quiet} audio/level/transition events not listed)")
        return "\n".join(lines)

    def _anchor_name(self, anchor: float) -> str:
        if self._matched_at is not None and anchor == self._matched_at:
            return "the previous match"
        return self._acted

    # ------------------------------------------------------------------ recording
    def record(self, path: str | PathLike[str], *, both: bool = False) -> None:
        """From now on write the bot's audio (``on_bot_audio``) to the WAV file ``path``.

        With ``both``, a stereo WAV: the caller (what this conversation sends) on the left,
        the bot on the right, on one timeline whose sample 0 is the session's first traced
        moment (so a sample's offset over the rate is the trace's timestamp), with silence
        where nobody spoke. The file is closed when the session ends (or at :meth:`close`).
        A frame of a format no bot sends is dropped, never an error. Call it from a running
        event loop.
        """
        stream = self._client.events("on_bot_audio", _ENDS_SESSION)
        recorder: audio.WavRecorder | TwoSidedWav
        if both:
            recorder = TwoSidedWav(path, self._session_origin())
            self._two_sided.append(recorder)
        else:
            recorder = audio.WavRecorder(path)
        self._recordings.append(Recording(recorder, stream, _ENDS_SESSION))

    def _session_origin(self) -> float:
        session_id = self._client.session_id
        for record in self._client.trace.sessions():
            if record.session_id == session_id:
                return record.started_at
        return time.monotonic()

    # ------------------------------------------------------------------ closing
    async def close(self) -> None:
        """Stop watching; finish every recording (with the audio already received). Idempotent."""
        self._stream.close()
        for recording in self._recordings:
            await recording.finish()
        self._two_sided.clear()

    async def __aenter__(self) -> Self:
        """The conversation itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close it."""
        await self.close()


def _parts(text: str | Sequence[str | int]) -> list[str | int]:
    """``text`` as a list of texts and pauses (ms), checked."""
    if isinstance(text, str):
        return [text]
    parts = list(text)
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, str | int):
            raise ValueError(f"say takes texts and pauses in ms (int), not {part!r:.60}")
        if isinstance(part, int) and not 0 < part <= MAX_PAUSE_MS:
            raise ValueError(f"a pause is 1 to {MAX_PAUSE_MS} ms, not {part}")
    return parts


def speech_frames(
    voice: Voice, parts: Sequence[str | int], rate: int, channels: int
) -> list[AudioFrame]:
    """``parts`` (texts, and pauses in ms) spoken by ``voice`` with silences between, as
    20 ms frames of ``rate`` and ``channels`` (blocking: run it in a thread)."""
    frames: list[AudioFrame] = []
    for part in parts:
        if isinstance(part, int):
            frames += audio.silence(part / 1000, rate, channels)
            continue
        spoken = voice(part)
        if spoken:
            frames += audio.prepare(spoken, rate, channels)
    return frames


def _describe(name: str, text_contains: str | None, predicate: object) -> str:
    parts = [name]
    if text_contains is not None:
        parts.append(f"with text containing {text_contains!r}")
    if predicate is not None:
        parts.append("matching the predicate")
    return " ".join(parts)
