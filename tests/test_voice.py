"""The caller's voice (API.md §16): espeak-ng through ``local_voice``, cached; custom voices.

Spoken turns (``say(..., speak=True)``, pauses, ``say_after``) are in
tests/test_toolkit_speaking.py; this file is the voice alone: synthesis, the cache and
everything hostile a caller can hand it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from lifecycle import AudioFrame
from lifecycle.testing import voice as voice_module
from lifecycle.testing.espeak import Engine
from lifecycle.testing.voice import MAX_TEXT_CHARS, LocalVoice, local_voice


def pcm_of(frames: object) -> np.ndarray:
    assert isinstance(frames, list)
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2")


def test_speaks_text_as_mono_frames_of_the_engines_rate(tmp_path: Path) -> None:
    voice = local_voice(cache_dir=tmp_path)
    frames = voice("What is the capital of Japan?")
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(22050, 1)}
    assert all(len(f.pcm) == 441 * 2 for f in frames[:-1])
    seconds = sum(f.duration for f in frames)
    assert 1.0 < seconds < 4.0  # six words at espeak-ng's 175 words per minute
    assert np.abs(pcm_of(frames)).max() > 3000


def test_cache_hit_gives_the_same_audio_without_synthesis(tmp_path: Path) -> None:
    first = LocalVoice(cache_dir=tmp_path)
    spoken = first("Hello there.")
    assert (first.synthesized, first.cache_hits) == (1, 0)
    again = LocalVoice(cache_dir=tmp_path)  # a new voice, as in the next run
    assert again("Hello there.") == spoken
    assert (again.synthesized, again.cache_hits) == (0, 1)
    assert len(list(tmp_path.glob("*.wav"))) == 1


def test_cache_key_holds_everything_that_changes_the_audio(tmp_path: Path) -> None:
    voices = [
        LocalVoice(cache_dir=tmp_path),
        LocalVoice("en", cache_dir=tmp_path),
        LocalVoice(rate=250, cache_dir=tmp_path),
        LocalVoice(pitch=80, cache_dir=tmp_path),
    ]
    paths = {v.cache_path("Hello there.") for v in voices}
    assert len(paths) == 4
    assert voices[0].cache_path("Hello there!") != voices[0].cache_path("Hello there.")
    audio = [v("Hello there.") for v in voices]
    assert sum(f.duration for f in audio[2]) < sum(f.duration for f in audio[0])  # faster
    assert audio[3] != audio[0]
    # The engine does not keep one voice's settings for the next.
    plain = LocalVoice(cache_dir=tmp_path / "again")("Hello there.")
    assert abs(sum(f.duration for f in plain) - sum(f.duration for f in audio[0])) < 0.01


def test_a_broken_cache_file_is_synthesized_again(tmp_path: Path) -> None:
    voice = LocalVoice(cache_dir=tmp_path)
    spoken = voice("Broken cache.")
    voice.cache_path("Broken cache.").write_bytes(b"RIFF\x00\x00not a wav at all")
    # espeak-ng's output varies by a few samples from call to call (the cache makes runs
    # repeatable): the same length within 10 ms.
    again = voice("Broken cache.")
    assert voice.synthesized == 2
    assert abs(len(pcm_of(again)) - len(pcm_of(spoken))) < 221
    assert voice("Broken cache.") == again


def test_an_unwritable_cache_still_speaks(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    voice = LocalVoice(cache_dir=blocker / "voice")
    assert voice("Still speaking.")


@pytest.mark.parametrize(
    "name", ["xx-nope", "", "\x00", "en-us\x00", "a" * 1000, "../../etc/passwd", "en us"]
)
def test_odd_voice_names_are_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="voice"):
        local_voice(name, cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("rate", 10), ("rate", 10_000), ("rate", True), ("rate", 1.5), ("pitch", -1), ("pitch", 100)],
)
def test_settings_out_of_range_are_a_clear_error(
    tmp_path: Path, setting: str, value: object
) -> None:
    with pytest.raises(ValueError, match=setting):
        local_voice(cache_dir=tmp_path, **{setting: value})  # type: ignore[arg-type]


def test_hostile_texts(tmp_path: Path) -> None:
    voice = local_voice(cache_dir=tmp_path)
    assert voice("") == []
    assert voice("   \n\t ") == []
    with pytest.raises(ValueError, match="characters"):
        voice("word " * MAX_TEXT_CHARS)
    with pytest.raises(ValueError, match="text"):
        voice(b"bytes")  # type: ignore[arg-type]
    # NULs, lone surrogates, markup and control characters are spoken or skipped, never fatal.
    for odd in ("a\x00b", "\ud800 broken", "<speak>tags</speak>", "\x07\x1b[31m", "[[h@l'oU]]"):
        voice(odd)
    assert voice("日本の首都は東京です") is not None


def test_a_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Engine, "_instance", None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(ImportError, match=r'pip install "pipecat-lifecycle\[voice\]"'):
        local_voice()


def test_a_custom_voice_is_any_callable() -> None:
    def beep(text: str) -> list[AudioFrame]:
        return [AudioFrame(b"\x10\x00" * 160 * len(text), 8000, 1)]

    voice: voice_module.Voice = beep
    assert voice("ab")[0].duration == pytest.approx(0.04)
