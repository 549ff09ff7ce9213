"""Dead peers against the real Pipecat 1.14 bot (issue 12.4): noticed within 5 s, no false alarm.

The bot process of this module is SIGKILLed (WebRTC: no peerLeft, nothing more on the wire;
ICE consent alone would notice after ~30 s) or SIGSTOPped (WebSocket: the kernel keeps the TCP
connection, nobody answers a ping). The transports use their default ``dead_peer_timeout``
(5 s). Healthy idle sessions stay up for 8 s (longer than the timeout); ``SOAK=1`` makes that
60 s. Times to detection are printed (``-s``) and recorded in RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from lifecycle import APIRequest, PipecatClient, State
from tests.support.processes import BotServer
from tests.support.recorder import within
from transports.base import Transport
from transports.websocket import DEFAULT_DEAD_PEER_TIMEOUT, WebSocketTransport

START = 20.0  # bound on a session start against a bot process that may be restarting
SLACK = 1.5  # scheduling slack on a loaded machine; the promise is the timeout itself
IDLE = 60.0 if os.environ.get("SOAK") == "1" else 8.0


@pytest.fixture
def bot(own_bot: BotServer) -> Iterator[BotServer]:
    own_bot.ensure_running()
    try:
        yield own_bot
    finally:
        if own_bot.process is not None and own_bot.process.poll() is None:
            os.kill(own_bot.pid, signal.SIGCONT)
        own_bot.ensure_running()


def webrtc_transport() -> Transport:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport

    return SmallWebRTCTransport(ice_servers=[])


async def ready_client(transport: Transport, start_url: str) -> tuple[PipecatClient, asyncio.Event]:
    client = PipecatClient(transport, connect_timeout=START, request_timeout=5.0)
    ended = asyncio.Event()
    client.add_event_handler("on_disconnected", lambda *a: ended.set())
    await within(client.start_bot_and_connect(APIRequest(start_url)), START)
    assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}
    return client, ended


async def expect_lost(
    client: PipecatClient, ended: asyncio.Event, struck: float, label: str
) -> None:
    errors: list[str] = []
    client.add_event_handler("on_error", lambda error: errors.append(error.message))
    await within(ended.wait(), DEFAULT_DEAD_PEER_TIMEOUT + SLACK)
    elapsed = time.monotonic() - struck
    print(f"\n{label}: detected after {elapsed:.2f} s")
    assert client.state is State.DISCONNECTED
    assert any("peer silent" in e for e in errors), errors
    assert elapsed <= DEFAULT_DEAD_PEER_TIMEOUT + SLACK
    await within(client.disconnect())


async def test_killed_webrtc_bot_is_lost_within_5_s(bot: BotServer, loopback_ice: None) -> None:
    client, ended = await ready_client(webrtc_transport(), f"{bot.base_url}/api/start")
    struck = time.monotonic()
    await asyncio.to_thread(bot.kill)
    await expect_lost(client, ended, struck, "SIGKILLed Pipecat WebRTC bot")


async def test_stopped_websocket_bot_is_lost_within_5_s(bot: BotServer) -> None:
    client, ended = await ready_client(WebSocketTransport(), f"{bot.base_url}/start")
    struck = time.monotonic()
    os.kill(bot.pid, signal.SIGSTOP)
    try:
        await expect_lost(client, ended, struck, "SIGSTOPped Pipecat WebSocket bot")
    finally:
        os.kill(bot.pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", ["webrtc", "websocket"])
async def test_healthy_idle_session_is_not_a_false_alarm(
    bot: BotServer, loopback_ice: None, kind: str
) -> None:
    if kind == "webrtc":
        transport, start = webrtc_transport(), f"{bot.base_url}/api/start"
    else:
        transport, start = WebSocketTransport(), f"{bot.base_url}/start"
    client, ended = await ready_client(transport, start)
    with pytest.raises(TimeoutError):  # idle longer than the timeout: nothing may end it
        await asyncio.wait_for(ended.wait(), IDLE)
    assert client.state is State.READY
    assert await within(client.send_client_request("echo", {"n": 2})) == {"n": 2}
    await within(client.disconnect())
