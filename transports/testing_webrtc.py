"""A local SmallWebRTC RTVI bot for tests and demos: :class:`TestingWebRTCBotServer` (aiortc).

It speaks what a Pipecat SmallWebRTC bot speaks, so ``SmallWebRTCTransport`` and
``PipecatClient`` can be tested end to end over 127.0.0.1 without Pipecat::

    async with TestingWebRTCBotServer() as server:
        client = PipecatClient(SmallWebRTCTransport())
        await client.start_bot_and_connect(server.start_url)
        assert await client.send_client_request("echo", {"x": 1}) == {"x": 1}

HTTP (``h11`` on 127.0.0.1, port picked by the OS): ``POST /api/start`` -> ``{"sessionId"}``
(the JSON body may hold ``never_ready`` / ``ready_delay``); ``POST /api/offer`` and
``POST /api/sessions/<sid>/api/offer`` -> ``{sdp, type: "answer", pc_id}`` (an offer with a
known ``pc_id`` renegotiates that peer connection); ``PATCH`` on the same paths adds trickled
candidates (``{"status": "success"}``; unknown ``pc_id`` -> 404).

The bot answers on the ``chat`` data channel: ``client-ready`` -> ``bot-ready`` (version
"2.2.0"), ``disconnect-bot`` and the ``end`` client-message -> ``peerLeft`` then close, and
client-messages ``echo``, ``error``, ``delay``, ``push``, ``fatal``, ``nonfatal``, ``audio``
as ``transports.testing.TestingBotServer`` does (audio: a 440 Hz sine on its audio track).
Its audio track plays silence otherwise, as Pipecat's output track does.

ICE: no ICE server. aioice gathers only non-loopback host addresses, so on a host whose only
interface is loopback, the caller (a test) must make ``aioice.ice.get_host_addresses`` return
``["127.0.0.1"]`` in this process; this module never patches aioice itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL, PROTOCOL_VERSION
from transports._http_server import JSONHTTPServer, Reply
from transports._tasks import TaskSet
from transports.webrtc_media import OutgoingAudio, require_aiortc

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

__all__ = ["TestingWebRTCBotServer"]

HOST: Final = "127.0.0.1"
_RATE: Final = 48000
_MAX_BODY: Final = 256 * 1024
_MAX_DELAY: Final = 30.0
_STOP_TIMEOUT: Final = 3.0
_HTTP_TIMEOUT: Final = 30.0  # one whole exchange, offer/answer included


def _sine(ms: int, hz: float = 440.0) -> AudioFrame:
    """``ms`` of a sine at 48 kHz mono, for the ``audio`` client message."""
    n = _RATE * ms // 1000
    amp = 0.3 * 32767
    pcm = b"".join(
        struct.pack("<h", int(amp * math.sin(2 * math.pi * hz * i / _RATE))) for i in range(n)
    )
    return AudioFrame(pcm=pcm, sample_rate=_RATE, num_channels=1)


class _Peer:
    """One peer connection of the bot."""

    def __init__(self, server: TestingWebRTCBotServer, options: Mapping[str, Any]) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.server = server
        self.options = dict(options)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc_id = f"testing-{uuid.uuid4().hex}"
        self.channel: RTCDataChannel | None = None
        self.audio = OutgoingAudio()  # the client's own real-time PCM track: silence, else sine
        self.tasks = TaskSet()
        self.ended = False

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self.channel = channel

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if isinstance(message, str) and message.startswith("ping"):
                    return
                self._on_message(message)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self.spawn(self.close())

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                self.spawn(self._drain(track))

    def spawn(self, coro: Any) -> None:
        self.tasks.spawn(coro)

    async def answer(self, sdp: str) -> dict[str, Any]:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.sender.track is None:
                transceiver.direction = "sendrecv"
                transceiver.sender.replaceTrack(self.audio.track)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return {"sdp": self.pc.localDescription.sdp, "type": "answer", "pc_id": self.pc_id}

    async def _drain(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    def send(self, message: Mapping[str, Any]) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(message))

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("label") != LABEL:
            return
        self.server.received.append(message)
        kind = message.get("type")
        if kind == "client-ready":
            self.spawn(self._ready(message.get("id")))
        elif kind == "disconnect-bot":
            self.spawn(self.leave())
        elif kind == "client-message":
            self.spawn(self._client_message(message))

    async def _ready(self, msg_id: Any) -> None:
        if self.options.get("never_ready") or not self.server.send_bot_ready:
            return
        delay = float(self.options.get("ready_delay", self.server.ready_delay) or 0)
        if delay > 0:
            await asyncio.sleep(min(delay, _MAX_DELAY))
        about = {"library": "pipecat-lifecycle-testing-webrtc"}
        self.send(_message("bot-ready", {"version": PROTOCOL_VERSION, "about": about}, msg_id))

    async def _client_message(self, message: Mapping[str, Any]) -> None:
        data = message.get("data")
        data = data if isinstance(data, Mapping) else {}
        t, d = data.get("t"), data.get("d")
        dd: Mapping[str, Any] = d if isinstance(d, Mapping) else {}
        msg_id = message.get("id")

        def respond(value: Any) -> None:
            self.send(_message("server-response", {"t": t, "d": value}, msg_id))

        if t == "echo":
            respond(d)
        elif t == "error":
            error = str(dd.get("message", "requested error"))
            self.send(_message("error-response", {"error": error}, msg_id))
        elif t == "delay":
            await asyncio.sleep(min(float(dd.get("seconds", 0)), _MAX_DELAY))
            respond(d)
        elif t == "push":
            self.send(_message("server-message", d))
            respond({"pushed": True})
        elif t == "end":
            await self.leave()
        elif t in ("fatal", "nonfatal"):
            fatal = t == "fatal"
            self.send(_message("error", {"error": f"requested {t}", "fatal": fatal}))
            if not fatal:
                respond(d)
        elif t == "audio":
            ms = int(dd.get("ms", 200))
            self.audio.push(_sine(ms))
            await asyncio.sleep(ms / 1000)
            respond({"sent": True})
        else:
            self.send(_message("error-response", {"error": f"unknown message type {t}"}, msg_id))

    async def leave(self) -> None:
        """End the session as Pipecat does: ``peerLeft``, then close."""
        self.send({"type": "signalling", "message": {"type": "peerLeft"}})
        await self.close()

    async def close(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.server._peers.pop(self.pc_id, None)
        self.audio.track.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), _STOP_TIMEOUT)


class TestingWebRTCBotServer:
    """A local SmallWebRTC bot with its HTTP offer endpoint (see the module docstring).

    ``ready_delay`` delays every ``bot-ready``; ``send_bot_ready=False`` never sends it.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, *, ready_delay: float = 0.0, send_bot_ready: bool = True) -> None:
        """Configure; nothing listens until :meth:`start`. Raises if aiortc is missing."""
        require_aiortc()
        self.ready_delay = ready_delay
        self.send_bot_ready = send_bot_ready
        self.received: list[dict[str, Any]] = []
        """Every RTVI message the bot received, in order (all sessions)."""
        self.sessions_started = 0
        """How many peer connections were created."""
        self._sessions: dict[str, dict[str, Any]] = {}
        self._peers: dict[str, _Peer] = {}
        self._http: JSONHTTPServer | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api``."""
        return f"http://{HOST}:{self._port}/api"

    @property
    def start_url(self) -> str:
        """The URL to POST to (``start_bot``); the offer then goes to the session URL."""
        return f"{self.base_url}/start"

    @property
    def offer_url(self) -> str:
        """The direct offer URL (``SmallWebRTCTransport(webrtc_url=...)``)."""
        return f"{self.base_url}/offer"

    async def start(self) -> None:
        """Start listening."""
        if self._http is None:
            http = JSONHTTPServer(self._http_route, max_body=_MAX_BODY, timeout=_HTTP_TIMEOUT)
            await http.start(HOST)
            self._http, self._port = http, http.port

    async def stop(self) -> None:
        """Close every peer connection and the HTTP listener."""
        http, self._http = self._http, None
        if http is None:
            return
        await http.stop(_STOP_TIMEOUT)
        for peer in list(self._peers.values()):
            await peer.leave()
            for task in list(peer.tasks):
                task.cancel()
        pending = [t for p in self._peers.values() for t in p.tasks]
        if pending:
            await asyncio.wait(pending, timeout=_STOP_TIMEOUT)

    async def __aenter__(self) -> TestingWebRTCBotServer:
        """Start; returns the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()

    async def _http_route(self, method: str, target: str, body: bytes) -> Reply:
        payload = json.loads(body) if body.strip() else {}  # ValueError: a 400
        status, answer = await self._route(method, target.split("?", 1)[0], payload)
        return status, answer, "application/json"

    async def _route(self, method: str, target: str, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            return 400, {"detail": "JSON object expected"}
        if method == "POST" and target == "/api/start":
            sid = uuid.uuid4().hex
            self._sessions[sid] = payload
            return 200, {"sessionId": sid, "iceConfig": {"iceServers": []}}
        options: Mapping[str, Any]
        if target == "/api/offer":
            request_data = payload.get("requestData")
            options = request_data if isinstance(request_data, dict) else {}
        elif target.startswith("/api/sessions/") and target.endswith("/api/offer"):
            sid = target[len("/api/sessions/") : -len("/api/offer")]
            if sid not in self._sessions:
                return 404, {"detail": "Invalid or not-yet-ready session_id"}
            options = self._sessions[sid]
        else:
            return 404, {"detail": "not found"}
        pc_id = payload.get("pc_id")
        if method == "PATCH":
            peer = self._peers.get(pc_id) if isinstance(pc_id, str) else None
            if peer is None:
                return 404, {"detail": "Peer connection not found"}
            return 200, {"status": "success"}
        if method != "POST" or not isinstance(payload.get("sdp"), str):
            return 400, {"detail": "an SDP offer is required"}
        existing = self._peers.get(pc_id) if isinstance(pc_id, str) else None
        peer = existing or _Peer(self, options)
        if existing is None:
            self._peers[peer.pc_id] = peer
            self.sessions_started += 1
        return 200, await peer.answer(payload["sdp"])


def _message(msg_type: str, data: Any, msg_id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"label": LABEL, "type": msg_type, "data": data}
    if msg_id is not None:
        message["id"] = msg_id
    return message
