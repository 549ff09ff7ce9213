"""SmallWebRTCTransport unit tests: URL and ICE parsing, the missing-extra error, and real
aiortc-to-aiortc sessions on loopback against a small in-test offer server (h11 over asyncio).
"""

from __future__ import annotations

import asyncio
import builtins
import fractions
import json
import math
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

pytest.importorskip("aiortc")

import aioice.ice
import av
import h11
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from lifecycle.errors import TransportError
from lifecycle.media import AudioFrame
from tests.support.threaded import in_thread
from transports.base import ConnectRequest
from transports.small_webrtc import (
    INSTALL_HINT,
    SmallWebRTCTransport,
    WebRTCUnavailableError,
    offer_url,
    parse_ice_servers,
    start_base_url,
)

pytestmark = pytest.mark.webrtc
T = 10.0  # bound for every await


# ---------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("start", "base"),
    [
        ("http://h/api/start", "http://h/api"),
        ("http://h/start", "http://h"),
        ("https://h:8443/v1/public/agent/start?token=x#f", "https://h:8443/v1/public/agent"),
        ("http://h/api/start/", "http://h/api"),
    ],
)
def test_start_base_url(start: str, base: str) -> None:
    assert start_base_url(start) == base


def test_offer_url_styles() -> None:
    direct = offer_url({"webrtcUrl": "http://x/api/offer"}, None, "http://ctor/offer")
    assert direct == ("http://x/api/offer", False)
    assert offer_url({"webrtc_url": "http://y/offer"}, "http://h/api/start", None) == (
        "http://y/offer",
        False,
    )
    session = offer_url({"sessionId": "abc"}, "http://h/api/start", "http://ctor/offer")
    assert session == ("http://h/api/sessions/abc/api/offer", True)
    assert offer_url(None, None, "http://ctor/offer") == ("http://ctor/offer", False)
    assert offer_url({}, "http://h/api/start", "http://ctor/offer") == ("http://ctor/offer", False)
    with pytest.raises(ValueError, match="no offer URL"):
        offer_url({}, None, None)
    with pytest.raises(ValueError, match="start endpoint"):
        offer_url({"sessionId": "abc"}, None, None)
    with pytest.raises(ValueError):
        offer_url({"webrtcUrl": 3}, None, None)


def test_parse_ice_servers() -> None:
    assert parse_ice_servers(None) == []
    assert parse_ice_servers([]) == []
    server = RTCIceServer(urls="turn:t:3478", username="u", credential="c")
    parsed = parse_ice_servers(
        ["stun:s:3478", server, {"urls": ["turn:a", "turn:b"], "username": "x", "credential": "y"}]
    )
    assert parsed[0].urls == "stun:s:3478"
    assert parsed[1] is server
    assert parsed[2].urls == ["turn:a", "turn:b"] and parsed[2].username == "x"
    assert parse_ice_servers("stun:one")[0].urls == "stun:one"
    for bad in ([3], [{"username": "x"}], 5, [""]):
        with pytest.raises(ValueError):
            parse_ice_servers(bad)


