"""A caller's voice: text to speech with no download at run time.

A :data:`Voice` is any callable ``(text) -> Sequence[AudioFrame]``: plug in a cloud TTS by
wrapping it in one. :func:`local_voice` is the one this project ships: espeak-ng 1.52 from the
``espeakng-loader`` wheel (extra ``voice``), which bundles ``libespeak-ng`` and its voice data
for every CPython, so nothing is fetched at run time.

The binding is ctypes over that bundled library (five C calls: initialize, voice, parameter,
synth, callback). The maintained wrappers on PyPI either run the ``espeak-ng`` program in a
subprocess (not installed by any wheel) or build their own C extension against a system
library; the loader wheel ships the library and nothing that calls it. espeak-ng keeps its
state in the process, so calls are serialized by a lock; synthesis is far faster than real
time (about 100x; see BENCHMARKS.md).

Results are cached on disk as WAV files keyed by everything that changes the audio: the
library version, voice, rate, pitch and the text. Texts are bounded (:data:`MAX_TEXT_CHARS`)
and so is the audio of one call (:data:`MAX_SECONDS`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from lifecycle.media import AudioFrame

__all__ = [
    "INSTALL_HINT",
    "MAX_SECONDS",
    "MAX_TEXT_CHARS",
    "LocalVoice",
    "Voice",
    "default_cache_dir",
    "local_voice",
]

INSTALL_HINT: Final = 'pip install "pipecat-lifecycle[voice]"'
"""What installs the local voice."""
MAX_TEXT_CHARS: Final = 20_000
"""The longest text one call speaks (about 20 minutes of speech); longer raises ValueError."""
MAX_SECONDS: Final = 1800.0
"""The most audio one call returns; synthesis stops there and raises ValueError."""
RATE_RANGE: Final = (80, 450)
"""Words per minute espeak-ng speaks at (its default is 175)."""
PITCH_RANGE: Final = (0, 99)
"""espeak-ng's pitch scale (its default is 50)."""
DEFAULT_RATE: Final = 175
DEFAULT_PITCH: Final = 50
_FRAME_MS: Final = 20
_NAME_LIMIT: Final = 100

# espeak-ng's C API (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_RATE: Final = 1
_PITCH: Final = 3
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


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


class _Engine:
    """The process's one espeak-ng, loaded on first use; every call holds its lock."""

    _instance: _Engine | None = None
    _created = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise ImportError(f"the local voice needs the 'voice' extra: {INSTALL_HINT}") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng did not initialize (error {rate})")
        self.sample_rate: int = rate
        self.version: str = (lib.espeak_Info(None) or b"?").decode(errors="replace")
        self._lib = lib
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._samples = 0
        self._limit = 0
        # Kept referenced: the C library calls it for as long as the process lives.
        self._callback = _SYNTH_CALLBACK(self._take)
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Engine:
        with cls._created:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _take(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
            self._samples += count
        return 1 if self._samples > self._limit else 0  # 1 aborts the synthesis

    def check_voice(self, name: str) -> None:
        with self._lock:
            if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(
                    f"espeak-ng has no voice {name!r} (try 'en-us', 'en' (British), 'de', "
                    "'fr', 'es'; names are espeak-ng's languages, a variant after '+', as "
                    "'en-us+f3')"
                )

    def synthesize(self, text: str, name: str, rate: int | None, pitch: int | None) -> bytes:
        with self._lock:
            lib = self._lib
            if lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {name!r}")
            # Both every time: the engine keeps the previous call's settings.
            lib.espeak_SetParameter(_RATE, DEFAULT_RATE if rate is None else rate, 0)
            lib.espeak_SetParameter(_PITCH, DEFAULT_PITCH if pitch is None else pitch, 0)
            self._chunks, self._samples = [], 0
            self._limit = int(MAX_SECONDS * self.sample_rate)
            encoded = text.encode(errors="replace")
            error = lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            pcm, over = b"".join(self._chunks), self._samples > self._limit
            self._chunks = []
        if over:
            raise ValueError(f"the speech of this text is longer than {MAX_SECONDS:g} s")
        if error != 0:
            raise RuntimeError(f"espeak-ng failed to speak the text (error {error})")
        return pcm


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
        self._engine = _Engine.get()
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
