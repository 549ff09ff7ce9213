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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle import PipecatClient
from lifecycle.report import LANE_TITLES
from tests.support.browser import ARTIFACTS, browse, chromium, console_errors, png_size
from tests.support.interop_bots import BotProcess
from transports.websocket import WebSocketTransport

T = 20.0


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host has only loopback: aioice must offer 127.0.0.1 (tests only, never the library)."""
    aioice_ice = pytest.importorskip("aioice.ice")

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice_ice, "get_host_addresses", host_addresses)


@pytest.fixture(scope="module")
def voice_bot(interop_python_path: Path) -> Iterator[BotProcess]:
    bot = BotProcess(
        interop_python_path,
        "voice_bot.py",
        ["--port", "{port}"],
        Path(tempfile.mkdtemp(prefix="pipecat-timeline-")),
    )
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()


async def one_text_turn(voice_bot: BotProcess, kind: str) -> PipecatClient:
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
            await client.send_text("hello there")
            await anext(done)
        await client.disconnect()
    return client


@pytest.mark.parametrize("kind", ["ws", "webrtc"])
async def test_a_scripted_turn_is_timed_and_drawn(
    voice_bot: BotProcess, kind: str, tmp_path: Path
) -> None:
    client = await one_text_turn(voice_bot, kind)
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
