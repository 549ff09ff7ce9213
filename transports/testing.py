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

The bot answers ``client-ready`` with ``bot-ready`` (version "2.2.0", about
``{"library": "pipecat-lifecycle-testing"}``) unless held back, ``disconnect-bot`` by closing
with 1000, a text WebSocket frame by closing with 1000 (as Pipecat does), and a
``client-message`` by its type ``t``:

* ``echo``: server-response with ``d`` as sent;
* ``error``: error-response ``d.get("message", "requested error")``;
* ``delay``: waits ``d["seconds"]`` (at most 30), then echoes;
* ``push``: server-message with data ``d``, then server-response ``{"pushed": true}``;
* ``end``: the bot ends the session (close 1000), no response;
* ``fatal`` / ``nonfatal``: RTVI ``error`` ``{"error": "requested fatal|nonfatal", "fatal": ..}``
  (``nonfatal`` then echoes);
* ``audio``: ``d.get("ms", 200)`` ms of a 440 Hz sine, 16 kHz mono s16le, in 40 ms audio
  frames, then server-response ``{"sent": true}``;
* anything else: error-response ``unknown message type <t>``.

Every RTVI message the bot got is appended to :attr:`TestingBotServer.received`, every audio
frame to :attr:`TestingBotServer.received_audio`.
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
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from google.protobuf.message import DecodeError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL, PROTOCOL_VERSION
from transports._http_server import JSONHTTPServer, Reply
from transports._pb import frames_pb2 as pb
from transports._tasks import TaskSet
from transports.websocket import encode_audio, encode_message

__all__ = ["TestingBotServer"]

HOST: Final = "127.0.0.1"
AUDIO_SAMPLE_RATE: Final = 16000
CHUNK_MS: Final = 40
_MAX_DELAY: Final = 30.0
_HTTP_TIMEOUT: Final = 10.0
_MAX_BODY: Final = 64 * 1024
_STOP_TIMEOUT: Final = 3.0


def sine_pcm(ms: int, sample_rate: int = AUDIO_SAMPLE_RATE, hz: float = 440.0) -> bytes:
    """Mono s16le PCM of a sine wave, ``ms`` milliseconds long."""
    n = sample_rate * ms // 1000
    amp = 0.3 * 32767
    return b"".join(
        struct.pack("<h", int(amp * math.sin(2 * math.pi * hz * i / sample_rate))) for i in range(n)
    )


