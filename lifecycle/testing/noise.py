"""Noise in what the caller says: white, pink, babble or a recording, at an SNR in dB (numpy).

A :class:`Noise` says what and how loud; :func:`mix` adds it to speech so that
``10 * log10(mean(speech²) / mean(noise²))`` over the speech's samples is ``snr_db``; a mix
that would clip is scaled down as a whole (the ratio stays). :func:`with_noise` wraps a
:class:`~lifecycle.testing.voice.Voice` so everything it says comes with the noise.

* ``white``: Gaussian samples; ``pink``: white shaped to 1/f power in the frequency domain;
* ``babble``: four voices of the local voice (extra ``voice``) reading different sentences,
  overlapping, the crowd of a café;
* ``file``: a recording (anything libsndfile reads), mono, resampled, looped.

Noise is made from a seed, so a run is repeatable. In a scenario file a ``user:`` block
takes ``noise: {kind: pink, snr_db: 10}`` or ``noise: {file: cafe.wav, snr_db: 5}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lifecycle.media import AudioFrame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from lifecycle.testing.voice import Voice

__all__ = ["KINDS", "SNR_RANGE", "Noise", "mix", "noise_from_block", "with_noise"]

KINDS: Final = ("white", "pink", "babble", "file")
"""The kinds of noise."""
SNR_RANGE: Final = (-20.0, 60.0)
"""Signal-to-noise ratios accepted, in dB."""
_BABBLE: Final = (
    ("en-us+m3", "I told him we would meet at the station around noon, but he never came."),
    ("en-us+f2", "The soup was cold, so we sent it back and ordered the fish instead."),
    ("en+m1", "Have you seen the new exhibition at the museum on the other side of town?"),
    ("en-us+f4", "My sister moved to the coast last spring and she loves it there."),
)
_BABBLE_OFFSETS_S: Final = (0.0, 0.7, 1.3, 2.1)


@dataclass(frozen=True)
class Noise:
    """What noise (``kind``, or ``path`` for a file) and how loud: ``snr_db`` under the speech."""

    kind: str
    snr_db: float
    path: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        """Check the kind, the SNR and that a file is given for ``file``."""
        if self.kind not in KINDS:
            raise ValueError(f"noise kind {self.kind!r:.40}: one of {', '.join(KINDS)}")
        snr = self.snr_db
        if isinstance(snr, bool) or not isinstance(snr, int | float) or not math.isfinite(snr):
            raise ValueError(f"snr_db must be a number of dB, not {snr!r:.40}")
        if not SNR_RANGE[0] <= snr <= SNR_RANGE[1]:
            raise ValueError(f"snr_db {snr:g} is outside {SNR_RANGE[0]:g}..{SNR_RANGE[1]:g} dB")
        if (self.kind == "file") != (self.path is not None):
            raise ValueError("a file noise needs a path, and only a file noise has one")

    def samples(self, count: int, rate: int) -> npt.NDArray[np.float32]:
        """``count`` samples of this noise at ``rate``, at unit RMS."""
        import numpy as np

        rng = np.random.default_rng(self.seed)
        if self.kind == "white":
            out = rng.standard_normal(count)
        elif self.kind == "pink":
            out = _pink(rng, count)
        else:
            source = _babble(rate) if self.kind == "babble" else _file(str(self.path), rate)
            start = int(rng.integers(0, len(source)))
            out = np.resize(np.roll(source, -start), count)  # looped from a seeded point
        rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if count else 0.0
        return (out / rms if rms > 0 else out).astype(np.float32)


def mix(speech: npt.NDArray[np.float32], rate: int, noise: Noise) -> npt.NDArray[np.float32]:
    """``speech`` (mono float32) with ``noise`` added at ``noise.snr_db`` (see the module)."""
    import numpy as np

    power = float(np.mean(np.square(speech, dtype=np.float64))) if len(speech) else 0.0
    if power == 0.0:
        return speech.copy()  # silence has no level to set the noise by
    scale = math.sqrt(power / 10 ** (noise.snr_db / 10))
    mixed = speech + scale * noise.samples(len(speech), rate)
    peak = float(np.max(np.abs(mixed)))
    if peak > 32767 / 32768:
        mixed *= (32767 / 32768) / peak
    return mixed.astype(np.float32)


def with_noise(voice: Voice, noise: Noise) -> Voice:
    """``voice``, with ``noise`` mixed into everything it says."""

    def noisy(text: str, /) -> Sequence[AudioFrame]:
        from lifecycle.testing import audio

        frames = list(voice(text))
        if not frames:
            return frames
        rate = frames[0].sample_rate
        speech = audio.prepare(frames, rate, 1)
        samples = _floats(b"".join(f.pcm for f in speech))
        pcm = _pcm(mix(samples, rate, noise))
        return audio.prepare([AudioFrame(pcm, rate, 1)], rate, 1)

    return noisy


def noise_from_block(block: Mapping[str, Any], base: Path) -> Noise:
    """A scenario's ``noise:`` mapping (``kind`` or ``file``, ``snr_db``, ``seed``) as a Noise;
    a ``file`` is relative to ``base``. ``ValueError`` says what is wrong."""
    unknown = set(block) - {"kind", "file", "snr_db", "seed"}
    if unknown:
        raise ValueError(f"noise: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if "snr_db" not in block:
        raise ValueError("noise: needs snr_db")
    file = block.get("file")
    kind = str(block.get("kind") or ("file" if file is not None else ""))
    seed = block.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("noise: seed must be an integer")
    path = None
    if file is not None:
        if not isinstance(file, str) or not file:
            raise ValueError("noise: file must be a path")
        path = (base / file).resolve()
    return Noise(kind, block["snr_db"], path, seed)


def _pink(rng: Any, count: int) -> npt.NDArray[np.float64]:
    import numpy as np

    spectrum = np.fft.rfft(rng.standard_normal(max(count, 2)))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    pink: npt.NDArray[np.float64] = np.fft.irfft(spectrum / np.sqrt(freqs), n=max(count, 2))
    return pink[:count]


@cache
def _babble(rate: int) -> npt.NDArray[np.float32]:
    """The crowd: the voices overlapped at their offsets (made once per rate)."""
    import numpy as np

    from lifecycle.testing import audio
    from lifecycle.testing.voice import local_voice

    tracks = []
    for (name, text), offset in zip(_BABBLE, _BABBLE_OFFSETS_S, strict=True):
        frames = audio.prepare(local_voice(name)(text), rate, 1)
        speech = _floats(b"".join(f.pcm for f in frames))
        tracks.append(np.concatenate([np.zeros(round(offset * rate), np.float32), speech]))
    crowd = np.zeros(max(len(t) for t in tracks), np.float32)
    for track in tracks:
        crowd[: len(track)] += track
    return crowd


@cache
def _file(path: str, rate: int) -> npt.NDArray[np.float32]:
    """A recording as mono float32 at ``rate`` (``ValueError`` for anything unusable)."""
    from lifecycle.testing import audio

    frames = audio.prepare(path, rate, 1)
    samples = _floats(b"".join(f.pcm for f in frames))
    if not samples.any():
        raise ValueError(f"{path}: the noise file is silent")
    return samples


def _floats(pcm: bytes) -> npt.NDArray[np.float32]:
    import numpy as np

    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def _pcm(samples: npt.NDArray[np.float32]) -> bytes:
    import numpy as np

    return bytes((np.clip(samples, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes())
