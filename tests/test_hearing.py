"""The optional client-side transcriber (API.md §16): the bot's speech of a turn as text.

Against the in-process testing bot over WebSocket: it hears the microphone, answers with
speech (``bot-started-speaking``, audio, ``bot-stopped-speaking``), and is interrupted by
input while it speaks. The transcribers here are stand-ins that describe the audio they got.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lifecycle import AudioFrame, PipecatClient
from lifecycle.cli import main
from lifecycle.dispatch import ClientEvent
from lifecycle.testing import Conversation
from lifecycle.testing.hearing import BotSpeech
from tests.support.toolkit import ready_client, write_scenario
from transports.testing import TestingBotServer

T = 15.0


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


def beep(text: str) -> list[AudioFrame]:
    """A custom voice: 100 ms of an 8 kHz square wave per word."""
    square = np.where(np.arange(800 * len(text.split())) % 16 < 8, 8000, -8000).astype("<i2")
    return [AudioFrame(square.tobytes(), 8000, 1)]


def describe(frames: Sequence[AudioFrame]) -> str:
    """A stand-in transcriber: says whether the bot's audio was there."""
    loud = sum(f.duration for f in frames if np.abs(np.frombuffer(f.pcm, "<i2")).max() > 0)
    return f"the bot spoke for {loud:.2f} seconds" if loud > 0 else "silence"


def broken(frames: Sequence[AudioFrame]) -> str:
    raise RuntimeError("no model here")


@pytest.fixture
async def client() -> AsyncIterator[PipecatClient]:
    async with TestingBotServer() as bot, ready_client(bot.start_url, T) as client:
        yield client


async def test_hear_transcribes_the_bots_next_utterance(client: PipecatClient) -> None:
    async with Conversation(client, voice=beep, transcriber=describe) as conv:
        await within(conv.say("one two three", speak=True, trailing_silence=0.5))
        text = await within(conv.hear(text_contains="the bot spoke"))
        assert text.startswith("the bot spoke for ")
        with pytest.raises(AssertionError, match=r"no bot utterance ended within 0\.5s"):
            await within(conv.hear(within=0.5))


async def test_hear_needs_a_transcriber(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        with pytest.raises(ValueError, match="transcriber="):
            await within(conv.hear())


async def test_a_transcriber_returning_no_text_is_a_clear_error(client: PipecatClient) -> None:
    async with Conversation(client, voice=beep, transcriber=lambda f: 42) as conv:  # type: ignore[arg-type,return-value]
        await within(conv.say("one two", speak=True, trailing_silence=0.5))
        with pytest.raises(TypeError, match="returns text"):
            await within(conv.hear())


def event(name: str, data: Any = None, at: float = 0.0) -> ClientEvent:
    return ClientEvent(name, data, 1, at)


def test_an_interrupted_utterance_is_not_heard() -> None:
    frame = AudioFrame(b"\x01\x00" * 320, 16000, 1)
    speech = BotSpeech()
    assert speech.feed(event("on_bot_audio", frame)) is None  # not speaking: not collected
    assert speech.feed(event("on_bot_started_speaking", at=1.0)) is None
    assert speech.feed(event("on_bot_audio", frame)) is None
    assert speech.feed(event("on_bot_interrupted")) is None
    assert speech.feed(event("on_bot_stopped_speaking")) is None
    speech.feed(event("on_bot_started_speaking", at=2.0))
    speech.feed(event("on_bot_audio", frame))
    speech.feed(event("on_bot_audio", "not a frame"))  # hostile data: skipped
    assert speech.feed(event("on_bot_stopped_speaking")) == [frame]
    assert speech.started_at == 2.0


HEARD = """\
name: heard
user:
  modality: audio
turns:
  - user: "Hello there, can you hear me?"
    expect:
      - event: response
        text_contains: "the bot spoke for"
"""
PAUSED_TEXT = """\
name: paused
turns:
  - user: ["Hello", {pause_ms: 200}, "there"]
    expect:
      - event: user_transcription
        text_contains: microphone
"""


def test_scenario_response_is_the_transcribed_speech(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("espeakng_loader")
    monkeypatch.setenv("PIPECAT_LIFECYCLE_CACHE_DIR", str(tmp_path / "cache"))
    path = write_scenario(tmp_path, "heard.yaml", HEARD)
    # A failing run waits out its expectation's budget: T (15 s), not the default 60 s.
    failing = ["--timeout", str(T)]
    assert main(["test", str(path), *failing]) == 1  # the bot's own words are "You said: ..."
    assert main(["test", str(path), "--transcriber", "tests.test_hearing:describe"]) == 0
    assert main(["test", str(path), "--transcriber", "tests.test_hearing:broken", *failing]) == 1
    assert "the transcriber failed: RuntimeError: no model here" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["test", str(path), "--transcriber", "tests.test_hearing"])
    assert "--transcriber wants MODULE:CALLABLE" in capsys.readouterr().err


def test_modality_override_applies_before_the_pause_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("espeakng_loader")
    path = write_scenario(tmp_path, "paused.yaml", PAUSED_TEXT)
    assert main(["test", str(path), "--validate"]) == 2
    assert "pauses need user.modality: audio" in capsys.readouterr().err
    assert main(["test", str(path), "--validate", "--modality", "audio"]) == 0
