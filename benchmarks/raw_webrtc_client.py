"""A minimal hand-written RTVI client over SmallWebRTC: ``aiortc`` directly, no lifecycle.

What the JS client does on the wire, and nothing more: transceivers audio sendrecv, video
sendrecv, video sendonly (no tracks: nothing is encoded or sent), data channel "chat", the
keepalive ``ping: <ms>`` every second, offer POSTed with ONE reused httpx client.

The benchmark process must patch ``aioice.ice.get_host_addresses`` for loopback ICE (see
:func:`loopback_ice`); benchmarks are not library code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import httpx

_ids = itertools.count()


def loopback_ice() -> None:
    """Make aioice gather 127.0.0.1 only (this machine has no other interface)."""
    import aioice.ice

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = host_addresses


class RawWebRTCClient:
    """One peer connection; :meth:`connect` resolves on ``bot-ready``."""

    def __init__(
        self, http: httpx.AsyncClient, audio_track: Any = None, receive_audio: bool = False
    ) -> None:
        """``audio_track``: an aiortc track to send (else none); ``receive_audio``: decode the
        bot's audio track and drop each frame (what a bare receiver does)."""
        self.http = http
        self.audio_track = audio_track
        self.receive_audio = receive_audio
        self.audio_frames = 0
        self.heard = asyncio.Event()
        """Set by every bot audio frame received (clear it to wait for the next)."""
        self.pc: Any = None
        self.channel: Any = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, offer_url: str) -> dict[str, Any]:
        """Offer, answer, open the data channel, client-ready; return the bot-ready message."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        opened: asyncio.Future[None] = loop.create_future()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.addTransceiver(self.audio_track or "audio", direction="sendrecv")
        if self.receive_audio:

            @pc.on("track")
            def on_track(track: Any) -> None:
                if track.kind == "audio":
                    self._tasks.append(asyncio.create_task(self._drain(track)))

        pc.addTransceiver("video", direction="sendrecv")
        pc.addTransceiver("video", direction="sendonly")
        channel = pc.createDataChannel("chat", ordered=True)
        self.channel = channel

        @channel.on("open")
        def on_open() -> None:
            if not opened.done():
                opened.set_result(None)
            self._tasks.append(asyncio.create_task(self._ping()))

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            if not isinstance(raw, str) or raw.startswith("ping"):
                return
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "bot-ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
            elif kind in ("server-response", "error-response"):
                future = self._pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message.get("data"))

        await pc.setLocalDescription(await pc.createOffer())
        body: dict[str, Any] = {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "pc_id": None,
            "restart_pc": False,
            "requestData": {},
        }
        response = await self.http.post(offer_url, json=body)
        response.raise_for_status()
        answer = response.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await opened
        channel.send(
            json.dumps(
                {
                    "label": "rtvi-ai",
                    "type": "client-ready",
                    "id": f"r{next(_ids)}",
                    "data": {
                        "version": "2.2.0",
                        "about": {"library": "raw-bench", "library_version": "0"},
                    },
                }
            )
        )
        return await self._ready

    async def _drain(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.audio_frames += 1
                self.heard.set()

    async def _ping(self) -> None:
        while self.channel is not None and self.channel.readyState == "open":
            self.channel.send(f"ping: {int(time.time() * 1000)}")
            await asyncio.sleep(1.0)

    async def request(self, msg_type: str, data: Any = None) -> Any:
        """Send a client-message and return its response data."""
        msg_id = f"m{next(_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        message = {
            "label": "rtvi-ai",
            "type": "client-message",
            "id": msg_id,
            "data": {"t": msg_type, "d": data},
        }
        self.channel.send(json.dumps(message))
        return await future

    async def close(self) -> None:
        """Close the data channel and the peer connection."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.channel is not None:
            with contextlib.suppress(Exception):
                self.channel.close()
        if self.pc is not None:
            await self.pc.close()
        self.pc = self.channel = None
