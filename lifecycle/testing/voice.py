"""A caller's voice: text to speech with no download at run time.

A :data:`Voice` is any callable ``(text) -> Sequence[AudioFrame]``: plug in a cloud TTS by
wrapping it in one. :func:`local_voice` is the one this project ships: espeak-ng 1.52 from the
``espeakng-loader`` wheel (extra ``voice``), which bundles ``libespeak-ng`` and its voice data
for every CPython, so nothing is fetched at run time.

The binding is ctypes over that bundled library (:mod:`lifecycle.testing.espeak`, which says
why); synthesis runs far faster than real time (see BENCHMARKS.md).

Results are cached on disk as WAV files keyed by everything that changes the audio: the
library version, voice, rate, pitch and the text. Texts are bounded (:data:`MAX_TEXT_CHARS`)
and so is the audio of one call (:data:`MAX_SECONDS`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from lifecycle.media import AudioFrame
from lifecycle.testing.espeak import INSTALL_HINT, MAX_SECONDS, Engine

__all__ = [
    "INSTALL_HINT",
    "MAX_SECONDS",
    "MAX_TEXT_CHARS",
    "LocalVoice",
    "Voice",
    "default_cache_dir",
    "local_voice",
]

MAX_TEXT_CHARS: Final = 20_000
"""The longest text one call speaks (about 20 minutes of speech); longer raises ValueError."""
RATE_RANGE: Final = (80, 450)
"""Words per minute espeak-ng speaks at (its default is 175)."""
PITCH_RANGE: Final = (0, 99)
"""espeak-ng's pitch scale (its default is 50)."""
_FRAME_MS: Final = 20
_NAME_LIMIT: Final = 100


class Voice(Protocol):
    """Speaks text: ``voice(text)`` returns s16le frames (any rate, any channel count)."""

    def __call__(self, text: str, /) -> Sequence[AudioFrame]:
        """The speech of ``text``; an empty sequence for text with nothing to say."""
        ...


def default_cache_dir() -> Path:
    """``$PIPECAT_LIFECYCLE_CACHE_DIR/voice``, else ``$XDG_CACHE_HOME/pipecat-lifecycle/voice``
    (``~/.cache`` when unset)."""
    root = os.environ.get("PIPECAT_LIFECYCLE_CACHE_DIR")
    if root:
        return Path(root) / "voice"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pipecat-lifecycle" / "voice"


class LocalVoice:
    """espeak-ng as a :class:`Voice`, cached on disk (made by :func:`local_voice`)."""

    def __init__(
        self,
        name: str = "en-us",
        *,
        rate: int | None = None,
        pitch: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """Check the settings and load espeak-ng (ImportError with the install line if absent)."""
        if not isinstance(name, str) or not 0 < len(name) <= _NAME_LIMIT or "\x00" in name:
            raise ValueError(f"a voice name is a short non-empty string, not {name!r:.120}")
        self.rate = _checked("rate", rate, RATE_RANGE)
        self.pitch = _checked("pitch", pitch, PITCH_RANGE)
        self.name = name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._engine = Engine.get()
        self._engine.check_voice(name)
        self.sample_rate: int = self._engine.sample_rate
        """The rate of the frames returned (espeak-ng's: 22050 Hz)."""
        self.cache_hits = 0
        """Calls answered from the cache."""
        self.synthesized = 0
        """Calls that ran espeak-ng."""

    def __repr__(self) -> str:
        """``LocalVoice('en-us', rate=None, pitch=None)``."""
        return f"LocalVoice({self.name!r}, rate={self.rate}, pitch={self.pitch})"

    def cache_path(self, text: str) -> Path:
        """Where the speech of ``text`` is cached (keyed by everything that changes it)."""
        key = hashlib.sha256()
        for part in ("espeak-ng", self._engine.version, self.name, self.rate, self.pitch, text):
            key.update(str(part).encode(errors="surrogatepass") + b"\x00")
        return self.cache_dir / f"{key.hexdigest()}.wav"

    def __call__(self, text: str, /) -> Sequence[AudioFrame]:
        """The speech of ``text`` as 20 ms mono frames at :attr:`sample_rate`.

        Raises ``ValueError`` for a non-string or a text over :data:`MAX_TEXT_CHARS`.
        Text with nothing to say (empty, only spaces) gives no frames.
        """
        if not isinstance(text, str):
            raise ValueError(f"a voice speaks text, not {type(text).__name__}")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text of {len(text)} characters is over the voice's {MAX_TEXT_CHARS}")
        text = text.replace("\x00", " ").strip()
        if not text:
            return []
        path = self.cache_path(text)
        pcm = _read_cached(path, self.sample_rate)
        if pcm is not None:
            self.cache_hits += 1
        else:
            pcm = self._engine.synthesize(text, self.name, self.rate, self.pitch)
            self.synthesized += 1
            _write_cached(path, pcm, self.sample_rate)
        step = self.sample_rate * _FRAME_MS // 1000 * 2
        return [
            AudioFrame(pcm=pcm[i : i + step], sample_rate=self.sample_rate, num_channels=1)
            for i in range(0, len(pcm), step)
        ]


def local_voice(
    name: str = "en-us",
    *,
    rate: int | None = None,
    pitch: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Voice:
    """espeak-ng's voice ``name`` (``"en-us"``, ``"en"`` (British), ``"de"``, ``"en-us+f3"``...).

    ``rate`` in words per minute (80-450, 175 when None), ``pitch`` 0-99 (50); speech
    is cached in ``cache_dir`` (default :func:`default_cache_dir`). Raises ``ValueError`` for
    an unknown voice or a setting out of range, ``ImportError`` with the install line when
    the ``voice`` extra is missing.
    """
    return LocalVoice(name, rate=rate, pitch=pitch, cache_dir=cache_dir)


def _checked(what: str, value: int | None, bounds: tuple[int, int]) -> int | None:
    if value is None:
        return None
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer from {low} to {high}, not {value!r:.40}")
    return value


def _read_cached(path: Path, sample_rate: int) -> bytes | None:
    """The cached PCM, or None when absent or unreadable (then it is synthesized again)."""
    import soundfile

    try:
        data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError):
        return None
    if rate != sample_rate or data.shape[1] != 1:
        return None
    return bytes(data.tobytes())


def _write_cached(path: Path, pcm: bytes, sample_rate: int) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is
    skipped, not an error."""
    import numpy as np
    import soundfile

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = np.frombuffer(pcm, dtype="<i2")
        soundfile.write(tmp, samples, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
