"""Turn latencies and the HTML timeline of sessions with the real Pipecat 1.14 voice bot.

One scripted text turn over each transport (WebSocket and SmallWebRTC): every figure of the
turn is there and in order, the bot's own ttfb per service beside them, and the session's
timeline opened in headless Chromium shows every lane and the turn. Pages and screenshots
go to ``test-artifacts/timeline-pipecat-<transport>.{html,png}``; run with ``-s`` for the
figures.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle import AudioFrame, PipecatClient
from lifecycle.report import LANE_TITLES
from tests.support.browser import ARTIFACTS, browse, chromium, console_errors, png_size
from tests.support.interop_bots import BotProcess, running_voice_bot
from transports.testing.messages import sine_pcm
from transports.websocket import WebSocketTransport

T = 20.0


@pytest.fixture(autouse=True)
def _loopback_ice(loopback_ice: None) -> None:
    """Every test here may open a WebRTC peer on this loopback-only host."""


@pytest.fixture(scope="module")
def voice_bot(interop_python_path: Path) -> Iterator[BotProcess]:
    with running_voice_bot(interop_python_path, "pipecat-timeline-") as bot:
        yield bot


async def speak(client: PipecatClient) -> None:
    """A microphone: 400 ms of a tone then 500 ms of silence, in 20 ms frames (16 kHz mono)."""
    speech = sine_pcm(400, 16000) + b"\x00\x00" * 8000
    for offset in range(0, len(speech), 640):
        await client.send_audio(AudioFrame(speech[offset : offset + 640], 16000, 1))


async def one_turn(voice_bot: BotProcess, kind: str, *, spoken: bool = False) -> PipecatClient:
    if kind == "ws":
        client = PipecatClient(WebSocketTransport(), connect_timeout=T)
        connect = client.start_bot_and_connect(f"{voice_bot.base_url}/start")
    else:
        pytest.importorskip("aiortc")
        from transports.small_webrtc import SmallWebRTCTransport

        transport = SmallWebRTCTransport(f"{voice_bot.base_url}/api/offer", ice_servers=[])
        client = PipecatClient(transport, connect_timeout=T)
        connect = client.connect()
    async with asyncio.timeout(T):
        await connect
        async with client.events("on_bot_stopped_speaking") as done:
            if spoken:
                await speak(client)
            else:
                await client.send_text("hello there")
            await anext(done)
        await client.disconnect()
    return client


@pytest.mark.parametrize("kind", ["ws", "webrtc"])
async def test_a_scripted_turn_is_timed_and_drawn(
    voice_bot: BotProcess, kind: str, tmp_path: Path
) -> None:
    client = await one_turn(voice_bot, kind)
    (turn,) = client.trace.turns()
    print(f"\nreal Pipecat bot over {kind}: {turn.summary()}")
    assert turn.source == "text" and turn.user_text == "hello there"
    assert turn.llm_first_ms is not None and turn.tts_first_ms is not None
    assert turn.audio_first_ms is not None and turn.bot_speaking_ms is not None
    # The LLM's first token comes first; the TTS text and its audio in either order.
    assert 0 <= turn.llm_first_ms <= min(turn.tts_first_ms, turn.audio_first_ms)
    assert turn.bot_text == "You said: hello there. How can I help?"
    processors = {name.split("#")[0] for name in turn.ttfb}
    assert {"StandInLLM", "StandInTTS"} <= processors, turn.ttfb
    assert turn.bot_stopped_at is not None and not turn.interrupted

    browser = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / f"timeline-pipecat-{kind}.html"
    page.write_text(client.trace.to_html(), encoding="utf-8")
    dom, log = await browse(browser, page, tmp_path / "dom", "--dump-dom")
    assert console_errors(log) == []
    assert re.search(r'<html[^>]*data-timeline="ready"', dom)
    for lane, heading in LANE_TITLES:
        assert f'data-lane="{lane}"' in dom and f">{heading}</text>" in dom
    assert f"turn 1: {turn.answered_ms:.1f} ms" in dom
    shot = ARTIFACTS / f"timeline-pipecat-{kind}.png"
    shot.unlink(missing_ok=True)
    _, log = await browse(
        browser, page, tmp_path / "shot", f"--screenshot={shot}", "--window-size=1280,900"
    )
    assert console_errors(log) == [] and png_size(shot) == (1280, 900)
    print(f"screenshot: {shot}")


@pytest.mark.parametrize("kind", ["ws", "webrtc"])
async def test_a_spoken_turn_is_timed_from_user_stopped_speaking(
    voice_bot: BotProcess, kind: str
) -> None:
    client = await one_turn(voice_bot, kind, spoken=True)
    (turn,) = client.trace.turns()
    print(f"\nreal Pipecat bot over {kind}, spoken: {turn.summary()}")
    assert turn.source == "speech" and turn.user_stopped_at is not None
    assert turn.input_ended_at is not None  # the last sound the client sent
    assert turn.user_text == "hello from the microphone"  # the stand-in STT
    assert turn.llm_first_ms is not None and turn.bot_speaking_ms is not None
    assert turn.llm_first_ms >= 0 and "StandInLLM" in {n.split("#")[0] for n in turn.ttfb}
