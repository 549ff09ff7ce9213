"""Scenario files that speak (API.md §16): audio-modality user blocks, --modality, --record-dir.

Against the local testing bot, which hears any microphone turn as "Hello from the
microphone." and echoes it: a text turn spoken by the local voice must be heard as audio.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from lifecycle.cli import main
from lifecycle.testing.speaking import local_voice_for
from tests.support.toolkit import write_scenario

pytest.importorskip("espeakng_loader")

HEARD = """\
name: heard
turns:
  - user: "Hello there, can you hear me?"
    expect:
      - event: user_transcription
        text_contains: microphone
        within_ms: 10000
      - event: response
        text_contains: "You said: Hello from the microphone"
"""
KOKORO = """\
name: kokoro
user:
  modality: audio
  speech:
    service: kokoro
    voice: af_heart
    sample_rate: 16000
turns:
  - user: ["Hello", {pause_ms: 200}, "there"]
    expect:
      - event: user_transcription
        text_contains: microphone
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECAT_LIFECYCLE_CACHE_DIR", str(tmp_path / "cache"))


def test_modality_audio_speaks_the_text_turns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "heard.yaml", HEARD)
    calls = tmp_path / "calls"
    assert main(["test", str(path), "--modality", "audio", "--record-dir", str(calls)]) == 0
    (wav,) = calls.glob("*.wav")
    info = soundfile.info(wav)
    assert (info.channels, info.samplerate) == (2, 16000)
    data, _ = soundfile.read(wav, dtype="int16")
    assert abs(data[:, 0]).max() > 1000  # the caller spoke
    assert abs(data[:, 1]).max() > 1000  # the bot answered
    # In text modality the same file sends text: the bot never hears a microphone.
    assert main(["test", str(path), "--modality", "text"]) == 1
    capsys.readouterr()


def test_a_service_that_cannot_run_here_is_replaced_with_one_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "kokoro.yaml", KOKORO)
    assert main(["test", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("kokoro (af_heart) cannot run here") == 1
    assert "espeak-ng en-us+f2" in err


def test_speech_blocks_map_to_local_voices() -> None:
    assert local_voice_for(None) == ("en-us", None, None)
    assert local_voice_for({"service": "espeak", "voice": "de", "speed": 1.2}) == ("de", 210, None)
    name, rate, notice = local_voice_for({"service": "kokoro", "voice": "bm_george"})
    assert (name, rate) == ("en+m3", None) and notice is not None
    assert local_voice_for({"service": "cartesia", "voice": "x", "speed": 99})[:2] == (
        "en-us+f2",
        450,
    )


NOISY = """\
name: noisy
user:
  modality: audio
  noise: {kind: pink, snr_db: 10}
turns:
  - user: "Hello there"
    expect:
      - event: user_transcription
        text_contains: microphone
"""


def test_a_user_block_with_noise(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "noisy.yaml", NOISY)
    calls = tmp_path / "calls"
    assert main(["test", str(path), "--record-dir", str(calls)]) == 0
    (wav,) = calls.glob("*.wav")
    assert abs(soundfile.read(wav, dtype="int16")[0][:, 0]).max() > 1000
    per_turn = NOISY.replace(
        '  - user: "Hello there"', '  - user: "Hello there"\n    noise: {kind: white, snr_db: 0}'
    )
    assert main(["test", str(write_scenario(tmp_path, "turn.yaml", per_turn))]) == 0
    gone = NOISY.replace("{kind: pink, snr_db: 10}", "{file: gone.wav, snr_db: 5}")
    bad = write_scenario(tmp_path, "bad.yaml", gone)
    assert main(["test", str(bad), "--validate"]) == 2


def test_a_transcription_block_is_accepted_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    judged = KOKORO.replace(
        "turns:", "judge:\n  modality: audio\n  transcription: {service: moonshine}\nturns:"
    )
    path = write_scenario(tmp_path, "judged.yaml", judged)
    assert main(["test", str(path), "--validate"]) == 0
    assert "transcription: moonshine is not run" in capsys.readouterr().err
