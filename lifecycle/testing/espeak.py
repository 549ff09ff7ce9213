"""espeak-ng 1.52 through ctypes over the library the ``espeakng-loader`` wheel bundles.

Only the standard library is imported here, so the interop tests' Pipecat bot (in a venv
without this project's dependencies) loads this file by path for its own TTS service and
speaks with the same engine as the caller. :mod:`lifecycle.testing.voice` builds the
:data:`~lifecycle.testing.voice.Voice` and its cache on it.

Why ctypes: the wheel ships the library and its voice data and nothing that calls them; the
wrappers on PyPI run the ``espeak-ng`` program in a subprocess (no wheel installs it) or
compile against a system library. Five C calls are all it takes. espeak-ng keeps its state
in the process, so every call holds a lock.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Final

__all__ = [
    "DEFAULT_PITCH",
    "DEFAULT_RATE",
    "INSTALL_HINT",
    "MAX_SECONDS",
    "Engine",
]

INSTALL_HINT: Final = 'pip install "pipecat-lifecycle[voice]"'
"""What installs the engine."""
MAX_SECONDS: Final = 1800.0
"""The most audio one call returns; synthesis stops there and raises ValueError."""
DEFAULT_RATE: Final = 175
"""Words per minute when none is given (espeak-ng's default)."""
DEFAULT_PITCH: Final = 50
"""Pitch (0-99) when none is given (espeak-ng's default)."""

# espeak-ng's C API (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_RATE: Final = 1
_PITCH: Final = 3
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Engine:
    """The process's one espeak-ng (:meth:`get`), loaded on first use; calls hold its lock."""

    _instance: Engine | None = None
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
    def get(cls) -> Engine:
        """The engine, loaded on the first call (``ImportError`` with the install line)."""
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
        """``ValueError`` unless espeak-ng has the voice ``name``."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(
                    f"espeak-ng has no voice {name!r} (try 'en-us', 'en' (British), 'de', "
                    "'fr', 'es'; names are espeak-ng's languages, a variant after '+', as "
                    "'en-us+f3')"
                )

    def synthesize(self, text: str, name: str, rate: int | None, pitch: int | None) -> bytes:
        """``text`` spoken: mono s16le PCM at :attr:`sample_rate` (``ValueError`` past
        :data:`MAX_SECONDS`)."""
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
