"""A caller that talks (API.md §16): spoken ``say``, pauses, ``say_after``, two-sided recordings.

Against the in-process testing bot over WebSocket: it hears the microphone (sound then
silence is one utterance, transcribed as "Hello from the microphone."), echoes text, and is
interrupted by input while it speaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from lifecycle import AudioFrame, PipecatClient
from lifecycle.testing import Conversation
from lifecycle.testing.recording import TwoSidedWav
from lifecycle.timeline import USER_AUDIO
from tests.support.toolkit import ready_client
from transports.testing import Dialogue, TestingBotServer

T = 15.0
RATE = 16000


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


@pytest.fixture
async def bot() -> AsyncIterator[TestingBotServer]:
    # Replies long enough to talk over on a busy machine: 300 ms per LLM token.
    async with TestingBotServer(dialogue=Dialogue(token_delay=0.3)) as server:
        yield server


@pytest.fixture
async def client(bot: TestingBotServer) -> AsyncIterator[PipecatClient]:
    async with ready_client(bot.start_url, T) as client:
        yield client


def beep(text: str) -> list[AudioFrame]:
    """A custom voice: 100 ms of an 8 kHz square wave per word."""
    words = len(text.split())
    square = np.where(np.arange(800 * words) % 16 < 8, 8000, -8000).astype("<i2")
    return [AudioFrame(square.tobytes(), 8000, 1)]


def loud_runs(frames: list[AudioFrame]) -> list[tuple[int, int]]:
    """(first, last) frame indices of each run of non-silent frames."""
    loud = [bool(np.abs(np.frombuffer(f.pcm, "<i2")).max(initial=0) > 500) for f in frames]
    runs: list[tuple[int, int]] = []
    for i, is_loud in enumerate(loud):
        if is_loud and (not runs or runs[-1][1] != i - 1):
            runs.append((i, i))
        elif is_loud:
            runs[-1] = (runs[-1][0], i)
    return runs


async def test_spoken_say_is_heard_as_speech_not_text(
    client: PipecatClient, bot: TestingBotServer
) -> None:
    async with Conversation(client, voice=beep) as conv:
        assert await within(conv.say("one two three", speak=True, trailing_silence=0.5)) is None
        heard = await conv.expect("on_user_input", text_contains="microphone")
        assert heard.input_type == "transcription"
        await conv.expect("on_bot_output", text_contains="You said: Hello from the microphone")
    assert not [m for m in bot.received if m.get("type") == "send-text"]
    frames = bot.received_audio
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(RATE, 1)}
    runs = loud_runs(frames)
    assert len(runs) == 1
    assert runs[0][1] - runs[0][0] + 1 == 15  # 300 ms of speech in 20 ms frames


async def test_the_local_voice_is_the_default(
    client: PipecatClient, bot: TestingBotServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("espeakng_loader")
    monkeypatch.setenv("PIPECAT_LIFECYCLE_CACHE_DIR", str(tmp_path))
    async with Conversation(client) as conv:
        await within(conv.say("Hello, can you hear me?", speak=True, trailing_silence=0.5))
        await conv.expect("on_bot_output", text_contains="Hello from the microphone")
    speech = [f for f in bot.received_audio if np.abs(np.frombuffer(f.pcm, "<i2")).max() > 0]
    assert sum(f.duration for f in speech) > 1.0
    assert any((tmp_path / "voice").iterdir())


async def test_pauses_are_silences_between_the_spoken_parts(
    client: PipecatClient, bot: TestingBotServer
) -> None:
    async with Conversation(client, voice=beep) as conv:
        await within(conv.say(["So last week", 200, "I went"], speak=True, trailing_silence=0.5))
        # The testing bot hears one utterance per 300 ms of silence: a 200 ms pause is not one.
        await conv.expect("on_user_input", text_contains="microphone")
    runs = loud_runs(bot.received_audio)
    assert [(b - a + 1) for a, b in runs] == [15, 10]
    assert runs[1][0] - runs[0][1] - 1 == 10  # 200 ms of silence between


async def test_typed_list_joins_the_texts(client: PipecatClient, bot: TestingBotServer) -> None:
    async with Conversation(client) as conv:
        msg_id = await conv.say(["Hello", 500, "there"])
        assert isinstance(msg_id, str)
        await conv.expect("on_bot_output", text_contains="You said: Hello there")


@pytest.mark.parametrize(
    "parts", [[0], [-5], [True], [1.5], [None], ["x", 10**9]], ids=lambda p: repr(p)
)
async def test_bad_parts_are_a_clear_error(client: PipecatClient, parts: list[Any]) -> None:
    async with Conversation(client, voice=beep) as conv:
        with pytest.raises(ValueError, match=r"pause|texts"):
            await conv.say(parts, speak=True)


async def test_a_voice_returning_garbage_is_a_clear_error(client: PipecatClient) -> None:
    def broken(text: str) -> list[Any]:
        return ["not a frame"]

    def odd_rate(text: str) -> list[AudioFrame]:
        return [AudioFrame(b"\x00\x10" * 100, 1, 1)]

    async with Conversation(client, voice=broken) as conv:
        with pytest.raises(ValueError, match="not an audio frame"):
            await conv.say("hi", speak=True)
    async with Conversation(client, voice=odd_rate) as conv:
        with pytest.raises(ValueError, match="not an audio frame"):
            await conv.say("hi", speak=True)


async def test_say_after_barges_in_delay_after_the_event(
    client: PipecatClient, bot: TestingBotServer
) -> None:
    async with Conversation(client) as conv:
        await conv.say("Tell me a long story about Paris")
        await conv.expect("on_bot_llm_started")
        await within(conv.say_after("on_bot_llm_started", 150, "Actually, stop"))
        await conv.expect("on_bot_interrupted")
        await conv.expect("on_bot_output", text_contains="You said: Actually, stop")
    started = next(e for e in conv.events if e.name == "on_bot_llm_started")
    sends = [m for m in client.trace.sessions()[-1].marks if m.name == "send_text"]
    assert len(sends) == 2
    assert sends[1].at - started.at >= 0.15


async def test_say_after_fails_when_the_event_never_comes(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        await conv.say("hello")
        with pytest.raises(AssertionError, match="no on_bot_interrupted to say after within"):
            await within(conv.say_after("on_bot_interrupted", 0, "x", within=0.5))
        with pytest.raises(ValueError, match="unknown event"):
            await conv.say_after("bot_interuptted", 0, "x")
        with pytest.raises(ValueError, match="delay_ms"):
            await conv.say_after("on_bot_output", -1, "x")


async def test_two_sided_recording_puts_each_side_on_one_timeline(
    client: PipecatClient, tmp_path: Path
) -> None:
    path = tmp_path / "both.wav"
    async with Conversation(client, voice=beep) as conv:
        conv.record(path, both=True)
        await within(conv.say("one two", speak=True, trailing_silence=0.4))
        await conv.expect("on_bot_stopped_speaking")
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    assert (rate, data.shape[1]) == (RATE, 2)
    caller, bot_side = data[:, 0], data[:, 1]
    record = client.trace.sessions()[-1]
    spoken = next(m for m in record.marks if m.name == USER_AUDIO)
    first_caller = int(np.argmax(np.abs(caller) > 0))
    assert abs(first_caller - (spoken.at - record.started_at) * RATE) <= 2
    loud = np.nonzero(np.abs(caller) > 500)[0]
    assert loud[-1] - loud[0] == pytest.approx(0.2 * RATE, abs=0.01 * RATE)
    first_bot = int(np.argmax(np.abs(bot_side) > 500))
    assert first_bot > first_caller + 0.2 * RATE  # the bot answered after the speech
    assert np.count_nonzero(np.abs(bot_side) > 500) > 0.15 * RATE  # 200 ms of reply


def test_two_sided_offsets_equal_the_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    wav = TwoSidedWav(path, origin=100.0)
    loud = AudioFrame(np.full(320, 1000, "<i2").tobytes(), RATE, 1)
    wav.caller(loud, 100.5)  # sample 8000
    wav.bot(AudioFrame(np.full(960, 2000, "<i2").tobytes(), 24000, 1), 101.0)  # 16000
    wav.bot(AudioFrame(np.full(960, 2000, "<i2").tobytes(), 24000, 1), 101.0)  # plays on: 16640
    wav.caller(loud, 104.0)  # after the window: earlier audio already written, sample 64000
    wav.close()
    data, _ = soundfile.read(path, dtype="int16", always_2d=True)
    left, right = np.nonzero(data[:, 0])[0], np.nonzero(data[:, 1])[0]
    assert (left[0], left[319], left[320]) == (8000, 8319, 64000)
    assert len(left) == 640
    assert right[0] >= 15990 and right[-1] <= 17290  # resampling rings a little at the edges
    assert np.count_nonzero(np.abs(data[:, 1]) > 1000) == pytest.approx(1280, abs=20)
    assert len(data) == 64320


def test_odd_bot_audio_never_breaks_a_recording(tmp_path: Path) -> None:
    wav = TwoSidedWav(tmp_path / "odd.wav", origin=time.monotonic())
    now = time.monotonic()
    for frame in (
        AudioFrame(b"\x01\x02" * 10, 1, 1),
        AudioFrame(b"\x01\x02" * 10, 0, 1),
        AudioFrame(b"\x01\x02" * 10, 16000, 0),
        AudioFrame(b"\x01\x02" * 10, 16000, 100),
        AudioFrame(b"\x01\x02\x03", 16000, 2),  # half a sample
        AudioFrame(b"", 48000, 2),
        AudioFrame(b"\x01\x02" * 10, 10**12, 1),
        "not a frame",
    ):
        wav.bot(frame, now)  # type: ignore[arg-type]
    assert wav.dropped == 6
    wav.close()
    wav.close()
    assert soundfile.info(tmp_path / "odd.wav").channels == 2


async def test_odd_bot_audio_never_breaks_conversation_close(tmp_path: Path) -> None:
    from transports.loopback import LoopbackBot, LoopbackTransport

    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=T)
    await within(client.connect())
    conv = Conversation(client)
    conv.record(tmp_path / "bot.wav")
    conv.record(tmp_path / "both.wav", both=True)
    for frame in (
        AudioFrame(b"\x01\x02" * 10, 1, 1),  # 1 Hz: would resample without bound
        AudioFrame(b"\x01\x02" * 10, 0, 1),
        AudioFrame(b"\x01\x02" * 10, -16000, 1),
        AudioFrame(b"\x01\x02" * 10, 16000, 0),
        AudioFrame(b"\x01\x02" * 10, 16000, 99),
        AudioFrame(b"\x01\x02\x03", 16000, 2),
        AudioFrame(b"", 48000, 2),
        AudioFrame(b"\x10\x27" * 480, 24000, 1),  # and a good one
    ):
        await bot.send_audio(frame)
    await within(conv.close(), 5.0)
    await within(client.disconnect())
    assert soundfile.info(tmp_path / "bot.wav").frames == 480
    assert soundfile.info(tmp_path / "both.wav").channels == 2
