"""Two-sided recordings: the caller on the left channel, the bot on the right, one timeline.

:class:`TwoSidedWav` places every frame at the moment it was sent or received, counted from
an ``origin`` (a session's first traced moment, so sample offsets are the trace's timestamps
times the rate), with silence where nobody spoke. A side's frames play one after another, as
a listener hears them (a bot sends its audio in bursts, a busy loop sends late), and a frame
that comes over 40 ms after where its side's audio ended starts exactly at its timestamp.
Memory is bounded: all but the last few seconds are written to the file as it goes, and
the file stops at ``max_seconds``. Frames of a format no bot sends (a rate outside
8-192 kHz, no channels or more than 8) are dropped, counted in :attr:`TwoSidedWav.dropped`.

:class:`Recording` follows a client's bot audio into a recorder until the session ends;
:meth:`Recording.finish` never raises for what the bot sent.
"""

from __future__ import annotations

import asyncio
from os import PathLike
from typing import TYPE_CHECKING, Any, Final, Protocol

from lifecycle.logs import describe_exception, get_logger
from lifecycle.media import AudioFrame
from lifecycle.testing.audio import acceptable, to_mono

if TYPE_CHECKING:
    from lifecycle.dispatch import ClientEvent, EventStream

__all__ = ["RECORD_RATE", "Recorder", "Recording", "TwoSidedWav"]

RECORD_RATE: Final = 16000
"""The sample rate of a two-sided recording."""
MAX_SECONDS: Final = 3600.0
"""The longest two-sided recording (later audio is not written)."""
_WINDOW_S: Final = 2.0  # audio older than this (behind the newest timestamp) goes to the file
_DRIFT_S: Final = 0.04  # a bot frame this close to where the last one ended plays on from it
_CALLER, _BOT = 0, 1
_NEVER: Final = -(1 << 62)  # the cursor of a side that sent nothing yet
_log = get_logger()


class Recorder(Protocol):
    """What :class:`Recording` writes the bot's audio to."""

    def write(self, frame: AudioFrame) -> None:
        """Take one frame of the bot's audio."""

    def close(self) -> None:
        """Finish the file."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""


class TwoSidedWav:
    """A stereo 16-bit WAV file: the caller left, the bot right, on the timeline of ``origin``."""

    def __init__(
        self,
        path: str | PathLike[str],
        origin: float,
        *,
        sample_rate: int = RECORD_RATE,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        """Open ``path`` for writing; ``origin``: the ``time.monotonic()`` of sample 0."""
        import numpy as np
        import soundfile

        self.path, self.origin, self.sample_rate = path, origin, sample_rate
        self.dropped = 0
        """Frames dropped for a format no bot sends."""
        self._file: Any = soundfile.SoundFile(
            path, mode="w", samplerate=sample_rate, channels=2, subtype="PCM_16", format="WAV"
        )
        self._buffer = np.zeros((0, 2), dtype=np.float32)
        self._base = 0  # absolute sample index of _buffer[0]: everything before is in the file
        self._cursor = [_NEVER, _NEVER]  # per channel: where its last frame ended
        self._limit = int(max_seconds * sample_rate)
        self._drift = int(_DRIFT_S * sample_rate)
        self._closed = False

    def caller(self, frame: AudioFrame, at: float) -> None:
        """The caller's frame sent at ``at`` (monotonic)."""
        self._put(_CALLER, frame, at)

    def bot(self, frame: AudioFrame, at: float) -> None:
        """The bot's frame received at ``at`` (monotonic)."""
        self._put(_BOT, frame, at)

    def write(self, frame: AudioFrame) -> None:
        """The bot's frame, received now (:class:`Recorder`)."""
        import time

        self.bot(frame, time.monotonic())

    def _put(self, channel: int, frame: AudioFrame, at: float) -> None:
        if self._closed:
            return
        if not acceptable(frame):
            self.dropped += 1
            return
        samples = to_mono(frame, self.sample_rate)
        ideal = round((at - self.origin) * self.sample_rate)
        # Audio plays on from where the side's last frame ended unless it starts anew later
        # (after a gap): jitter of a busy loop neither cuts nor stretches the speech.
        cursor = self._cursor[channel]
        start = max(cursor if ideal <= cursor + self._drift else ideal, self._base)
        end = min(start + len(samples), self._limit)
        if end > start:
            self._cover(end)
            self._buffer[start - self._base : end - self._base, channel] = samples[: end - start]
            self._cursor[channel] = max(self._cursor[channel], end)
        self._flush(ideal - int(_WINDOW_S * self.sample_rate))

    def _cover(self, end: int) -> None:
        """Grow the buffer with silence up to absolute sample ``end``."""
        import numpy as np

        missing = end - self._base - len(self._buffer)
        if missing > 0:
            grown = np.zeros((len(self._buffer) + max(missing, self.sample_rate), 2), np.float32)
            grown[: len(self._buffer)] = self._buffer
            self._buffer = grown

    def _flush(self, upto: int) -> None:
        """Write everything before absolute sample ``upto`` (silence where nothing came)."""
        upto = min(upto, self._limit)
        if upto <= self._base:
            return
        self._cover(upto)
        count = upto - self._base
        self._file.write(self._buffer[:count])
        self._buffer = self._buffer[count:].copy()
        self._base = upto

    def close(self) -> None:
        """Write the rest and finish the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush(max(self._cursor))
        finally:
            self._file.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed


class Recording:
    """Follows a client's bot audio (an event stream) into a recorder until the session ends."""

    def __init__(self, recorder: Recorder, stream: EventStream, end_event: str) -> None:
        """Start the task (call from a running loop); ``end_event`` closes the file."""
        self.recorder, self._stream, self._end = recorder, stream, end_event
        self._task = asyncio.get_running_loop().create_task(self._follow())

    def _take(self, event: ClientEvent) -> None:
        if event.name == self._end:
            self._close()
            return
        try:
            if isinstance(self.recorder, TwoSidedWav):
                self.recorder.bot(event.data, event.at)
            else:
                self.recorder.write(event.data)
        except Exception as exc:  # a broken frame or a full disk ends this recording only
            _log.warning_limited(
                "recording stopped", limit_key="recording", error=describe_exception(exc)
            )
            self._close()

    def _close(self) -> None:
        try:
            self.recorder.close()
        except Exception as exc:
            _log.warning_limited(
                "recording not finished", limit_key="recording", error=describe_exception(exc)
            )

    async def _follow(self) -> None:
        async for event in self._stream:
            self._take(event)
            if self.recorder.closed:
                self._stream.close()

    async def finish(self) -> None:
        """Stop following, write what the stream already holds, close the file."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        while not self.recorder.closed:
            try:
                # timeout(0) fires only if the stream would have to wait: nothing is left.
                async with asyncio.timeout(0):
                    event = await anext(self._stream)
            except (TimeoutError, StopAsyncIteration):
                break
            self._take(event)
        self._stream.close()
        self._close()
