"""A client-side transcriber: the bot's spoken audio of a turn as text.

Optional. In audio modality a scenario's ``response`` is the bot's own words; a user who
wants what the bot *said out loud* checked instead plugs in a :data:`Transcriber`, a plain
callable ``(frames) -> str`` (any speech-to-text: a local model, a cloud API). It is called
in a worker thread, once per utterance of the bot: the ``on_bot_audio`` frames from
``bot-started-speaking`` to ``bot-stopped-speaking``. An utterance interrupted
(``bot-interrupted`` or ``user-started-speaking``) before it ends is not transcribed: it is
not the answer to what interrupted it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias

from lifecycle.media import AudioFrame

if TYPE_CHECKING:
    from lifecycle.dispatch import ClientEvent

__all__ = ["HEARD_EVENTS", "MAX_HEARD_S", "BotSpeech", "Hearing", "Transcriber", "transcribe"]

Transcriber: TypeAlias = Callable[[Sequence[AudioFrame]], str]
"""``transcriber(frames) -> text``: the bot's audio of one utterance (s16le frames as they
arrived, the transport's rate and channels) as text. Synchronous; it runs in a thread."""

MAX_HEARD_S: Final = 600.0
"""Seconds of one utterance kept for the transcriber (later frames are dropped)."""
HEARD_EVENTS: Final = (
    "on_bot_started_speaking",
    "on_bot_stopped_speaking",
    "on_bot_interrupted",
    "on_user_started_speaking",
    "on_bot_audio",
)
"""The client events :class:`BotSpeech` reads."""
_INTERRUPTIONS: Final = frozenset({"on_bot_interrupted", "on_user_started_speaking"})


class BotSpeech:
    """Collects the bot's utterances from its events, in arrival order."""

    def __init__(self) -> None:
        self._frames: list[AudioFrame] | None = None  # None: the bot is not speaking
        self._seconds = 0.0
        self.started_at = 0.0
        """When the utterance being (or last) collected began (the event's ``at``)."""

    def feed(self, event: ClientEvent) -> list[AudioFrame] | None:
        """Take one event; the frames of an utterance when this event ends one, else None."""
        name = event.name
        if name == "on_bot_started_speaking":
            self._frames, self._seconds, self.started_at = [], 0.0, event.at
        elif name in _INTERRUPTIONS:
            self._frames = None
        elif name == "on_bot_audio" and self._frames is not None:
            frame = event.data
            if isinstance(frame, AudioFrame) and self._seconds < MAX_HEARD_S:
                self._frames.append(frame)
                self._seconds += frame.duration
        elif name == "on_bot_stopped_speaking" and self._frames is not None:
            frames, self._frames = self._frames, None
            return frames
        return None


async def transcribe(transcriber: Transcriber, frames: Sequence[AudioFrame]) -> str:
    """``transcriber(frames)`` off the event loop; a non-text result is a ``TypeError``."""
    text = await asyncio.to_thread(transcriber, frames)
    if not isinstance(text, str):
        raise TypeError(f"a transcriber returns text (str), not {type(text).__name__}")
    return text


class Hearing:
    """Transcribes the bot's utterances as their events arrive, one after the other.

    ``on_text(text, started_at, ended_at)`` gets each one's text in order; ``on_error(exc)``
    what the transcriber raised instead.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        on_text: Callable[[str, float, float], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._transcriber, self._on_text, self._on_error = transcriber, on_text, on_error
        self._speech = BotSpeech()
        self._last: asyncio.Task[None] | None = None

    def feed(self, event: ClientEvent) -> None:
        """Take one client event (call from the running loop)."""
        frames = self._speech.feed(event)
        if frames is not None:
            self._last = asyncio.create_task(
                self._hear(self._last, frames, self._speech.started_at, event.at)
            )

    async def _hear(
        self,
        before: asyncio.Task[None] | None,
        frames: list[AudioFrame],
        started_at: float,
        ended_at: float,
    ) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)  # texts keep their order
        try:
            text = await transcribe(self._transcriber, frames)
        except Exception as exc:  # the user's callable: reported, never a crash of the run
            self._on_error(exc)
            return
        self._on_text(text, started_at, ended_at)

    async def aclose(self) -> None:
        """Stop: a transcription still running is cancelled (its thread finishes alone)."""
        if self._last is not None:
            self._last.cancel()
            await asyncio.gather(self._last, return_exceptions=True)
