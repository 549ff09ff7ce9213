"""The testing toolkit against a real Pipecat 1.14 voice bot (tests/interop/voice_bot.py).

``pipecat-lifecycle test`` runs over WebSocket from the command line (text turns as
send-text, an audio turn from a WAV file that the bot's STT hears as audio frames, a
function call matched with ``calls:``, a file that must fail failing at the right line);
``Conversation`` plays and records over WebSocket and, in process with the loopback ICE
patch, over SmallWebRTC. Run with ``-s`` to see the timing tables and the figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle import PipecatClient
from lifecycle.testing import Conversation
from tests.support.interop_bots import BotProcess, running_voice_bot
from tests.support.toolkit import patch_loopback_ice, run_cli, write_scenario, write_tone
from transports.websocket import WebSocketTransport

T = 15.0
AUDIO_TRANSCRIPT = "hello from the microphone"  # what voice_bot's stand-in STT always hears


@pytest.fixture(scope="module")
def voice_bot(interop_python_path: Path) -> Iterator[BotProcess]:
    with running_voice_bot(interop_python_path, "pipecat-toolkit-") as bot:
        yield bot
    print(f"\nvoice bot log: {bot.log_path}")


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


def test_three_turn_text_scenario_from_the_command_line(voice_bot: BotProcess) -> None:
    began = time.monotonic()
    done = run_cli("test", "examples/scenarios/echo.yaml", "--start", f"{voice_bot.base_url}/start")
    wall = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr + voice_bot.tail()
    assert "echo/three_turns  PASSED" in done.stdout
    line = next(x for x in done.stdout.splitlines() if "echo/three_turns" in x)
    runner_s = line.rsplit("(", 1)[-1].rstrip(" s)")
    print(f"\n{done.stdout}\nthree-turn text scenario against the real bot: {runner_s} s in the")
    print(f"runner (start to last match), {wall:.2f} s for the whole command (process included)")


def test_audio_turn_and_function_call_scenario(voice_bot: BotProcess, tmp_path: Path) -> None:
    write_tone(tmp_path / "caller.wav", rate=44100, channels=2, seconds=0.8)
    path = write_scenario(
        tmp_path,
        "voice.yaml",
        f"""
        name: voice
        scenarios:
          - name: spoken_turn
            turns:
              - audio: caller.wav
                expect:
                  - event: user_started_speaking
                    within_ms: 5000
                  - event: user_transcription
                    text_contains: "{AUDIO_TRANSCRIPT}"
                    within_ms: 5000
                  - event: user_stopped_speaking
                    within_ms: 5000
                  - event: llm_response
                    text_contains: "{AUDIO_TRANSCRIPT}"
                    within_ms: 5000
                  - event: bot_stopped_speaking
                    within_ms: 10000
          - name: weather_call
            turns:
              - user: "what is the weather like?"
                expect:
                  - event: llm_started
                    within_ms: 5000
                  - event: function_call
                    calls:
                      - name: get_weather
                        args: {{city: Paris}}
                    within_ms: 5000
        """,
    )
    done = run_cli("test", str(path), "--start", f"{voice_bot.base_url}/start")
    print(f"\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr + voice_bot.tail()
    assert "voice/spoken_turn  PASSED" in done.stdout
    assert "voice/weather_call  PASSED" in done.stdout


def test_a_scenario_that_must_fail_fails_at_its_expectation(
    voice_bot: BotProcess, tmp_path: Path
) -> None:
    path = write_scenario(
        tmp_path,
        "wrong.yaml",
        """
        name: wrong
        turns:
          - user: "hello there"
            expect:
              - event: llm_response
                text_contains: "hello there"
          - user: "what is the capital of Germany?"
            expect:
              - event: llm_started
                within_ms: 5000
              - event: llm_response
                text_contains: "Berlin"
                within_ms: 3000
        """,
    )
    done = run_cli("test", str(path), "--start", f"{voice_bot.base_url}/start")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"{path}:11: turn 2 ('what is the capital of Germany?'), expectation "
        "llm_response ~ 'Berlin': not satisfied within 3000ms: "
        "'You said: what is the capital of Germany?" in done.stdout
    )


async def test_conversation_over_websocket_plays_and_records(
    voice_bot: BotProcess, tmp_path: Path
) -> None:
    import soundfile

    wav = write_tone(tmp_path / "caller.wav", rate=8000, seconds=0.6)
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    try:
        await within(client.start_bot_and_connect(f"{voice_bot.base_url}/start"))
        async with Conversation(client) as conv:
            conv.record(tmp_path / "bot.wav")
            await conv.say("hello there")
            await conv.expect("on_bot_output", text_contains="hello there", within=5)
            await conv.expect("on_bot_stopped_speaking", within=5)
            await conv.play(wav)
            heard = await conv.expect("on_user_input", text_contains=AUDIO_TRANSCRIPT, within=5)
            assert heard.input_type == "transcription"
            await conv.expect("on_bot_output", text_contains=AUDIO_TRANSCRIPT, within=5)
            await conv.press("42#")
            await conv.expect(
                "on_server_message", predicate=lambda d: d.get("keys") == "42#", within=5
            )
            await within(client.disconnect())
            await conv.expect("on_disconnected")
    finally:
        await within(client.disconnect())
    info = soundfile.info(tmp_path / "bot.wav")
    assert info.frames > 0 and info.samplerate > 0


@pytest.mark.webrtc
async def test_conversation_over_webrtc_in_process(
    voice_bot: BotProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    patch_loopback_ice(monkeypatch)
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport

    wav = write_tone(tmp_path / "caller.wav", rate=16000, seconds=0.6)
    transport = SmallWebRTCTransport(f"{voice_bot.base_url}/api/offer", ice_servers=[])
    client = PipecatClient(transport, connect_timeout=T)
    try:
        await within(client.connect())
        async with Conversation(client) as conv:
            await conv.play(wav)
            heard = await conv.expect("on_user_input", text_contains=AUDIO_TRANSCRIPT, within=8)
            assert heard.input_type == "transcription"
            await conv.say("what is the weather like?")
            call = await conv.expect("on_llm_function_call_in_progress", within=8)
            assert (call.function_name, call.arguments) == ("get_weather", {"city": "Paris"})
    finally:
        await within(client.disconnect())
