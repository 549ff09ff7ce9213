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

What the bot says on the ``chat`` data channel is :class:`transports.testing.script.BotScript`'s,
as for ``transports.testing.TestingBotServer``: ``bot-ready`` (version "2.2.0"), the testing
client-messages, and the scripted conversation on ``send-text`` and on the user's microphone
track. This module is only the wire: JSON text on the data channel, bot audio on its audio
track in real time (silence otherwise, as Pipecat's output track), and ``disconnect-bot`` or
the ``end`` client-message -> ``peerLeft`` then close.

ICE: no ICE server. aioice gathers only non-loopback host addresses, so on a host whose only
interface is loopback, the caller (a test) must make ``aioice.ice.get_host_addresses`` return
``["127.0.0.1"]`` in this process; this module never patches aioice itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL
from transports._tasks import TaskSet
from transports.testing._http import Reply
from transports.testing.script import BotScript
from transports.testing.script_runner import ScriptRunner
from transports.testing.server import STOP_TIMEOUT, BotServer
from transports.webrtc_media import OutgoingAudio, require_aiortc, to_audio_frame

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

__all__ = ["TestingWebRTCBotServer"]

_MAX_BODY: Final = 256 * 1024
_HTTP_TIMEOUT: Final = 30.0  # one whole exchange, offer/answer included


class _Peer:
    """One peer connection of the bot, and the wire its script speaks through."""

    def __init__(self, server: TestingWebRTCBotServer, script: BotScript) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.server = server
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc_id = f"testing-{uuid.uuid4().hex}"
        self.channel: RTCDataChannel | None = None
        self.audio = OutgoingAudio()  # the client's own real-time PCM track: silence, else sine
        self.ended = False
        self.runner = ScriptRunner(script, self)

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
                self.server._tasks.spawn(self.close())

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                self.server._tasks.spawn(self._listen(track))

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

    async def _listen(self, track: Any) -> None:
        """The user's microphone: every frame goes to the script (it hears user turns)."""
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while not self.ended:
                frame = to_audio_frame(await track.recv())
                if frame is not None:
                    self.runner.receive_audio(frame)

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("label") != LABEL:
            return
        self.server.received.append(message)
        self.runner.receive(message)

    # --- the wire (transports.testing.script_runner.Wire) -------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(message))

    async def send_audio(self, frame: AudioFrame) -> None:
        self.audio.push(frame)
        await asyncio.sleep(len(frame.pcm) / (2 * frame.num_channels * frame.sample_rate))

    async def interrupt(self) -> None:
        self.audio.clear()

    async def leave(self) -> None:
        """End the session as Pipecat does: ``peerLeft``, then close."""
        await self.send({"type": "signalling", "message": {"type": "peerLeft"}})
        await self.close()

    async def close(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.server._peers.pop(self.pc_id, None)
        self.audio.track.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), STOP_TIMEOUT)
        await self.runner.close()


class TestingWebRTCBotServer(BotServer):
    """A local SmallWebRTC bot with its HTTP offer endpoint (see the module docstring).

    Settings as :class:`~transports.testing.server.BotServer`'s: ``ready_delay``,
    ``send_bot_ready`` (both overridable per ``/api/start`` body or offer ``requestData``:
    ``ready_delay``, ``never_ready``) and ``dialogue``.
    """

    library = "pipecat-lifecycle-testing-webrtc"

    http_path = "/api"

    def _init_wire(self) -> None:
        require_aiortc()  # raises in the constructor, before anything listens
        self._tasks = TaskSet()
        self._peers: dict[str, _Peer] = {}

    @property
    def offer_url(self) -> str:
        """The direct offer URL (``SmallWebRTCTransport(webrtc_url=...)``)."""
        return f"{self.base_url}/offer"

    async def start(self) -> None:
        """Start listening."""
        if self._http is None:
            await self._listen_http(self._http_route, max_body=_MAX_BODY, timeout=_HTTP_TIMEOUT)

    async def stop(self) -> None:
        """Close every peer connection and the HTTP listener."""
        if not await self._close_http():
            return
        for peer in list(self._peers.values()):
            await peer.leave()
        await self._tasks.cancel_all(STOP_TIMEOUT)

    async def _http_route(self, method: str, target: str, body: bytes) -> Reply:
        payload = json.loads(body) if body.strip() else {}  # ValueError: a 400
        status, answer = await self._route(method, target.split("?", 1)[0], payload)
        return status, answer, "application/json"

    async def _route(self, method: str, target: str, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            return 400, {"detail": "JSON object expected"}
        if method == "POST" and target == "/api/start":
            sid = self._announce(payload)
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
        peer = existing or _Peer(self, self._script(options))
        if existing is None:
            self._peers[peer.pc_id] = peer
        return 200, await peer.answer(payload["sdp"])
