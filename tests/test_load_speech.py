"""Load runs that talk: each session speaks in real time; pacing lag and client CPU reported."""

from __future__ import annotations

import array
import asyncio
import json
import math
from pathlib import Path

import pytest

from lifecycle.load import LoadPlan, LoadRun, SessionContext
from lifecycle.media import AudioFrame
from tests.support.toolkit import run_cli
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

pytest.importorskip("hdrh", reason="load runs need the 'load' extra (hdrhistogram)")

TIMEOUT = 60.0
RATE = 16000
FRAME_SAMPLES = RATE // 50  # 20 ms


def tone(seconds: float, rate: int = RATE) -> tuple[AudioFrame, ...]:
    """A 440 Hz tone loud enough for the testing bot to hear it as speech, in 20 ms frames."""
    step = rate // 50
    samples = array.array(
        "h",
        (int(12000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))),
    )
    pcm = samples.tobytes()
    return tuple(
        AudioFrame(pcm=pcm[i : i + 2 * step], sample_rate=rate, num_channels=1)
        for i in range(0, len(pcm), 2 * step)
    )


async def test_sessions_speak_and_the_bot_answers_each() -> None:
    speech = tone(0.3)  # 15 frames
    async with asyncio.timeout(TIMEOUT), TestingBotServer() as bot:
        plan = LoadPlan(
            start=bot.start_url, sessions=4, concurrency=4, speech=speech, trailing_silence=0.5
        )
        stats = await LoadRun(plan, WebSocketTransport).run()
        heard = len(bot.received_audio)
    summary = stats.summary()
    assert summary["ok"] == 4 and summary["failed"] == 0, summary
    assert summary["latency_ms"]["speak"]["count"] == 4
    # The bot heard the end of each turn and answered: first output is timed from it.
    assert summary["latency_ms"]["first_output"]["count"] == 4
    frames_per_session = len(speech) + round(0.5 * RATE) // FRAME_SAMPLES
    assert heard == 4 * frames_per_session
    lag = summary["audio_send_lag_ms"]
    assert set(lag) == {"count", "p50", "p90", "p99", "max"}
    assert lag["count"] == 4 * frames_per_session
    assert 0 <= lag["p50"] <= lag["p90"] <= lag["p99"] <= lag["max"]
    assert summary["client_cpu_s"] > 0


async def test_a_run_without_speech_reports_cpu_and_no_lag() -> None:
    async with asyncio.timeout(TIMEOUT), TestingBotServer() as bot:
        stats = await LoadRun(LoadPlan(start=bot.start_url, sessions=2), WebSocketTransport).run()
    summary = stats.summary()
    assert summary["ok"] == 2
    assert "audio_send_lag_ms" not in summary
    assert summary["client_cpu_s"] >= 0


async def test_a_scenarios_audio_turns_are_measured_too() -> None:
    from lifecycle.testing import Conversation

    speech = tone(0.2)

    async def scenario(session: SessionContext) -> None:
        async with Conversation(session.client) as conversation:
            await conversation.play(speech, trailing_silence=0.4)
            await conversation.expect("on_bot_output", within=10)

    async with asyncio.timeout(TIMEOUT), TestingBotServer() as bot:
        plan = LoadPlan(start=bot.start_url, sessions=3, concurrency=3)
        stats = await LoadRun(plan, WebSocketTransport, scenario=scenario).run()
    summary = stats.summary()
    assert summary["ok"] == 3, summary
    assert summary["audio_send_lag_ms"]["count"] == 3 * (len(speech) + 20)


def test_a_plan_says_or_speaks_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        LoadPlan(start="http://x/start", say="hi", speech=tone(0.02))
    with pytest.raises(ValueError, match="trailing_silence"):
        LoadPlan(start="http://x/start", speech=tone(0.02), trailing_silence=-1)


@pytest.mark.webrtc
@pytest.mark.usefixtures("loopback_ice")
async def test_smallwebrtc_sessions_speak_and_the_bot_hears_them() -> None:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing.webrtc import TestingWebRTCBotServer

    speech = tone(0.4, 48000)  # the outgoing track's own format: sent as it is
    async with asyncio.timeout(TIMEOUT), TestingWebRTCBotServer() as bot:
        plan = LoadPlan(
            start=bot.start_url, sessions=2, concurrency=2, speech=speech, trailing_silence=0.6
        )
        stats = await LoadRun(plan, lambda: SmallWebRTCTransport(ice_servers=[])).run()
    summary = stats.summary()
    assert summary["ok"] == 2, summary
    # The bot's silence between replies is not output: first_output is its answer to the turn.
    assert summary["latency_ms"]["first_output"]["count"] == 2
    assert summary["audio_send_lag_ms"]["count"] == 2 * (len(speech) + 30)


