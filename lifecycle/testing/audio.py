"""Audio for the testing toolkit: WAV files in and out, resampling, real-time pacing.

WAV I/O is soundfile (libsndfile, shipped inside its wheels) and resampling is soxr (the SoX
resampler, wheels for every CPython); both work on numpy arrays. Neither is imported by
``import lifecycle``: they belong to the ``testing`` extra.

:func:`prepare` turns a WAV file (any rate, any channel count) or a sequence of
:class:`~lifecycle.media.AudioFrame` s into 20 ms frames of the rate and layout a transport
sends; :func:`stream_to` sends them paced in real time, as a microphone would, followed by
silence; :class:`WavRecorder` writes frames to a WAV file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from os import PathLike
from typing import TYPE_CHECKING, Any, Final

from lifecycle.media import AudioFrame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from lifecycle.transport import Transport

__all__ = [
    "FRAME_MS",
    "SEND_LAG",
    "WEBSOCKET_RATE",
    "WavRecorder",
    "acceptable",
    "input_format",
    "prepare",
    "read_file",
    "silence",
    "stream_to",
    "to_mono",
]

FRAME_MS: Final = 20
"""The length of each frame sent (what browsers and Pipecat's transports use)."""
WEBSOCKET_RATE: Final = 16000
"""What Pipecat's WebSocket bots expect from the microphone by default (16 kHz mono)."""

SEND_LAG: ContextVar[Callable[[float], None] | None] = ContextVar(
    "pipecat_lifecycle_send_lag", default=None
)
"""When set, :func:`stream_to` reports here how late each frame went out (ms behind its
schedule). A load run sets it for each session's task, so speech sent by any layer (its own
body, a scenario's audio turns, ``Conversation.play``) is measured the same way."""

AudioSource = str | PathLike[str] | Iterable[AudioFrame]
"""What :func:`prepare` takes: a WAV file's path, or frames."""


def input_format(transport: Transport) -> tuple[int, int]:
    """``(sample_rate, num_channels)`` the transport sends to the bot.

    SmallWebRTC sends its outgoing track at 48 kHz mono (aiortc's Opus input); every other
    transport (WebSocket) carries the PCM as given, so it gets what a Pipecat WebSocket bot
    expects: 16 kHz mono.
    """
    try:
        from transports.small_webrtc import SmallWebRTCTransport
        from transports.webrtc_media import OUT_RATE
    except ImportError:  # no aiortc: cannot be a SmallWebRTC transport either
        return WEBSOCKET_RATE, 1
    if isinstance(transport, SmallWebRTCTransport):
        return OUT_RATE, 1
    return WEBSOCKET_RATE, 1


RATE_RANGE: Final = (8000, 192_000)
"""Sample rates a frame may have (what any bot or microphone sends)."""
MAX_CHANNELS: Final = 8
MAX_FILE_SECONDS: Final = 3600.0
"""The longest audio file read."""


def acceptable(frame: object) -> bool:
    """Whether ``frame`` is an :class:`AudioFrame` of a format a bot can send.

    A rate outside :data:`RATE_RANGE`, no channels or over :data:`MAX_CHANNELS` is not:
    resampling 1 Hz audio to 16 kHz would take memory without bound.
    """
    return (
        isinstance(frame, AudioFrame)
        and isinstance(frame.pcm, bytes | bytearray)
        and isinstance(frame.sample_rate, int)
        and isinstance(frame.num_channels, int)
        and RATE_RANGE[0] <= frame.sample_rate <= RATE_RANGE[1]
        and 1 <= frame.num_channels <= MAX_CHANNELS
    )


def to_mono(frame: AudioFrame, sample_rate: int) -> npt.NDArray[np.float32]:
    """One frame as mono float32 samples at ``sample_rate`` (channels averaged, soxr)."""
    return _convert(_to_float(frame), frame.sample_rate, sample_rate, 1)[:, 0]


def _to_float(frame: AudioFrame) -> npt.NDArray[np.float32]:
    """One frame as float32 samples, shape (samples, channels)."""
    import numpy as np

    channels = max(1, frame.num_channels)
    usable = len(frame.pcm) // (2 * channels) * 2 * channels
    samples = np.frombuffer(frame.pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels)


def _convert(
    data: npt.NDArray[np.float32], rate: int, out_rate: int, out_channels: int
) -> npt.NDArray[np.float32]:
    """Downmix/upmix ``data`` (samples, channels) and resample it to ``out_rate``."""
    import numpy as np
    import soxr

    mono = data.mean(axis=1, dtype=np.float32)
    if rate != out_rate:
        mono = np.asarray(soxr.resample(mono, rate, out_rate), dtype=np.float32)
    return np.repeat(mono[:, None], out_channels, axis=1)


def _to_pcm(data: npt.NDArray[np.float32]) -> bytes:
    import numpy as np

    clipped = np.clip(data, -1.0, 32767 / 32768)
    return bytes((clipped * 32768.0).round().astype("<i2").tobytes())


def _chunk(pcm: bytes, rate: int, channels: int) -> list[AudioFrame]:
    step = rate * FRAME_MS // 1000 * 2 * channels
    return [
        AudioFrame(pcm=pcm[i : i + step], sample_rate=rate, num_channels=channels)
        for i in range(0, len(pcm), step)
    ]


def prepare(source: AudioSource, sample_rate: int, num_channels: int = 1) -> list[AudioFrame]:
    """``source`` as 20 ms s16le frames at ``sample_rate`` with ``num_channels`` channels.

    A path is read with soundfile (WAV, and whatever else libsndfile reads: FLAC, OGG...),
    channels are averaged to mono, then resampled with soxr. Frames are converted the same
    way, each run of one format as a whole (no clicks at frame edges).
    """
    import numpy as np

    if isinstance(source, (str, PathLike)):
        runs: list[tuple[Any, int]] = [read_file(source)]
    else:
        runs = []
        for frame in source:
            if not acceptable(frame):
                raise ValueError(
                    f"not an audio frame of {RATE_RANGE[0]}-{RATE_RANGE[1]} Hz and 1-"
                    f"{MAX_CHANNELS} channels: {frame!r:.80}"
                )
            samples = _to_float(frame)
            last = runs[-1] if runs else None
            if last is not None and (last[1], last[0].shape[1]) == (
                frame.sample_rate,
                samples.shape[1],
            ):
                runs[-1] = (np.concatenate([runs[-1][0], samples]), frame.sample_rate)
            else:
                runs.append((samples, frame.sample_rate))
    pcm = b"".join(
        _to_pcm(_convert(data, rate, sample_rate, num_channels)) for data, rate in runs if len(data)
    )
    return _chunk(pcm, sample_rate, num_channels)


def read_file(
    path: str | PathLike[str], max_seconds: float = MAX_FILE_SECONDS
) -> tuple[npt.NDArray[np.float32], int]:
    """An audio file's samples (float32, shape (samples, channels)) and its rate.

    Whatever libsndfile reads (WAV, FLAC, OGG...). ``ValueError`` naming the file for one
    that is missing, unreadable, empty, of a rate outside :data:`RATE_RANGE`, or longer
    than ``max_seconds`` (checked before it is read, so memory stays bounded).
    """
    import soundfile

    try:
        info = soundfile.info(path)
        if not RATE_RANGE[0] <= info.samplerate <= RATE_RANGE[1]:
            raise ValueError(f"a sample rate of {info.samplerate} Hz")
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise ValueError(f"{info.channels} channels")
        if info.frames > max_seconds * info.samplerate:
            raise ValueError(f"longer than {max_seconds:g} s")
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, ValueError, TypeError, soundfile.LibsndfileError) as exc:
        raise ValueError(f"{path}: not usable audio: {exc}") from None
    if not len(data):
        raise ValueError(f"{path}: holds no audio")
    return data, int(rate)


