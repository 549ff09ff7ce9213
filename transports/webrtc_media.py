"""Media shared by the SmallWebRTC transport and its testing bot (aiortc, PyAV).

An outgoing PCM audio track fed from a queue (silence when it is empty), the conversion of a
received aiortc frame to :class:`lifecycle.media.AudioFrame`, and the check that the optional
``webrtc`` extra is installed. aiortc and PyAV are imported only when a function here runs.

The outgoing track hands aiortc Opus packets it encoded itself (mono, 32 kbit/s, as a
browser's microphone), not PCM frames: aiortc would encode each frame in its thread pool
(a thread hop per 20 ms), upmix it to stereo at 96 kbit/s and compute its audio level in
Python. Silence is encoded until the encoder settles on a constant packet, which is then
sent as is: the peer gets the same bytes, paced as before, without an encode per frame.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import TYPE_CHECKING, Any, Final

from lifecycle.errors import TransportError
from lifecycle.media import AudioFrame

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

__all__ = [
    "INSTALL_HINT",
    "OUT_RATE",
    "OutgoingAudio",
    "WebRTCUnavailableError",
    "require_aiortc",
    "to_audio_frame",
]

INSTALL_HINT: Final = 'pip install "pipecat-lifecycle[webrtc]"'
"""How to get the optional WebRTC dependencies."""

OUT_RATE: Final = 48000
"""The rate of the outgoing track (aiortc's Opus encoder takes one input format)."""
_OUT_SAMPLES: Final = 960  # 20 ms at 48 kHz, aiortc's Opus frame size
_OUT_BYTES: Final = _OUT_SAMPLES * 2
_MAX_QUEUED_AUDIO_SECS: Final = 30.0
_OPUS_BIT_RATE: Final = 32000  # a browser's default for a mono microphone
_NO_PACKET: Final = b"\xf8"  # a TOC byte alone: one empty frame, concealed by the decoder


class WebRTCUnavailableError(TransportError, ImportError):
    """aiortc (the ``webrtc`` extra) is not installed."""


def require_aiortc() -> None:
    """Raise :class:`WebRTCUnavailableError` unless aiortc and PyAV import.

    Also loads what aiortc itself loads only on first use, so that a process's first
    ``connect()`` does not pay it: OpenSSL's cryptography backend (the first DTLS
    certificate) and the thread pool its encoder runs in.
    """
    try:
        import concurrent.futures.thread  # noqa: F401

        import aiortc  # noqa: F401
        import av  # noqa: F401
        from cryptography.hazmat.backends import default_backend
    except ImportError as exc:
        raise WebRTCUnavailableError(
            f"SmallWebRTCTransport needs aiortc: {INSTALL_HINT} ({exc})"
        ) from exc
    default_backend()


class OutgoingAudio:
    """The PCM queue behind an outgoing audio track: 48 kHz mono s16le, 20 ms at a time.

    Frames of any rate are resampled on arrival (PyAV), since aiortc's Opus encoder accepts
    one input format per stream. Silence goes out whenever nothing is queued; at most 30 s
    are kept (the newest) when the caller sends faster than real time.
    """

    def __init__(self) -> None:
        """An empty queue and its live track (:attr:`track`)."""
        self.buffer = bytearray()
        self._resampler: Any = None
        self._resampler_key: tuple[int, int] | None = None
        self.track = _make_track(self)

    def push(self, frame: AudioFrame) -> None:
        """Queue ``frame`` (mono or stereo s16le, any rate); ValueError for other layouts."""
        channels = frame.num_channels
        if channels not in (1, 2) or frame.sample_rate <= 0:
            raise ValueError("audio must be mono or stereo with a positive sample rate")
        samples = len(frame.pcm) // (2 * channels)
        if samples == 0:
            return
        if frame.sample_rate == OUT_RATE and channels == 1:
            self.buffer += frame.pcm[: samples * 2]  # already the track's format
        else:
            self._resample(frame, samples)
        limit = int(_MAX_QUEUED_AUDIO_SECS * OUT_RATE * 2)
        if len(self.buffer) > limit:
            # The caller sends faster than real time: keep the newest audio.
            del self.buffer[: len(self.buffer) - limit]

    def _resample(self, frame: AudioFrame, samples: int) -> None:
        import av

        channels = frame.num_channels
        key = (frame.sample_rate, channels)
        if self._resampler is None or self._resampler_key != key:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
            self._resampler_key = key
        in_frame = av.AudioFrame(
            format="s16", layout="mono" if channels == 1 else "stereo", samples=samples
        )
        in_frame.sample_rate = frame.sample_rate
        in_frame.planes[0].update(frame.pcm[: samples * 2 * channels])
        for out in self._resampler.resample(in_frame):
            self.buffer += memoryview(out.planes[0])[: out.samples * 2]

    def take(self) -> bytes | None:
        """The next 20 ms, padded with silence; None when nothing is queued."""
        if not self.buffer:
            return None
        chunk = bytes(self.buffer[:_OUT_BYTES])
        del self.buffer[:_OUT_BYTES]
        return chunk + b"\x00" * (_OUT_BYTES - len(chunk))

    def clear(self) -> None:
        """Drop everything queued."""
        self.buffer.clear()


class _OpusStream:
    """Opus encoding of 20 ms mono frames at 48 kHz, silence encoded once it is constant.

    libopus turns digital silence into the same short packet after a frame or two; from the
    second identical silent packet on, silence costs no encode and the peer gets the bytes
    it would have got. Speech after such silence starts from the encoder's state at the
    settling point (decoded, it differs from an every-frame encoding by about -40 dB for
    200 ms, then -60 dB).
    """

    def __init__(self) -> None:
        """A libopus encoder (PyAV) with aiortc's application setting, mono."""
        import av

        codec = av.CodecContext.create("libopus", "w")
        codec.bit_rate = _OPUS_BIT_RATE
        codec.format = "s16"
        codec.layout = "mono"
        codec.options = {"application": "voip"}
        codec.sample_rate = OUT_RATE
        codec.time_base = fractions.Fraction(1, OUT_RATE)
        self._codec: Any = codec
        self._silence: bytes | None = None  # the settled silent packet
        self._last_silent: bytes | None = None  # the previous silent frame's packet
        self._pts = 0

    def encode(self, pcm: bytes | None) -> bytes:
        """One Opus packet for 20 ms of s16le mono ``pcm`` (None: silence)."""
        if pcm is None:
            if self._silence is not None:
                return self._silence
            payload = self._encode(bytes(_OUT_BYTES))
            if payload == self._last_silent:
                self._silence = payload
            self._last_silent = payload
            return payload
        self._silence = self._last_silent = None
        return self._encode(pcm)

    def _encode(self, pcm: bytes) -> bytes:
        import av

        frame = av.AudioFrame(format="s16", layout="mono", samples=_OUT_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = OUT_RATE
        frame.pts = self._pts
        self._pts += _OUT_SAMPLES
        packets = self._codec.encode(frame)
        # libopus gives one packet per 20 ms frame; were it to hold one back, the slot
        # still carries a valid packet.
        return bytes(packets[0]) if packets else _NO_PACKET


def _make_track(source: OutgoingAudio) -> MediaStreamTrack:
    """An aiortc audio track that plays ``source`` in real time (a class built lazily).

    Its frames are Opus packets (:class:`_OpusStream`), which aiortc sends as they are.
    """
    import av
    from aiortc import MediaStreamTrack

    time_base = fractions.Fraction(1, OUT_RATE)

    class _PcmTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._start: float | None = None
            self._pts = 0
            self._opus = _OpusStream()

        async def recv(self) -> av.Packet[Any]:
            if self.readyState != "live":
                from aiortc.mediastreams import MediaStreamError

                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            else:
                self._pts += _OUT_SAMPLES
                wait = self._start + self._pts / OUT_RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            packet = av.Packet(self._opus.encode(source.take()))
            packet.pts = self._pts
            packet.time_base = time_base
            return packet

    return _PcmTrack()


def to_audio_frame(frame: Any) -> AudioFrame | None:
    """An aiortc/PyAV audio frame as s16le PCM (None for anything else)."""
    import av

    if not isinstance(frame, av.AudioFrame) or frame.samples == 0:
        return None
    channels = frame.layout.nb_channels
    if frame.format.name != "s16":
        resampler = av.AudioResampler(format="s16", layout=frame.layout.name, rate=frame.rate)
        frames = resampler.resample(frame)
        pcm = b"".join(bytes(f.planes[0])[: f.samples * 2 * channels] for f in frames)
    else:
        pcm = bytes(memoryview(frame.planes[0])[: frame.samples * 2 * channels])
    return AudioFrame(pcm=pcm, sample_rate=frame.sample_rate, num_channels=channels)