def write_wav(path: Path, frames: tuple[AudioFrame, ...]) -> None:
    import numpy as np
    import soundfile

    pcm = b"".join(frame.pcm for frame in frames)
    soundfile.write(path, np.frombuffer(pcm, dtype="<i2"), frames[0].sample_rate, "PCM_16")


async def test_cli_audio_speaks_a_wav_file_in_every_session(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    wav = tmp_path / "hello.wav"
    write_wav(wav, tone(0.3, 24000))  # resampled once to the WebSocket's 16 kHz
    async with TestingBotServer() as bot:
        result = await asyncio.to_thread(
            run_cli, "load", "--start", bot.start_url, "-n", "3", "-c", "3",
            "--audio", str(wav), "--json",
        )  # fmt: skip
        heard = bot.received_audio
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] == 3
    assert summary["latency_ms"]["speak"]["count"] == 3
    assert summary["latency_ms"]["first_output"]["count"] == 3
    per_session = 15 + 50  # 0.3 s of speech, then 1 s of silence, in 20 ms frames
    assert summary["audio_send_lag_ms"]["count"] == 3 * per_session
    assert summary["client_cpu_s"] > 0
    assert len(heard) == 3 * per_session
    assert {(frame.sample_rate, frame.num_channels) for frame in heard} == {(RATE, 1)}


async def test_cli_table_shows_the_lag_and_the_cpu(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    wav = tmp_path / "hello.wav"
    write_wav(wav, tone(0.2))
    async with TestingBotServer() as bot:
        result = await asyncio.to_thread(
            run_cli, "load", "--start", bot.start_url, "--audio", str(wav)
        )
    assert result.returncode == 0, result.stderr
    assert "audio send lag" in result.stdout and "client CPU" in result.stdout
    assert "speak" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--speak",), "--speak goes with --say"),
        (("--say", "hi", "--audio", "x.wav"), "give one of them"),
        (("--audio", "/nonexistent/x.wav"), "load --audio"),
    ],
)
def test_cli_speech_usage_errors(args: tuple[str, ...], message: str) -> None:
    pytest.importorskip("soundfile")
    result = run_cli("load", "--start", "http://127.0.0.1:9/start", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_audio_refuses_an_empty_file(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    import soundfile

    wav = tmp_path / "empty.wav"
    soundfile.write(wav, [], 16000, "PCM_16")
    result = run_cli("load", "--start", "http://127.0.0.1:9/start", "--audio", str(wav))
    assert result.returncode == 2 and "empty.wav" in result.stderr


async def test_cli_say_speak_synthesizes_once_and_every_session_speaks() -> None:
    pytest.importorskip("espeakng_loader")
    async with TestingBotServer() as bot:
        result = await asyncio.to_thread(
            run_cli, "load", "--start", bot.start_url, "-n", "2", "-c", "2",
            "--say", "hello there", "--speak", "--json",
        )  # fmt: skip
        texts = [m for m in bot.received if m.get("type") == "send-text"]
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] == 2 and texts == []  # spoken, never sent as text
    assert summary["latency_ms"]["speak"]["count"] == 2
    assert summary["latency_ms"]["first_output"]["count"] == 2
    assert summary["audio_send_lag_ms"]["count"] > 2 * 50  # the speech, then 1 s of silence


async def test_a_barge_in_in_a_load_run_is_measured_as_its_phases() -> None:
    from lifecycle.testing import Conversation

    long_text = "Tell me a long story about Paris and its river " * 4

    async def scenario(session: SessionContext) -> None:
        async with Conversation(session.client) as conversation:
            await conversation.say(long_text)
            await conversation.expect("on_bot_started_speaking", within=20)
            await conversation.say("Actually, stop")  # talks over the bot: a barge-in
            await conversation.expect("on_bot_interrupted", within=20)
            await conversation.expect("on_bot_stopped_speaking", within=20)

    # The bot's audio plays in real time, so it is still speaking when the user talks.
    async with asyncio.timeout(TIMEOUT), TestingBotServer(realtime_audio=True) as bot:
        plan = LoadPlan(start=bot.start_url, sessions=2, concurrency=2)
        stats = await LoadRun(plan, WebSocketTransport, scenario=scenario).run()
    summary = stats.summary()
    assert summary["ok"] == 2, summary
    for phase in ("barge_in_interrupted", "barge_in_bot_stopped"):
        figures = summary["latency_ms"][phase]
        assert figures["count"] == 2, summary
        assert 0 <= figures["p50"] <= figures["p99"]