def silence(seconds: float, sample_rate: int, num_channels: int = 1) -> list[AudioFrame]:
    """``seconds`` of digital silence as 20 ms frames."""
    samples = round(seconds * sample_rate)
    return _chunk(b"\x00\x00" * samples * num_channels, sample_rate, num_channels)


async def stream_to(
    send: Callable[[AudioFrame], Awaitable[None]],
    frames: Sequence[AudioFrame],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Send ``frames`` one after another in real time: frame ``n`` leaves at its start time.

    Pacing follows the clock, not the sum of sleeps, so a slow send does not make the audio
    drift behind; it never sends ahead of real time either (a bot hears what a microphone
    would deliver). With :data:`SEND_LAG` set, each frame's lag (ms from its scheduled time
    until its send returned) is reported there.
    """
    lag = SEND_LAG.get()
    start = clock()
    elapsed = 0.0
    for frame in frames:
        due = start + elapsed
        wait = due - clock()
        if wait > 0:
            await sleep(wait)
        await send(frame)
        if lag is not None:
            lag((clock() - due) * 1000.0)
        elapsed += frame.duration


class WavRecorder:
    """Writes audio frames to a 16-bit WAV file, opened at the first frame.

    The file takes the first frame's rate and channel count; later frames of another format
    are converted to it (soxr). :meth:`close` is idempotent; a recorder that never got a
    frame still leaves a valid, empty WAV file (16 kHz mono).
    """

    def __init__(self, path: str | PathLike[str]) -> None:
        """Record to ``path`` (created or truncated at the first frame or at close)."""
        self.path = path
        self.frames = 0
        """How many frames were written."""
        self._file: Any = None
        self._format: tuple[int, int] | None = None
        self._closed = False

    def write(self, frame: AudioFrame) -> None:
        """Append one frame (ignored once closed, or of a format no bot sends: see
        :func:`acceptable`)."""
        if self._closed or not acceptable(frame) or len(frame.pcm) < 2 * frame.num_channels:
            return  # an odd format, or not one whole sample: it must not set the file's
        if self._file is None:
            self._open(frame.sample_rate, frame.num_channels)
        assert self._format is not None
        rate, channels = self._format
        data = _to_float(frame)
        if (frame.sample_rate, frame.num_channels) != self._format:
            data = _convert(data, frame.sample_rate, rate, channels)
        self._file.write(data)
        self.frames += 1

    def _open(self, rate: int, channels: int) -> None:
        import soundfile

        self._file = soundfile.SoundFile(
            self.path, mode="w", samplerate=rate, channels=channels, subtype="PCM_16"
        )
        self._format = (rate, channels)

    def close(self) -> None:
        """Finish the file (writes its header); later frames are ignored."""
        if self._closed:
            return
        if self._file is None:
            self._open(WEBSOCKET_RATE, 1)
        self._closed = True
        self._file.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed
