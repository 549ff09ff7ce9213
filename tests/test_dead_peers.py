"""Dead peers are noticed within 5 s, healthy idle ones never (issue 12.4).

SmallWebRTC: a SIGKILLed bot (its own process) sends nothing more; ICE consent alone would
notice after ~30 s. The transport's watchdog counts RTP, RTCP receiver reports and data
channel messages as signs of life. WebSocket: every frame and every pong is a sign of life;
a peer that sends nothing (a frozen process; here a server that completes the handshake and
never reads or writes again) is reported lost, a bot that floods without answering pings
never. The promise is a bound, so the
time to detection is checked against it (with slack for a loaded machine) and printed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from lifecycle import PipecatClient, State
from lifecycle.rtvi import make_message
from tests.support.recorder import Recorder, within
from tests.support.ws_servers import raw_ws_server, ws_server
from transports._liveness import PeerLiveness
from transports._pb import frames_pb2 as pb
from transports.base import ConnectRequest
from transports.websocket import DEFAULT_DEAD_PEER_TIMEOUT as WS_TIMEOUT
from transports.websocket import WebSocketTransport, encode_message

SLACK = 1.5  # scheduling slack on a loaded 2-core machine; the promise is the timeout itself


# ------------------------------------------------------------------ the arithmetic (sans-I/O)


def test_liveness_reports_silence_at_the_timeout() -> None:
    live = PeerLiveness(5.0, now=100.0)
    assert live.tick == 0.5
    t = 100.0
    while (silence := live.check(t + live.tick)) is None:
        t += live.tick
    assert 4.0 <= silence <= 4.5 and t + live.tick <= 104.5 + 1e-9


def test_liveness_heard_resets_the_silence() -> None:
    live = PeerLiveness(1.0, now=0.0)
    for i in range(1, 100):
        live.heard(i * 0.1 - 0.05)
        assert live.check(i * 0.1) is None


def test_liveness_excuses_a_stall_of_our_own_loop() -> None:
    live = PeerLiveness(1.0, now=0.0)
    assert live.check(0.1) is None
    # The loop stalled for 3 s: the packets that arrived meanwhile are still unread.
    assert live.check(3.2) is None
    assert live.check(3.3) is None
    t = 3.3
    while live.check(t + 0.1) is None:
        t += 0.1
    assert t + 0.1 <= 3.3 + 0.9 + 1e-9  # counted again from the end of the stall


# ------------------------------------------------------------------ WebSocket


async def test_frozen_websocket_bot_is_lost_within_the_timeout() -> None:
    release = asyncio.Event()

    async def bot(ws: ServerConnection) -> None:
        async for data in ws:
            msg = json.loads(pb.Frame.FromString(data).message.data)  # type: ignore[arg-type]
            if msg["type"] == "client-ready":
                ready = make_message("bot-ready", {"version": "2.2.0"}, msg["id"])
                await ws.send(encode_message(ready))
                ws.transport.pause_reading()  # frozen: pings are never read, never answered
                await release.wait()
                ws.transport.resume_reading()

    async with ws_server(bot) as url:
        client = PipecatClient(WebSocketTransport(url), connect_timeout=3.0)
        rec = Recorder(client)
        ended = asyncio.Event()
        client.add_event_handler("on_disconnected", lambda *a: ended.set())
        await within(client.connect())
        frozen = time.monotonic()
        await within(ended.wait(), WS_TIMEOUT + SLACK)
        elapsed = time.monotonic() - frozen
        release.set()
    print(f"\nfrozen WebSocket bot detected after {elapsed:.2f} s")
    (error,) = (args[0] for args in rec.args("on_error"))
    assert error.fatal is True and "peer silent" in error.message
    assert rec.count("on_bot_disconnected") == 1
    assert elapsed <= WS_TIMEOUT + SLACK
    assert client.state is State.DISCONNECTED


class _Closed:
    """TransportSink that set an event on transport_closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.reason: str | None = None
        self.clean: bool | None = None

    def transport_connected(self) -> None:
        pass

    def message_received(self, message: Any) -> None:
        pass

    def message_dropped(self, reason: str) -> None:
        pass

    def audio_received(self, frame: Any) -> None:
        pass

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        self.clean, self.reason = clean, reason
        self.closed.set()


async def test_frozen_websocket_peer_after_ready_is_a_lost_link() -> None:
    spoke = asyncio.Event()

    async def one_frame_then_frozen(reader: asyncio.StreamReader, writer: Any) -> None:
        writer.write(_server_frame(encode_message(make_message("bot-ready", {}))))
        await writer.drain()
        spoke.set()  # then it never reads or writes again

    async with raw_ws_server(one_frame_then_frozen) as url:
        transport = WebSocketTransport(url, dead_peer_timeout=1.0)
        sink = _Closed()
        await within(transport.connect(ConnectRequest(), sink))
        await within(spoke.wait())
        frozen = time.monotonic()
        await within(sink.closed.wait(), 1.0 + SLACK)
        elapsed = time.monotonic() - frozen
        assert sink.clean is False
        assert sink.reason is not None and sink.reason.startswith("peer silent: nothing heard for")
        assert elapsed <= 1.0 + SLACK
        await within(transport.disconnect())


async def test_healthy_idle_websocket_is_not_a_false_alarm() -> None:
    async def handler(ws: Any) -> None:
        await ws.wait_closed()  # websockets answers every ping by itself

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url, dead_peer_timeout=1.0)
        sink = _Closed()
        await within(transport.connect(ConnectRequest(), sink))
        with pytest.raises(TimeoutError):  # 4 timeouts of idle: nothing may happen
            await asyncio.wait_for(sink.closed.wait(), 4.0)
        assert transport.connected
        await within(transport.disconnect())


async def test_a_bot_silent_before_its_first_frame_is_left_to_the_connect_timeout() -> None:
    # A Pipecat bot starting its pipeline on a busy machine answered no ping for 4 s and was
    # called dead before bot-ready; the silence clock now starts at the peer's first frame.
    async with raw_ws_server() as url:  # completes the handshake, then never a frame
        transport = WebSocketTransport(url, dead_peer_timeout=0.5)
        sink = _Closed()
        await within(transport.connect(ConnectRequest(), sink))
        with pytest.raises(TimeoutError):  # 4 timeouts: nothing may end it
            await asyncio.wait_for(sink.closed.wait(), 2.0)
        assert transport.connected
        await within(transport.disconnect())


class _Counting(_Closed):
    """_Closed that also counts the messages received before the close report."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    def message_received(self, message: Any) -> None:
        if not self.closed.is_set():
            self.received += 1


def _server_frame(payload: bytes) -> bytes:
    """One unmasked binary WebSocket frame (a server's), payload under 64 KiB."""
    if len(payload) < 126:
        return bytes([0x82, len(payload)]) + payload
    return bytes([0x82, 126]) + len(payload).to_bytes(2, "big") + payload


async def test_a_talking_websocket_bot_is_never_called_dead() -> None:
    # The bot never answers a ping (its pong is behind its own flood, or never comes) but
    # its frames keep arriving for 4 timeouts: that is life. Once they stop, it is dead.
    timeout, frames = 0.5, 200
    sent = 0
    frame = _server_frame(encode_message(make_message("server-message", {"x": "y" * 64})))

    async def talks_then_freezes(reader: asyncio.StreamReader, writer: Any) -> None:
        nonlocal sent
        for _ in range(frames):
            writer.write(frame)
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.01)  # 2 s of frames in all: 4 x the timeout

    async with raw_ws_server(talks_then_freezes) as url:
        transport = WebSocketTransport(url, dead_peer_timeout=timeout)
        sink = _Counting()
        await within(transport.connect(ConnectRequest(), sink))
        await within(sink.closed.wait(), frames * 0.01 * 20 + timeout + SLACK)
        await within(transport.disconnect())
    assert sent == frames
    assert sink.received == frames  # nothing was called dead while frames still arrived
    assert sink.clean is False and sink.reason is not None
    assert sink.reason.startswith("peer silent: nothing heard for")


# ------------------------------------------------------------------ SmallWebRTC


@pytest.mark.webrtc
async def test_killed_webrtc_bot_is_lost_within_the_timeout(loopback_ice: None) -> None:
    pytest.importorskip("aiortc")
    from tests.support.webrtc_bot_process import webrtc_bot_process
    from transports.small_webrtc import DEFAULT_DEAD_PEER_TIMEOUT as RTC_TIMEOUT
    from transports.small_webrtc import SmallWebRTCTransport

    async with webrtc_bot_process() as bot:
        client = PipecatClient(
            SmallWebRTCTransport(ice_servers=[]), connect_timeout=15.0, request_timeout=5.0
        )
        rec = Recorder(client)
        ended = asyncio.Event()
        client.add_event_handler("on_disconnected", lambda *a: ended.set())
        await within(client.start_bot_and_connect(bot.start_url), 20.0)
        assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}
        killed = time.monotonic()
        bot.kill()
        await within(ended.wait(), RTC_TIMEOUT + SLACK)
        elapsed = time.monotonic() - killed
    print(f"\nkilled WebRTC bot detected after {elapsed:.2f} s")
    (error,) = (args[0] for args in rec.args("on_error"))
    assert error.fatal is True and "peer silent for" in error.message
    assert rec.count("on_bot_disconnected") == 1
    assert elapsed <= RTC_TIMEOUT + SLACK
    assert client.state is State.DISCONNECTED
    await within(client.disconnect())


@pytest.mark.webrtc
async def test_healthy_idle_webrtc_session_is_not_a_false_alarm(loopback_ice: None) -> None:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing_webrtc import TestingWebRTCBotServer

    async with TestingWebRTCBotServer() as server:
        # A short timeout makes the check strict: 4 s idle is 4 timeouts and 40 checks.
        client = PipecatClient(
            SmallWebRTCTransport(ice_servers=[], dead_peer_timeout=1.0), connect_timeout=15.0
        )
        ended = asyncio.Event()
        client.add_event_handler("on_disconnected", lambda *a: ended.set())
        await within(client.start_bot_and_connect(server.start_url), 20.0)
        with pytest.raises(TimeoutError):  # nothing may end the idle session
            await asyncio.wait_for(ended.wait(), 4.0)
        assert client.state is State.READY
        assert await within(client.send_client_request("echo", {"n": 2})) == {"n": 2}
        await within(client.disconnect())


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_webrtc_dead_peer_timeout_is_validated(bad: Any) -> None:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport

    with pytest.raises((TypeError, ValueError), match="dead_peer_timeout"):
        SmallWebRTCTransport(dead_peer_timeout=bad)