class TestingBotServer:
    """A local HTTP ``/start`` endpoint plus a WebSocket RTVI bot (see the module docstring).

    ``ready_delay`` delays every ``bot-ready`` by that many seconds; ``send_bot_ready=False``
    never sends it (a bot that stays silent). A session started through ``/start`` may
    override both with ``ready_delay`` / ``never_ready`` in the request body.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, *, ready_delay: float = 0.0, send_bot_ready: bool = True) -> None:
        """Configure; nothing listens until :meth:`start`."""
        self.ready_delay = ready_delay
        self.send_bot_ready = send_bot_ready
        self.received: list[dict[str, Any]] = []
        """Every RTVI message the bot received, in order (all sessions)."""
        self.received_audio: list[AudioFrame] = []
        """Every audio frame the bot received, in order (all sessions)."""
        self.sessions_started = 0
        """How many WebSocket sessions have been accepted."""
        self._sessions: dict[str, dict[str, Any]] = {}
        self._http: JSONHTTPServer | None = None
        self._ws: Server | None = None
        self._http_port = 0
        self._ws_port = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def start_url(self) -> str:
        """The URL to POST to (``start_bot``)."""
        return f"http://{HOST}:{self._http_port}/start"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<http port>`` (``/unauthorized`` and ``/broken`` live there)."""
        return f"http://{HOST}:{self._http_port}"

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
        http = JSONHTTPServer(self._http_route, max_body=_MAX_BODY, timeout=_HTTP_TIMEOUT)
        await http.start(HOST)
        self._http = http
        self._http_port = http.port

    async def stop(self) -> None:
        """Close every connection and both listeners; leaves no task behind."""
        http, ws = self._http, self._ws
        self._http = self._ws = None
        if http is not None:
            await http.stop(_STOP_TIMEOUT)
        if ws is not None:
            ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), _STOP_TIMEOUT)

    async def __aenter__(self) -> TestingBotServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

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
                await asyncio.sleep(min(float(delay), _MAX_DELAY))
        sid = uuid.uuid4().hex
        self._sessions[sid] = options if isinstance(options, dict) else {}
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
        options = self._sessions.pop(sid, {}) if sid else {}
        return {
            "ready_delay": float(options.get("ready_delay", self.ready_delay) or 0),
            "never_ready": bool(options.get("never_ready", not self.send_bot_ready)),
        }

    async def _ws_session(self, ws: ServerConnection) -> None:
        self.sessions_started += 1
        options = self._options(ws)
        tasks = TaskSet()
        spawn = tasks.spawn

        try:
            async for data in ws:
                if isinstance(data, str):  # Pipecat ends the session on a text frame
                    await ws.close(1000)
                    break
                message = self._decode(data)
                if message is None:
                    continue
                msg_type = message["type"]
                if msg_type == "client-ready":
                    spawn(self._ready(ws, message, options))
                elif msg_type == "client-message":
                    spawn(self._client_message(ws, message))
                elif msg_type == "disconnect-bot":
                    await ws.close(1000)
                    break
                elif msg_type == "send-text":
                    pass
                else:
                    error = f"unsupported message type {msg_type}"
                    await _send(ws, _message("error-response", {"error": error}, message.get("id")))
        except ConnectionClosed:
            pass
        finally:
            await tasks.cancel_all()

    def _decode(self, data: bytes) -> dict[str, Any] | None:
        try:
            frame = pb.Frame.FromString(data)
        except DecodeError:
            return None
        kind = frame.WhichOneof("frame")
        if kind == "audio":
            a = frame.audio
            self.received_audio.append(AudioFrame(bytes(a.audio), a.sample_rate, a.num_channels))
            return None
        if kind != "message":
            return None
        try:
            message = json.loads(frame.message.data)
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

    async def _ready(
        self, ws: ServerConnection, message: Mapping[str, Any], options: Mapping[str, Any]
    ) -> None:
        data = message.get("data")
        version = data.get("version") if isinstance(data, Mapping) else None
        if not isinstance(version, str) or version.split(".", 1)[0] != "2":
            error = f"unsupported RTVI protocol version {version!r}"
            await _send(ws, _message("error-response", {"error": error}, message.get("id")))
        if options["never_ready"]:
            return
        if options["ready_delay"] > 0:
            await asyncio.sleep(options["ready_delay"])
        ready = {
            "version": PROTOCOL_VERSION,
            "about": {"library": "pipecat-lifecycle-testing", "library_version": "0"},
            "capabilities": {"audio_in": True, "audio_out": True},
        }
        await _send(ws, _message("bot-ready", ready, message.get("id")))

    async def _client_message(self, ws: ServerConnection, message: Mapping[str, Any]) -> None:
        data = message.get("data")
        data = data if isinstance(data, Mapping) else {}
        t, d = data.get("t"), data.get("d")
        dd: Mapping[str, Any] = d if isinstance(d, Mapping) else {}
        msg_id = message.get("id")

        async def respond(value: Any) -> None:
            await _send(ws, _message("server-response", {"t": t, "d": value}, msg_id))

        async def fail(text: str) -> None:
            await _send(ws, _message("error-response", {"error": text}, msg_id))

        try:
            if t == "echo":
                await respond(d)
            elif t == "error":
                await fail(str(dd.get("message", "requested error")))
            elif t == "delay":
                await asyncio.sleep(min(max(float(dd.get("seconds", 0)), 0.0), _MAX_DELAY))
                await respond(d)
            elif t == "push":
                await _send(ws, _message("server-message", d))
                await respond({"pushed": True})
            elif t == "end":
                await ws.close(1000)
            elif t in ("fatal", "nonfatal"):
                fatal = t == "fatal"
                await _send(ws, _message("error", {"error": f"requested {t}", "fatal": fatal}))
                if not fatal:
                    await respond(d)
            elif t == "audio":
                ms = int(dd.get("ms", 200))
                pcm = sine_pcm(max(0, min(ms, 60_000)))
                chunk = AUDIO_SAMPLE_RATE * CHUNK_MS // 1000 * 2
                for i in range(0, len(pcm), chunk):
                    frame = AudioFrame(pcm[i : i + chunk], AUDIO_SAMPLE_RATE, 1)
                    await _send_bytes(ws, encode_audio(frame))
                await respond({"sent": True})
            else:
                await fail(f"unknown message type {t}")
        except (ValueError, TypeError) as exc:
            await fail(str(exc))


def _message(msg_type: str, data: Any, msg_id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"label": LABEL, "type": msg_type}
    if msg_id is not None:
        message["id"] = msg_id
    message["data"] = data
    return message


async def _send(ws: ServerConnection, message: Mapping[str, Any]) -> None:
    await _send_bytes(ws, encode_message(message))


async def _send_bytes(ws: ServerConnection, data: bytes) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data)
