"""A local RTVI bot for tests: :class:`TestingBotServer`, no Pipecat needed.

It speaks what a Pipecat bot behind the WebSocket transport speaks (binary protobuf
``pipecat.Frame`` messages carrying RTVI JSON), so ``WebSocketTransport`` and
``PipecatClient`` can be tested end to end over 127.0.0.1::

    async with TestingBotServer() as server:
        client = PipecatClient(WebSocketTransport())
        await client.start_bot_and_connect(server.start_url)
        assert await client.send_client_request("echo", {"x": 1}) == {"x": 1}

Two listening sockets on 127.0.0.1 (ports picked by the OS):

* HTTP (``h11``): ``POST /start`` -> ``{"wsUrl": "ws://127.0.0.1:P/ws/<sid>", "sessionId": sid}``;
  its JSON body may hold session options ``never_ready`` (bool) and ``ready_delay`` (seconds);
  ``?delay=S`` waits S seconds before answering. ``POST /unauthorized`` -> 401 JSON,
  ``POST /broken`` -> 500 with an HTML body. (``websockets`` cannot read a request body, hence
  a separate HTTP port.)
* WebSocket (``websockets``): ``/ws`` (server defaults) and ``/ws/<sid>`` (a session started
  with ``/start``).

What the bot says is :class:`transports.testing.script.BotScript`'s (the same script as the
WebRTC testing bot's and ``LoopbackBot``'s): ``client-ready`` -> ``bot-ready`` (version
"2.2.0", about ``{"library": "pipecat-lifecycle-testing"}``) unless held back, the testing
client-messages of :mod:`transports.testing.client_messages` (``echo``, ``error``,
``delay``, ``push``, ``end``, ``fatal``, ``nonfatal``, ``audio``), and a scripted voice-bot
conversation on ``send-text`` and on microphone audio (``dialogue=``, see
`~transports.testing.dialogue.Dialogue`). This module is only the wire: protobuf frames,
bot audio as 40 ms audio frames, an interruption frame with ``bot-interrupted``, ``disconnect-bot``
and ``end`` close with 1000, and a text WebSocket frame closes with 1000 (as Pipecat does).

Every RTVI message the bot got is appended to :attr:`TestingBotServer.received`, every audio
frame to :attr:`TestingBotServer.received_audio`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL
from transports._pb import frames_pb2 as pb
from transports.testing._http import Reply
from transports.testing.actions import MAX_DELAY
from transports.testing.dialogue import DEFAULT_DIALOGUE, Dialogue
from transports.testing.script_runner import ScriptRunner
from transports.testing.server import HOST, STOP_TIMEOUT, BotServer
from transports.websocket import decode_frame, encode_audio, encode_message

__all__ = ["TestingBotServer"]

_HTTP_TIMEOUT: Final = 10.0
_MAX_BODY: Final = 64 * 1024
_INTERRUPTION: Final = pb.Frame(interruption=pb.InterruptionFrame()).SerializeToString()


class TestingBotServer(BotServer):
    """A local HTTP ``/start`` endpoint plus a WebSocket RTVI bot (see the module docstring).

    Settings as :class:`~transports.testing.server.BotServer`'s: ``ready_delay``,
    ``send_bot_ready`` (both overridable per ``/start`` body: ``ready_delay``,
    ``never_ready``) and ``dialogue``. ``realtime_audio=True`` paces the bot's audio as it
    would play, one frame per frame's duration, as Pipecat's WebSocket output does: the
    speaking events then fall where a listener hears them. Off by default, so tests that need
    no pacing run at full speed.
    """

    def __init__(
        self,
        *,
        ready_delay: float = 0.0,
        send_bot_ready: bool = True,
        dialogue: Dialogue | None = DEFAULT_DIALOGUE,
        realtime_audio: bool = False,
    ) -> None:
        """Configure; nothing listens until :meth:`start`."""
        self.realtime_audio = realtime_audio
        super().__init__(ready_delay=ready_delay, send_bot_ready=send_bot_ready, dialogue=dialogue)

    def _init_wire(self) -> None:
        self.received_audio: list[AudioFrame] = []
        """Every audio frame the bot received, in order (all sessions)."""
        self._ws: Server | None = None
        self._ws_port = 0

    @property
    def ws_url(self) -> str:
        """The WebSocket URL of a session with the server's default options."""
        return f"ws://{HOST}:{self._ws_port}/ws"

    async def start(self) -> None:
        """Start listening on both ports."""
        if self._http is not None:
            return
        self._ws = await serve(
            self._ws_session, HOST, 0, process_request=self._ws_route, max_size=16 * 2**20
        )
        self._ws_port = next(iter(self._ws.sockets)).getsockname()[1]
        await self._listen_http(self._http_route, max_body=_MAX_BODY, timeout=_HTTP_TIMEOUT)

    async def stop(self) -> None:
        """Close every connection and both listeners; leaves no task behind."""
        ws, self._ws = self._ws, None
        await self._close_http()
        if ws is not None:
            ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), STOP_TIMEOUT)

    # --- HTTP ---------------------------------------------------------------------------

    async def _http_route(self, method: str, raw_target: str, body: bytes) -> Reply:
        target = urlsplit(raw_target)
        if target.path == "/unauthorized":
            return 401, {"detail": "unauthorized"}, "application/json"
        if target.path == "/broken":
            html = "<html><body>Internal Server Error</body></html>"
            return 500, html, "text/html"
        if target.path != "/start":
            return 404, {"detail": "not found"}, "application/json"
        if method != "POST":
            return 405, {"detail": "method not allowed"}, "application/json"
        try:
            options = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"detail": "body is not JSON"}, "application/json"
        delay = parse_qs(target.query).get("delay", ["0"])[0]
        with contextlib.suppress(ValueError):
            if float(delay) > 0:
                await asyncio.sleep(min(float(delay), MAX_DELAY))
        sid = self._announce(options)
        ws_url = f"ws://{HOST}:{self._ws_port}/ws/{sid}"
        return 200, {"wsUrl": ws_url, "sessionId": sid}, "application/json"

    # --- WebSocket bot ------------------------------------------------------------------

    def _ws_route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws" or path.startswith("/ws/"):
            return None
        return Response(404, "Not Found", Headers([("Content-Length", "0")]), b"")

    def _options(self, connection: ServerConnection) -> dict[str, Any]:
        path = urlsplit(connection.request.path if connection.request else "/ws").path
        sid = path[len("/ws/") :] if path.startswith("/ws/") else ""
        return self._sessions.pop(sid, {}) if sid else {}

    async def _ws_session(self, ws: ServerConnection) -> None:
        wire = _WebSocketWire(ws, paced=self.realtime_audio)
        runner = ScriptRunner(self._script(self._options(ws)), wire)
        try:
            async for data in ws:
                if isinstance(data, str):  # Pipecat ends the session on a text frame
                    await ws.close(1000)
                    break
                inbound = self._decode(data)
                if isinstance(inbound, AudioFrame):
                    runner.receive_audio(inbound)
                elif inbound is not None:
                    runner.receive(inbound)
        except ConnectionClosed:
            pass
        finally:
            await runner.close()

    def _decode(self, data: bytes) -> dict[str, Any] | AudioFrame | None:
        try:
            inbound = decode_frame(data)
        except ValueError:
            return None
        if isinstance(inbound, AudioFrame):
            self.received_audio.append(inbound)
            return inbound
        try:
            message = json.loads(inbound) if isinstance(inbound, str) else None
        except ValueError:
            return None
        if (
            not isinstance(message, dict)
            or message.get("label") != LABEL
            or not isinstance(message.get("type"), str)
        ):
            return None
        self.received.append(message)
        return message


class _WebSocketWire:
    """The bot's side of one WebSocket: protobuf frames; a closed socket swallows sends."""

    def __init__(self, ws: ServerConnection, *, paced: bool = False) -> None:
        self._ws = ws
        self._paced = paced
        self._played_until = 0.0  # loop time when the audio sent so far has played

    async def send(self, message: Mapping[str, Any]) -> None:
        await self._send(encode_message(message))

    async def send_audio(self, frame: AudioFrame) -> None:
        await self._send(encode_audio(frame))
        if self._paced:
            # The frame "plays" for its duration before the next one (or the speaking event
            # after the last one) leaves; a late start never makes the next frames burst.
            now = asyncio.get_running_loop().time()
            self._played_until = max(self._played_until, now) + frame.duration
            await asyncio.sleep(self._played_until - now)

    async def interrupt(self) -> None:
        self._played_until = 0.0
        await self._send(_INTERRUPTION)  # Pipecat sends it alongside bot-interrupted

    async def leave(self) -> None:
        await self._ws.close(1000)

    async def _send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(data)
