"""Noise mixed into the caller's speech at an SNR (API.md §16): measured, and hostile files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lifecycle import AudioFrame
from lifecycle.testing.noise import Noise, mix, noise_from_block, with_noise
from tests.support.toolkit import write_tone

RATE = 16000


def speech() -> np.ndarray:
    """Two seconds of something speech-like: tone bursts with gaps, peak 0.3."""
    t = np.arange(2 * RATE) / RATE
    bursts = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    return (0.3 * bursts * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - clean
    return 10 * math.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


@pytest.fixture(scope="module")
def noise_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "hum.flac"  # any format libsndfile reads
    t = np.arange(RATE * 3) / 44100
    hum = 0.2 * np.sin(2 * np.pi * 50 * t) + 0.05 * np.random.default_rng(1).standard_normal(len(t))
    soundfile.write(path, np.stack([hum, hum], axis=1), 44100, format="FLAC")
    return path


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("kind", ["white", "pink", "babble", "file"])
def test_measured_snr_is_the_one_asked_for(kind: str, snr_db: float, noise_file: Path) -> None:
    if kind == "babble":
        pytest.importorskip("espeakng_loader")
    clean = speech()
    noise = Noise(kind, snr_db, noise_file if kind == "file" else None)
    mixed = mix(clean, RATE, noise)
    assert np.abs(mixed).max() < 1.0
    assert snr(clean, mixed) == pytest.approx(snr_db, abs=1.0)


def test_a_mix_that_would_clip_is_scaled_down_keeping_the_snr() -> None:
    loud = speech() * 3.0
    mixed = mix(loud, RATE, Noise("white", 0.0))
    assert np.abs(mixed).max() <= 32767 / 32768
    scale = float(np.dot(mixed, loud) / np.dot(loud, loud))
    assert snr(loud * scale, mixed) == pytest.approx(0.0, abs=1.0)


def test_noise_is_repeatable_from_its_seed() -> None:
    clean = speech()
    assert np.array_equal(mix(clean, RATE, Noise("pink", 5)), mix(clean, RATE, Noise("pink", 5)))
    other = mix(clean, RATE, Noise("pink", 5, seed=2))
    assert not np.array_equal(mix(clean, RATE, Noise("pink", 5)), other)


def test_a_noisy_voice_says_the_same_at_the_snr() -> None:
    clean = speech()

    def voice(text: str) -> list[AudioFrame]:
        return [AudioFrame((clean * 32768).astype("<i2").tobytes(), RATE, 1)]

    frames = with_noise(voice, Noise("white", 10))("anything")
    noisy = np.frombuffer(b"".join(f.pcm for f in frames), "<i2").astype(np.float32) / 32768
    reference = np.frombuffer(voice("")[0].pcm, "<i2").astype(np.float32) / 32768
    assert len(noisy) == len(reference)
    assert snr(reference, noisy) == pytest.approx(10.0, abs=1.0)
    assert with_noise(lambda text: [], Noise("white", 10))("x") == []


@pytest.mark.parametrize(
    ("kind", "snr_db", "match"),
    [
        ("brown", 10, "kind"),
        ("white", math.nan, "snr_db"),
        ("white", math.inf, "snr_db"),
        ("white", "10", "snr_db"),
        ("white", True, "snr_db"),
        ("white", 100, "outside"),
        ("file", 10, "path"),
    ],
)
def test_bad_noise_is_a_clear_error(kind: str, snr_db: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Noise(kind, snr_db)  # type: ignore[arg-type]


def test_noise_files_of_any_kind(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("not audio at all")
    soundfile.write(tmp_path / "empty.wav", np.zeros((0, 1)), RATE)
    soundfile.write(tmp_path / "silent.wav", np.zeros(RATE), RATE)
    (tmp_path / "truncated.wav").write_bytes(
        write_tone(tmp_path / "whole.wav", rate=RATE).read_bytes()[:30]
    )
    soundfile.write(tmp_path / "odd-rate.wav", np.zeros(10), 1)
    for name in ("missing.wav", "text.wav", "empty.wav", "silent.wav", "truncated.wav"):
        noise = noise_from_block({"file": name, "snr_db": 10}, tmp_path)
        with pytest.raises(ValueError, match=name):
            mix(speech(), RATE, noise)
    with pytest.raises(ValueError, match="odd-rate"):
        mix(speech(), RATE, noise_from_block({"file": "odd-rate.wav", "snr_db": 10}, tmp_path))
    good = noise_from_block({"file": "whole.wav", "snr_db": 10, "seed": 3}, tmp_path)
    assert snr(speech(), mix(speech(), RATE, good)) == pytest.approx(10.0, abs=1.0)


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"kind": "white"}, "snr_db"),
        ({"kind": "white", "snr_db": 10, "colour": "red"}, "colour"),
        ({"file": 5, "snr_db": 10}, "path"),
        ({"kind": "white", "snr_db": 10, "seed": "x"}, "seed"),
    ],
)
def test_bad_noise_blocks(block: dict[str, object], match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        noise_from_block(block, tmp_path)
