"""``lifecycle.testing.Conversation`` against the talking testing bots (API.md §13).

say / expect in order with text checks, failures that explain themselves, DTMF, a WAV file
played as the microphone (resampled to what the transport sends), the bot's audio recorded
to a WAV file; over WebSocket and, in process, SmallWebRTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from lifecycle import AudioFrame, PipecatClient
from lifecycle.testing import Conversation
from lifecycle.testing import audio as toolkit_audio
from tests.support.toolkit import let_webrtc_bot_close, patch_loopback_ice, ready_client, write_tone
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

T = 15.0


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


@pytest.fixture
async def bot() -> AsyncIterator[TestingBotServer]:
    async with TestingBotServer() as server:
        yield server


@pytest.fixture
async def client(bot: TestingBotServer) -> AsyncIterator[PipecatClient]:
    async with ready_client(bot.start_url, T) as client:
        yield client


async def test_say_then_expect_in_order(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        msg_id = await conv.say("hello there")
        user = await conv.expect("on_user_input", predicate=lambda u: u.msg_id == msg_id)
        assert user.text == "hello there"
        await conv.expect("on_bot_llm_started")
        output = await conv.expect("on_bot_output", text_contains="You  said: hello there")
        assert output.text == "You said: hello there"
        await conv.expect("on_bot_stopped_speaking")
        # Met in order: the LLM started before the bot stopped speaking, so it is not "next".
        with pytest.raises(AssertionError, match=r"no on_bot_llm_started within 0\.3s"):
            await conv.expect("on_bot_llm_started", within=0.3)


async def test_failure_lists_expected_event_budget_and_events_seen(
    client: PipecatClient,
) -> None:
    async with Conversation(client) as conv:
        await conv.say("hello there")
        with pytest.raises(AssertionError) as failure:
            await conv.expect("on_bot_output", text_contains="Berlin", within=1.0)
    message = str(failure.value)
    assert message.startswith("no on_bot_output with text containing 'Berlin' within 1s")
    assert "budget 1s from say('hello there')" in message
    # Every event seen since the anchor: its type, its text, and ms since the anchor.
    row = next(line for line in message.splitlines() if "on_bot_output" in line and "ms" in line)
    assert "'You said: hello there'" in row
    assert row.strip().split()[0].lstrip("+").isdigit()
    assert " ms  on_bot_output" in row
    assert "on_bot_llm_started" in message


async def test_text_excludes_fails_on_the_matching_event(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        await conv.say("please say error")
        with pytest.raises(AssertionError, match="holds the excluded 'error'"):
            await conv.expect("on_bot_output", text_excludes="error")


async def test_expect_rejects_unknown_events_and_bad_budgets(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        with pytest.raises(ValueError, match="unknown event"):
            await conv.expect("bot_outptu")
        for bad in (0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError):
                await conv.expect("on_bot_output", within=bad)


async def test_session_end_fails_a_pending_expectation_at_once(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        await client.disconnect_bot()
        with pytest.raises(AssertionError, match="the session ended before on_bot_output"):
            await within(conv.expect("on_bot_output", within=T), 5.0)


async def test_press_sends_dtmf(client: PipecatClient, bot: TestingBotServer) -> None:
    async with Conversation(client) as conv:
        await conv.press("12#")
        await conv.say("done")
        await conv.expect("on_bot_output", text_contains="done")
    dtmf = [m for m in bot.received if m.get("type") == "dtmf"]
    assert dtmf and dtmf[0]["data"] == {"buttons": ["1", "2", "#"]}


async def test_play_a_wav_file_reaches_the_bot_as_16k_mono(
    client: PipecatClient, bot: TestingBotServer, tmp_path: Path
) -> None:
    wav = write_tone(tmp_path / "hello.wav", rate=44100, channels=2, seconds=0.5)
    async with Conversation(client) as conv:
        await conv.play(wav, trailing_silence=0.5)
        heard = await conv.expect("on_user_input", text_contains="microphone")
        assert heard.input_type == "transcription"
        await conv.expect("on_bot_output", text_contains="You said: Hello from the microphone")
    frames = bot.received_audio
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(16000, 1)}
    # 0.5 s of tone then silence (the last frames may still be on their way), 20 ms each.
    assert 2 * 16000 * 0.5 < sum(len(f.pcm) for f in frames) <= 2 * 16000 * 1
    assert all(len(f.pcm) == 640 for f in frames)
    voiced = np.frombuffer(b"".join(f.pcm[:] for f in frames[:25]), dtype="<i2")
    assert 0.25 * 32768 < np.abs(voiced).max() < 0.35 * 32768


async def test_record_writes_the_bots_audio_until_the_session_ends(
    client: PipecatClient, tmp_path: Path
) -> None:
    path = tmp_path / "bot.wav"
    async with Conversation(client) as conv:
        conv.record(path)
        await conv.say("hello")
        await conv.expect("on_bot_stopped_speaking")
        await conv.say("again")
        await conv.expect("on_bot_stopped_speaking")
        await client.disconnect()
        await conv.expect("on_disconnected")
        info = await within(_wait_closed_wav(path))
    # The testing bot speaks 200 ms of 24 kHz sine per reply.
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    assert info.frames == 2 * 4800
    data, _ = soundfile.read(path, dtype="int16")
    assert np.abs(data).max() > 1000


async def _wait_closed_wav(path: Path) -> Any:
    # The recorder finishes the file on on_disconnected; its header then holds the length.
    while True:
        try:
            info = soundfile.info(path)
            if info.frames:
                return info
        except RuntimeError:
            pass
        await asyncio.sleep(0.01)  # polling a file: no event to wait on


def test_prepare_resamples_and_downmixes_any_wav(tmp_path: Path) -> None:
    for rate, channels in ((8000, 1), (22050, 2), (48000, 2), (16000, 1)):
        wav = write_tone(tmp_path / f"t{rate}.wav", rate=rate, channels=channels)
        frames = toolkit_audio.prepare(wav, 16000, 1)
        assert {(f.sample_rate, f.num_channels) for f in frames} == {(16000, 1)}
        assert abs(sum(len(f.pcm) for f in frames) - 32000) <= 4 * 2
        stereo = toolkit_audio.prepare(wav, 48000, 2)
        assert {(f.sample_rate, f.num_channels) for f in stereo} == {(48000, 2)}
        assert len(stereo[0].pcm) == 48000 * 20 // 1000 * 4


def test_prepare_takes_frames_too() -> None:
    tone = np.round(0.3 * 32767 * np.sin(np.arange(4800) / 24000 * 2 * np.pi * 440))
    pcm = tone.astype("<i2").tobytes()
    frames = [AudioFrame(pcm[i : i + 960], 24000, 1) for i in range(0, len(pcm), 960)]
    out = toolkit_audio.prepare(frames, 16000)
    assert sum(len(f.pcm) for f in out) == 2 * 3200
    with pytest.raises(ValueError):
        toolkit_audio.prepare([AudioFrame(b"\0\0", 0, 1)], 16000)


async def test_stream_to_paces_frames_in_real_time() -> None:
    now = [100.0]
    sent: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def send(frame: AudioFrame) -> None:
        sent.append(now[0])
        now[0] += 0.005  # a send takes 5 ms: the pacing must not drift by it

    frames = toolkit_audio.silence(0.1, 16000)
    await toolkit_audio.stream_to(send, frames, clock=lambda: now[0], sleep=sleep)
    assert len(frames) == 5
    assert sent == pytest.approx([100.0, 100.02, 100.04, 100.06, 100.08])


def test_input_format_follows_the_transport() -> None:
    assert toolkit_audio.input_format(WebSocketTransport()) == (16000, 1)
    small_webrtc = pytest.importorskip("transports.small_webrtc")
    transport = small_webrtc.SmallWebRTCTransport("http://127.0.0.1:1/api/offer")
    assert toolkit_audio.input_format(transport) == (48000, 1)


def test_recorder_without_frames_leaves_a_valid_empty_wav(tmp_path: Path) -> None:
    recorder = toolkit_audio.WavRecorder(tmp_path / "empty.wav")
    recorder.close()
    recorder.close()
    assert soundfile.info(tmp_path / "empty.wav").frames == 0


@pytest.mark.webrtc
async def test_webrtc_play_and_record_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    patch_loopback_ice(monkeypatch)
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing.webrtc import TestingWebRTCBotServer

    wav = write_tone(tmp_path / "in.wav", rate=16000, seconds=0.5)
    async with TestingWebRTCBotServer() as server:
        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=T)
        try:
            await within(client.start_bot_and_connect(server.start_url))
            async with Conversation(client) as conv:
                conv.record(tmp_path / "bot.wav")
                await conv.play(wav, trailing_silence=0.6)
                await conv.expect("on_user_input", text_contains="microphone", within=5)
                await conv.expect("on_bot_stopped_speaking", within=5)
                await client.disconnect()
                await conv.expect("on_disconnected")
                info = await within(_wait_closed_wav(tmp_path / "bot.wav"))
        finally:
            await within(client.disconnect())
            await let_webrtc_bot_close(server)
    assert info.samplerate == 48000  # as aiortc decodes Opus (stereo)


async def test_history_is_bounded(client: PipecatClient) -> None:
    async with Conversation(client, history=20) as conv:
        for n in range(4):  # each reply is ~20 events
            await conv.say(f"turn {n}")
            await conv.expect("on_bot_output", text_contains=f"turn {n}")
            await conv.expect("on_bot_stopped_speaking")
        assert len(conv.events) <= 20