def test_missing_aiortc_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "aiortc" or name.startswith("aiortc."):
            raise ImportError("No module named 'aiortc'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(WebRTCUnavailableError) as info:
        SmallWebRTCTransport("http://h/api/offer")
    assert INSTALL_HINT in str(info.value)
    assert isinstance(info.value, TransportError) and isinstance(info.value, ImportError)


def test_importing_lifecycle_does_not_import_aiortc() -> None:
    import subprocess

    code = (
        "import sys, lifecycle, transports.base, transports.small_webrtc;"
        "import importlib.util;"
        "ws = importlib.util.find_spec('transports.websocket');"
        "ws and __import__('transports.websocket');"
        "print('aiortc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_constructor_rejects_bad_ice_servers() -> None:
    with pytest.raises(ValueError):
        SmallWebRTCTransport("http://h/offer", ice_servers=[42])


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice gathers no loopback address by default; this machine has only loopback."""

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", host_addresses)


class SineTrack(MediaStreamTrack):
    """48 kHz stereo 440 Hz sine, 20 ms frames in real time (the bot's voice)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += 960
            await asyncio.sleep(max(0.0, self._start + self._pts / 48000 - time.monotonic()))
        samples = b"".join(
            struct.pack("<hh", v, v)
            for v in (
                int(8000 * math.sin(2 * math.pi * 440 * (self._pts + i) / 48000))
                for i in range(960)
            )
        )
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(samples)
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


@dataclass
class Peer:
    """The answerer side of one session in the test server."""

    pc: RTCPeerConnection
    pc_id: str
    channel: RTCDataChannel | None = None
    received: list[str] = field(default_factory=list)
    pings: list[str] = field(default_factory=list)
    audio_peak: int = 0
    frame_peaks: list[int] = field(default_factory=list)  # each received frame's peak
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    channel_open: asyncio.Event = field(default_factory=asyncio.Event)
    message_event: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, obj: Mapping[str, Any]) -> None:
        assert self.channel is not None
        self.channel.send(json.dumps(obj))


class OfferServer:
    """A tiny SmallWebRTC bot: h11 HTTP offer endpoint + aiortc answerer speaking RTVI."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self.peers: dict[str, Peer] = {}
        self.peer_created = asyncio.Event()
        self.changed = asyncio.Event()  # set on every request, data-channel message, audio frame
        self.fail_offer_status: int | None = None
        self.answer_delay = 0.0
        self.no_answer_sdp = False
        self.send_bot_ready = True
        self._server: asyncio.Server | None = None
        self._count = 0
        self.base = ""

    async def __aenter__(self) -> OfferServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for peer in list(self.peers.values()):
            for task in peer.tasks:
                task.cancel()
            await asyncio.wait_for(peer.pc.close(), T)
        assert self._server is not None
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), T)

    @property
    def offer_url(self) -> str:
        return f"{self.base}/api/offer"

    def last_peer(self) -> Peer:
        return list(self.peers.values())[-1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            request: h11.Request | None = None
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            assert request is not None
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            status, payload = await self._route(
                request.method.decode(), request.target.decode(), body, headers
            )
            data = json.dumps(payload).encode()
            out = conn.send(
                h11.Response(
                    status_code=status,
                    headers=[
                        ("content-type", "application/json"),
                        ("content-length", str(len(data))),
                        ("connection", "close"),
                    ],
                )
            )
            writer.write((out or b"") + (conn.send(h11.Data(data=data)) or b""))
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        finally:
            writer.close()

    async def _route(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any]:
        payload = json.loads(body) if body else None
        target = target.split("?", 1)[0]
        self.requests.append((method, target, payload, headers))
        self.changed.set()
        if target == "/api/start":
            return 200, {"sessionId": "s1", "iceConfig": {"iceServers": []}}
        if target not in ("/api/offer", "/api/sessions/s1/api/offer"):
            return 404, {"detail": "not found"}
        if method == "PATCH":
            if payload.get("pc_id") not in self.peers:
                return 404, {"detail": "Peer connection not found"}
            return 200, {"status": "success"}
        if self.fail_offer_status is not None:
            return self.fail_offer_status, {"detail": "nope"}
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if self.no_answer_sdp:
            return 200, {"type": "answer"}
        return 200, await self._answer(payload)

    async def _answer(self, offer: Mapping[str, Any]) -> dict[str, Any]:
        pc_id = offer.get("pc_id")
        peer = self.peers.get(pc_id) if isinstance(pc_id, str) else None
        if peer is None:
            self._count += 1
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            peer = Peer(pc=pc, pc_id=f"pc-{self._count}")
            self._wire(peer)
            self.peers[peer.pc_id] = peer
            await peer.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            for transceiver in peer.pc.getTransceivers():
                if transceiver.kind == "audio":
                    transceiver.direction = "sendrecv"
                    transceiver.sender.replaceTrack(SineTrack())
            self.peer_created.set()
        else:
            # Renegotiation on the same peer connection: the server answers with a new pc_id.
            del self.peers[peer.pc_id]
            self._count += 1
            peer.pc_id = f"pc-{self._count}"
            self.peers[peer.pc_id] = peer
            await peer.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        answer = await peer.pc.createAnswer()
        await peer.pc.setLocalDescription(answer)
        return {"sdp": peer.pc.localDescription.sdp, "type": "answer", "pc_id": peer.pc_id}

    def _wire(self, peer: Peer) -> None:
        @peer.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            peer.channel = channel
            peer.channel_open.set()

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                assert isinstance(message, str)
                if message.startswith("ping"):
                    peer.pings.append(message)
                else:
                    peer.received.append(message)
                    self._on_rtvi(peer, json.loads(message))
                peer.message_event.set()
                self.changed.set()

        @peer.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                peer.tasks.append(asyncio.ensure_future(self._read(peer, track)))

    async def _read(self, peer: Peer, track: MediaStreamTrack) -> None:
        with pytest.raises(MediaStreamError):
            while True:
                frame = await track.recv()
                pcm = bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
                peak = max(abs(v) for (v,) in struct.iter_unpack("<h", pcm))
                peer.audio_peak = max(peer.audio_peak, peak)
                peer.frame_peaks.append(peak)
                self.changed.set()

    def _on_rtvi(self, peer: Peer, msg: dict[str, Any]) -> None:
        if msg["type"] == "client-ready" and self.send_bot_ready:
            peer.send(
                {
                    "label": "rtvi-ai",
                    "type": "bot-ready",
                    "id": msg["id"],
                    "data": {"version": "2.2.0", "about": {"library": "test-bot"}},
                }
            )
        elif msg["type"] == "client-message" and msg["data"]["t"] == "echo":
            data = {"t": "echo", "d": msg["data"]["d"]}
            peer.send(
                {"label": "rtvi-ai", "type": "server-response", "id": msg["id"], "data": data}
            )


class Recorder:
    """A TransportSink sink that records everything."""

    def __init__(self) -> None:
        self.connected = 0
        self.messages: list[Any] = []
        self.dropped: list[str] = []
        self.audio: list[AudioFrame] = []
        self.closed: list[tuple[bool, str | None]] = []
        self.closed_event = asyncio.Event()
        self.message_event = asyncio.Event()
        self.audio_event = asyncio.Event()

    def transport_connected(self) -> None:
        self.connected += 1

    def message_received(self, message: Any) -> None:
        self.messages.append(json.loads(message))
        self.message_event.set()

    def message_dropped(self, reason: str) -> None:
        self.dropped.append(reason)

    def audio_received(self, frame: AudioFrame) -> None:
        self.audio.append(frame)
        if len(self.audio) >= 5:
            self.audio_event.set()

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        self.closed.append((clean, reason))
        self.closed_event.set()

    async def wait_message(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                self.message_event.clear()
                await self.message_event.wait()

        return await asyncio.wait_for(wait(), T)


async def wait_until(pred: Callable[[], bool], event: asyncio.Event) -> None:
    async def wait() -> None:
        while not pred():
            event.clear()
            await event.wait()

    await asyncio.wait_for(wait(), T)


@pytest.fixture
async def server(loopback_ice: None) -> AsyncIterator[OfferServer]:
    async with OfferServer() as srv:
        yield srv


def rtvi(msg_type: str, data: Any = None, msg_id: str = "1") -> dict[str, Any]:
    return {"label": "rtvi-ai", "type": msg_type, "id": msg_id, "data": data}


def transport_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("webrtc")}


@pytest.fixture
def no_task_leak() -> Iterator[None]:
    yield
    assert not {t for t in transport_tasks() if not t.done()}


# ---------------------------------------------------------------------------- sessions


async def test_direct_session_messages_keepalive_and_disconnect(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url, ice_servers=[])
    events = Recorder()
    await asyncio.wait_for(
        transport.connect(ConnectRequest(params={"requestData": {"a": 1}}), events), T
    )
    assert events.connected == 1
    offer = server.requests[0]
    assert offer[0] == "POST" and offer[1] == "/api/offer"
    assert offer[2]["type"] == "offer" and offer[2]["pc_id"] is None
    assert offer[2]["restart_pc"] is False and offer[2]["requestData"] == {"a": 1}
    assert "a=candidate" in offer[2]["sdp"] and "127.0.0.1" in offer[2]["sdp"]
    # Transceivers as the JS client: audio sendrecv, video sendrecv, screen sendonly.
    sdp = offer[2]["sdp"]
    assert sdp.count("m=audio") == 1 and sdp.count("m=video") == 2
    assert "a=sendonly" in sdp
    assert transport.pc_id == "pc-1"
    peer = server.last_peer()

    transport.send_message(rtvi("client-ready", {"version": "2.2.0"}))
    ready = await events.wait_message(lambda m: m["type"] == "bot-ready")
    assert ready["id"] == "1"
    for i in range(20):
        transport.send_message(rtvi("client-message", {"t": "echo", "d": i}, f"m{i}"))
    await events.wait_message(lambda m: m.get("id") == "m19")
    answers = [m["data"]["d"] for m in events.messages if m["type"] == "server-response"]
    assert answers == list(range(20))  # ordered both ways
    await wait_until(lambda: len(peer.pings) >= 1, peer.message_event)
    assert peer.pings[0].startswith("ping: ")
    assert abs(int(peer.pings[0].split(": ")[1]) - time.time() * 1000) < 5000

    await asyncio.wait_for(transport.disconnect(), T)
    await asyncio.wait_for(transport.disconnect(), T)  # idempotent
    assert events.closed == []  # disconnect() reports nothing
    assert not transport_tasks()
    with pytest.raises(TransportError):
        transport.send_message(rtvi("client-message", {"t": "echo"}))


async def test_session_style_url_headers_and_ice_config(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(ice_servers=["stun:unused.invalid:3478"])
    events = Recorder()
    request = ConnectRequest(
        params={"sessionId": "s1", "iceConfig": {"iceServers": []}, "requestData": {"x": 2}},
        start_endpoint=f"{server.base}/api/start?token=secret",
        start_headers={"Authorization": "Bearer abc"},
    )
    await asyncio.wait_for(transport.connect(request, events), T)
    method, target, body, headers = server.requests[0]
    assert (method, target) == ("POST", "/api/sessions/s1/api/offer")
    assert headers["authorization"] == "Bearer abc"
    assert body["requestData"] == {"x": 2}
    # iceConfig replaced the constructor's (unreachable) STUN server: no srflx gathering.
    assert "srflx" not in body["sdp"]
    await asyncio.wait_for(transport.disconnect(), T)


async def test_peer_left_is_clean_and_drop_is_not(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url)
    for left in (True, False):
        events = Recorder()
        await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
        peer = server.last_peer()
        await asyncio.wait_for(peer.channel_open.wait(), T)
        if left:
            peer.send({"type": "signalling", "message": {"type": "peerLeft"}})
        await asyncio.wait_for(peer.pc.close(), T)
        await asyncio.wait_for(events.closed_event.wait(), T)
        assert events.closed[0][0] is left
        assert len(events.closed) == 1
        assert events.messages == []  # signalling never reaches the client
        await asyncio.wait_for(transport.disconnect(), T)
        assert len(events.closed) == 1
        assert not transport_tasks()


async def test_audio_both_ways(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url)
    events = Recorder()
    await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
    await asyncio.wait_for(events.audio_event.wait(), T)
    frame = events.audio[-1]
    assert (frame.sample_rate, frame.num_channels) == (48000, 2)
    assert len(frame.pcm) == 960 * 2 * 2
    assert any(max(struct.unpack(f"<{len(f.pcm) // 2}h", f.pcm)) > 1000 for f in events.audio)

    peer = server.last_peer()
    assert peer.audio_peak < 100  # silence until something is sent
    sine = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 300 * i / 16000)))
        for i in range(16000)
    )
    for i in range(0, len(sine), 640):
        transport.send_audio(AudioFrame(sine[i : i + 640], 16000, 1))

    await wait_until(lambda: peer.audio_peak >= 5000, server.changed)
    # Once the queue has played, the track goes back to silence and stays live: 25 more
    # silent frames (sent without an encode once the encoder settled) arrive as silence.
    await wait_until(lambda: peer.frame_peaks[-1] < 100, server.changed)
    after = len(peer.frame_peaks)
    await wait_until(lambda: len(peer.frame_peaks) >= after + 25, server.changed)
    assert max(peer.frame_peaks[after:]) < 100
    with pytest.raises(TransportError):
        transport.send_audio(AudioFrame(b"\0\0" * 10, 16000, 3))
    await asyncio.wait_for(transport.disconnect(), T)
    with pytest.raises(TransportError):
        transport.send_audio(AudioFrame(b"\0\0", 16000, 1))


async def test_audio_source_replaces_send_audio(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url, audio_source=SineTrack())
    events = Recorder()
    await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
    peer = server.last_peer()

    await wait_until(lambda: peer.audio_peak >= 5000, server.changed)
    with pytest.raises(TransportError, match="audio_source"):
        transport.send_audio(AudioFrame(b"\0\0", 16000, 1))
    await asyncio.wait_for(transport.disconnect(), T)


async def test_renegotiate_keeps_the_session(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url)
    events = Recorder()
    await asyncio.wait_for(transport.connect(ConnectRequest(params={"requestData": 7}), events), T)
    peer = server.last_peer()
    await asyncio.wait_for(peer.channel_open.wait(), T)
    assert transport.pc_id == "pc-1"
    peer.send({"type": "signalling", "message": {"type": "renegotiate"}})

    await wait_until(lambda: transport.pc_id == "pc-2", server.changed)
    second = server.requests[-1][2]
    assert second["pc_id"] == "pc-1" and second["restart_pc"] is False
    assert second["requestData"] == 7
    transport.send_message(rtvi("client-message", {"t": "echo", "d": "after"}, "r1"))
    await events.wait_message(lambda m: m.get("id") == "r1")
    peer.send({"type": "signalling", "message": {"type": "trackStatus"}})
    peer.send({"type": "signalling", "message": {"type": "mystery"}})
    transport.send_message(rtvi("client-message", {"t": "echo", "d": "x"}, "r2"))
    await events.wait_message(lambda m: m.get("id") == "r2")
    assert events.dropped == ["unknown signalling message 'mystery'"]
    assert all(m.get("type") != "signalling" for m in events.messages)
    assert events.closed == []
    await asyncio.wait_for(transport.disconnect(), T)


async def test_trickle_patch(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url)
    events = Recorder()
    await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
    assert all(r[0] == "POST" for r in server.requests)  # aiortc: everything in the offer
    candidate = "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"
    transport.queue_candidate(candidate, "0", 0)

    await wait_until(lambda: any(r[0] == "PATCH" for r in server.requests), server.changed)
    patch = next(r for r in server.requests if r[0] == "PATCH")[2]
    assert patch == {
        "pc_id": "pc-1",
        "candidates": [{"candidate": candidate, "sdp_mid": "0", "sdp_mline_index": 0}],
    }
    await asyncio.wait_for(transport.disconnect(), T)
    assert not transport_tasks()


async def test_offer_http_error_raises_and_cleans_up(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url + "?token=hunter2")
    server.fail_offer_status = 500
    with pytest.raises(TransportError, match="HTTP 500") as info:
        await asyncio.wait_for(transport.connect(ConnectRequest(), Recorder()), T)
    assert "hunter2" not in str(info.value)
    server.fail_offer_status = None
    server.no_answer_sdp = True
    with pytest.raises(TransportError, match="no SDP answer"):
        await asyncio.wait_for(transport.connect(ConnectRequest(), Recorder()), T)
    server.no_answer_sdp = False
    assert not transport_tasks()
    # The same instance connects fine afterwards.
    events = Recorder()
    await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
    assert events.connected == 1
    await asyncio.wait_for(transport.disconnect(), T)


async def test_unreachable_offer_endpoint(loopback_ice: None) -> None:
    transport = SmallWebRTCTransport("http://127.0.0.1:9/api/offer")
    with pytest.raises(TransportError, match="failed"):
        await asyncio.wait_for(transport.connect(ConnectRequest(), Recorder()), T)
    assert not transport_tasks()


async def test_connect_timeout_and_cancel(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url, connect_timeout=0.3)
    server.answer_delay = 5.0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(transport.connect(ConnectRequest(), Recorder()), T)
    assert not transport_tasks()
    task = asyncio.ensure_future(
        SmallWebRTCTransport(server.offer_url).connect(ConnectRequest(), Recorder())
    )
    # Cancel while the offer request is in flight (the server holds its answer).
    await wait_until(lambda: len(server.requests) == 2, server.changed)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, T)
    assert not transport_tasks()


async def test_many_sessions_one_instance(server: OfferServer) -> None:
    transport = SmallWebRTCTransport(server.offer_url)
    baseline: set[asyncio.Task[Any]] | None = None
    for _ in range(5):
        events = Recorder()
        await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
        transport.send_message(rtvi("client-ready", {"version": "2.2.0"}, "cr"))
        await events.wait_message(lambda m: m["type"] == "bot-ready")
        await asyncio.wait_for(transport.disconnect(), T)
        assert not transport_tasks()
        # Nothing of the client side (aiortc's own tasks included) outlives a session.
        client_tasks = {t for t in asyncio.all_tasks() if not t.done()}
        if baseline is None:
            baseline = client_tasks
        assert len(client_tasks) <= len(baseline)
    assert len(server.peers) == 5


# ---------------------------------------------------------------------------- testing bot


async def test_testing_webrtc_bot_with_client(loopback_ice: None) -> None:
    from lifecycle import MessageError, PipecatClient, State
    from transports.testing_webrtc import TestingWebRTCBotServer

    async with TestingWebRTCBotServer() as bot:
        client = PipecatClient(SmallWebRTCTransport())
        seen: list[tuple[str, Any]] = []
        changed = asyncio.Event()

        def recorder(name: str) -> Callable[..., None]:
            def record(*args: Any) -> None:
                seen.append((name, args[0] if args else None))
                changed.set()

            return record

        for name in ("on_server_message", "on_error", "on_bot_audio", "on_disconnected"):
            client.add_event_handler(name, recorder(name))
        names = lambda: [n for n, _ in seen]  # noqa: E731

        await asyncio.wait_for(client.start_bot_and_connect(bot.start_url), T)
        assert await asyncio.wait_for(client.send_client_request("echo", {"a": 1}), T) == {"a": 1}
        with pytest.raises(MessageError):
            await asyncio.wait_for(client.send_client_request("error"), T)
        assert await asyncio.wait_for(client.send_client_request("push", 5), T) == {"pushed": True}
        assert ("on_server_message", 5) in seen
        assert await asyncio.wait_for(client.send_client_request("audio", {"ms": 200}), T)

        def loud() -> bool:
            frames = [f for n, f in seen if n == "on_bot_audio"]
            return any(max(struct.unpack(f"<{len(f.pcm) // 2}h", f.pcm)) > 2000 for f in frames)

        await wait_until(loud, changed)
        client.send_client_message("end")
        await wait_until(lambda: "on_disconnected" in names(), changed)
        assert client.state is State.DISCONNECTED

        # Direct URL, then a fatal error ends the session.
        await asyncio.wait_for(client.connect({"webrtcUrl": bot.offer_url}), T)
        client.send_client_message("fatal")
        await wait_until(lambda: names().count("on_disconnected") == 2, changed)
        assert any(n == "on_error" and e.fatal for n, e in seen)
        assert [m["type"] for m in bot.received].count("client-ready") == 2
        assert bot.sessions_started == 2
        await asyncio.wait_for(client.disconnect(), T)
    assert not transport_tasks()


# ---------------------------------------------------------------------------- event loops


def test_transport_survives_the_event_loop_ending_while_connected(loopback_ice: None) -> None:
    """asyncio.run() may end with a session up; the next connect() on a new loop works."""
    from transports.testing_webrtc import TestingWebRTCBotServer

    with in_thread(TestingWebRTCBotServer()) as bot:
        transport = SmallWebRTCTransport(bot.offer_url)

        async def session(end: bool) -> None:
            events = Recorder()
            await asyncio.wait_for(transport.connect(ConnectRequest(), events), T)
            transport.send_message(rtvi("client-ready", {"version": "2.2.0"}, "cr"))
            await events.wait_message(lambda m: m["type"] == "bot-ready")
            if end:
                await asyncio.wait_for(transport.disconnect(), T)

        with structlog.testing.capture_logs() as logs:
            asyncio.run(session(end=False))  # the loop ends with the session up
            asyncio.run(session(end=False))  # a new loop: the old session is dropped, not awaited
            asyncio.run(session(end=True))
        assert transport.pc_id is None
        # Nothing of a dead loop was awaited (aiortc's close() of it would fail or time out).
        assert [e for e in logs if e["log_level"] in ("warning", "error")] == []


def test_client_and_transport_on_two_event_loops_in_a_row(loopback_ice: None) -> None:
    from lifecycle import PipecatClient, State
    from transports.testing_webrtc import TestingWebRTCBotServer

    with in_thread(TestingWebRTCBotServer()) as bot:
        client = PipecatClient(SmallWebRTCTransport(), connect_timeout=T, request_timeout=T)

        async def session() -> None:
            # The last loop ended with the session READY, without disconnect().
            await asyncio.wait_for(client.start_bot_and_connect(bot.start_url), T)
            assert await asyncio.wait_for(client.send_client_request("echo", {"n": 1}), T) == {
                "n": 1
            }

        asyncio.run(session())
        asyncio.run(session())

        async def end() -> None:
            await asyncio.wait_for(client.disconnect(), T)

        asyncio.run(end())
        assert client.state is State.DISCONNECTED
