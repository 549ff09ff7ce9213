"""A real Pipecat (1.14) test bot for interop tests.

Run with the interop venv's python (pipecat-ai is never a dependency of the project itself)::

    .venv-interop/bin/python tests/interop/bot_server.py --port 0

Once listening it prints exactly one line ``BOT-SERVER-READY http://127.0.0.1:N`` to stdout.
``--port 0`` binds a free port; the line tells which one.

Routes:

* ``POST /start`` -> ``{"wsUrl", "sessionId", "token"}``; the JSON body (may be ``{}``) is kept as
  the session's options. ``?delay=S`` waits S seconds before answering.
* ``POST /unauthorized`` -> 401 ``{"detail": "unauthorized"}``.
* ``POST /broken`` -> 500 with an HTML body.
* ``WS /ws/{sid}``: the pipeline over FastAPIWebsocketTransport + ProtobufFrameSerializer. An
  unknown sid is accepted with default options.
* ``POST /api/start`` -> ``{"sessionId"}`` (options stored as for ``/start``).
* ``POST|PATCH /api/sessions/{sid}/api/offer`` and ``POST|PATCH /api/offer``: SmallWebRTC
  offer/answer and ICE trickle; each new peer connection runs the same pipeline.

Session options (all optional): ``never_ready`` (bool), ``ready_delay`` (seconds),
``end_silence_secs`` (int, default 2 as in Pipecat: silence the output sends at an end). Over
WebSocket the silence goes out at once (64,000 bytes at 16 kHz) before the close; over WebRTC it
plays in real time, so peerLeft comes 2 s after the end request. With ``end_silence_secs: 0`` a
graceful WebRTC end sends peerLeft but Pipecat leaves its peer connection open (seen with 1.14).

SIGTERM: uvicorn closes open WebSockets with 1012 and SmallWebRTC peers get peerLeft, then the
process re-raises SIGTERM (exit status -15). ``kill -USR1 <pid>`` dumps asyncio task stacks.

Client messages (RTVI ``client-message``, by ``t``): echo, error, delay, push, end, fatal,
nonfatal, audio. See ``InteropProcessor``.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import struct
import uuid
from collections.abc import Mapping
from typing import Any

# bot_serving first: it makes ICE loopback-only before anything else touches aiortc.
import bot_serving
from bot_serving import HOST, app_with_webrtc, offer_request, patch_request, run_worker
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from loguru import logger
from pipecat.frames.frames import (
    EndWorkerFrame,
    ErrorFrame,
    Frame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.processors.frameworks.rtvi.frames import (
    RTVIClientMessageFrame,
    RTVIServerMessageFrame,
    RTVIServerResponseFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

AUDIO_SAMPLE_RATE = 16000
SINE_HZ = 440.0
# Pipecat's output transport sends audio in chunks of audio_out_10ms_chunks (default 4) x 10 ms.
CHUNK_MS = 40

SESSIONS: dict[str, dict[str, Any]] = {}
_BOT_TASKS: set[asyncio.Task[None]] = set()


def sine_pcm(ms: int, sample_rate: int = AUDIO_SAMPLE_RATE, hz: float = SINE_HZ) -> bytes:
    """Mono s16le PCM of a sine wave, ``ms`` milliseconds long."""
    n = sample_rate * ms // 1000
    amp = 0.3 * 32767
    return b"".join(
        struct.pack("<h", int(amp * math.sin(2 * math.pi * hz * i / sample_rate))) for i in range(n)
    )


class InteropRTVIProcessor(RTVIProcessor):
    """RTVIProcessor whose bot-ready can be held back or delayed (session options).

    The worker calls ``set_bot_ready`` from its ``on_client_ready`` handler, which runs in its
    own task, so sleeping here does not block the pipeline.
    """

    def __init__(self, options: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._never_ready = bool(options.get("never_ready", False))
        self._ready_delay = float(options.get("ready_delay", 0) or 0)

    async def set_bot_ready(self, about: Mapping[str, Any] | None = None) -> None:
        if self._never_ready:
            logger.info("never_ready: not sending bot-ready")
            return
        if self._ready_delay > 0:
            await asyncio.sleep(self._ready_delay)
        await super().set_bot_ready(about)


class InteropProcessor(FrameProcessor):
    """Answers RTVI client messages by their type ``t``.

    * ``echo``: server-response, ``d`` as sent.
    * ``error``: error-response ``d.get("message", "requested error")``.
    * ``delay``: waits ``d["seconds"]``, then echoes.
    * ``push``: server-message with data ``d``, then server-response ``{"pushed": true}``.
    * ``end``: the bot ends the session (EndWorkerFrame), no response.
    * ``fatal``: RTVI ``error`` ``{"error": "requested fatal", "fatal": true}``; Pipecat then
      cancels the pipeline (a fatal ErrorFrame cancels the worker). No response.
    * ``nonfatal``: RTVI ``error`` with ``fatal: false``, then echoes.
    * ``audio``: ``d.get("ms", 200)`` ms of a 440 Hz sine (16 kHz mono s16le) as output audio,
      padded with silence to a multiple of 40 ms (Pipecat sends 40 ms chunks of 1280 bytes and
      holds a partial chunk back), then server-response ``{"sent": true}`` queued after it.
    * anything else: error-response ``unknown message type <t>``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, RTVIClientMessageFrame):
            # Our own task: a slow request (delay, audio) must not hold the pipeline.
            self.create_task(self._handle(frame), f"client-message-{frame.msg_id}")

    async def _respond(self, msg: RTVIClientMessageFrame, data: Any) -> None:
        await self.push_frame(RTVIServerResponseFrame(client_msg=msg, data=data))

    async def _handle(self, msg: RTVIClientMessageFrame) -> None:
        t = msg.type
        d: Any = msg.data
        dd: dict[str, Any] = d if isinstance(d, dict) else {}
        try:
            if t == "echo":
                await self._respond(msg, d)
            elif t == "error":
                err = str(dd.get("message", "requested error"))
                await self.push_frame(RTVIServerResponseFrame(client_msg=msg, error=err))
            elif t == "delay":
                await asyncio.sleep(float(dd.get("seconds", 0)))
                await self._respond(msg, d)
            elif t == "push":
                await self.push_frame(RTVIServerMessageFrame(data=d))
                await self._respond(msg, {"pushed": True})
            elif t == "end":
                await self.push_frame(EndWorkerFrame(reason="client requested end"))
            elif t == "fatal":
                # ErrorFrame.fatal is deprecated since 1.8 (one DeprecationWarning in the log)
                # but is still what puts "fatal": true on the wire; it cancels the pipeline.
                await self.push_error_frame(ErrorFrame(error="requested fatal", fatal=True))
            elif t == "nonfatal":
                await self.push_error_frame(ErrorFrame(error="requested nonfatal", fatal=False))
                await self._respond(msg, d)
            elif t == "audio":
                ms = int(dd.get("ms", 200))
                # The output transport cuts audio into 40 ms chunks and holds back a partial
                # one until more audio comes: pad with silence to a whole chunk.
                padded_ms = -(-ms // CHUNK_MS) * CHUNK_MS
                pcm = sine_pcm(ms) + b"\x00" * ((padded_ms - ms) * AUDIO_SAMPLE_RATE // 1000 * 2)
                await self.push_frame(
                    OutputAudioRawFrame(audio=pcm, sample_rate=AUDIO_SAMPLE_RATE, num_channels=1)
                )
                # A non-urgent transport message is queued behind the audio in the output
                # transport, so the response leaves after the audio.
                response = {
                    "label": "rtvi-ai",
                    "type": "server-response",
                    "id": msg.msg_id,
                    "data": {"t": t, "d": {"sent": True}},
                }
                await self.push_frame(OutputTransportMessageFrame(message=response))
            else:
                await self.push_frame(
                    RTVIServerResponseFrame(client_msg=msg, error=f"unknown message type {t}")
                )
        except Exception as e:  # report anything back to the client
            logger.exception(f"client-message {t} failed")
            await self.push_frame(RTVIServerResponseFrame(client_msg=msg, error=str(e)))


async def run_bot(transport: BaseTransport, options: Mapping[str, Any], label: str) -> None:
    """Run one session's pipeline until it ends."""
    rtvi = InteropRTVIProcessor(options)
    pipeline = Pipeline([transport.input(), InteropProcessor(), transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_SAMPLE_RATE, audio_out_sample_rate=AUDIO_SAMPLE_RATE
        ),
        rtvi_processor=rtvi,
        idle_timeout_secs=None,
    )
    logger.info(f"{label}: pipeline starting with options {dict(options)}")
    await run_worker(transport, worker, label)


def _transport_params(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "audio_in_enabled": True,
        "audio_in_sample_rate": AUDIO_SAMPLE_RATE,
        "audio_out_enabled": True,
        "audio_out_sample_rate": AUDIO_SAMPLE_RATE,
        "audio_out_end_silence_secs": int(options.get("end_silence_secs", 2)),
    }


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _new_session(options: dict[str, Any]) -> str:
    sid = uuid.uuid4().hex
    SESSIONS[sid] = options
    return sid


def create_app(port_ref: list[int]) -> FastAPI:
    """Build the FastAPI app. ``port_ref[0]`` is the listening port (known after bind)."""
    app, webrtc = app_with_webrtc()

    @app.post("/start")
    async def start(request: Request, delay: float = 0.0) -> dict[str, str]:
        options = await _body(request)
        if delay > 0:
            await asyncio.sleep(delay)
        sid = _new_session(options)
        return {
            "wsUrl": f"ws://{HOST}:{port_ref[0]}/ws/{sid}",
            "sessionId": sid,
            "token": secrets.token_urlsafe(16),
        }

    @app.post("/unauthorized")
    async def unauthorized() -> JSONResponse:
        return JSONResponse({"detail": "unauthorized"}, status_code=401)

    @app.post("/broken")
    async def broken() -> HTMLResponse:
        return HTMLResponse("<html><body>Internal Server Error</body></html>", status_code=500)

    @app.websocket("/ws/{sid}")
    async def ws_endpoint(websocket: WebSocket, sid: str) -> None:
        await websocket.accept()
        options = SESSIONS.get(sid, {})
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                serializer=ProtobufFrameSerializer(), **_transport_params(options)
            ),
        )
        await run_bot(transport, options, f"ws:{sid}")

    # --- SmallWebRTC -------------------------------------------------------------------------

    @app.post("/api/start")
    async def api_start(request: Request, delay: float = 0.0) -> dict[str, str]:
        options = await _body(request)
        if delay > 0:
            await asyncio.sleep(delay)
        return {"sessionId": _new_session(options)}

    async def offer(data: dict[str, Any], options: Mapping[str, Any], label: str) -> Any:
        req = offer_request(data)

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(
                connection, TransportParams(**_transport_params(options))
            )
            task = asyncio.create_task(run_bot(transport, options, f"webrtc:{label}"))
            _BOT_TASKS.add(task)
            task.add_done_callback(_BOT_TASKS.discard)

        return await webrtc.handle_web_request(req, on_connection)

    async def patch(data: dict[str, Any]) -> dict[str, str]:
        await webrtc.handle_patch_request(patch_request(data))
        return {"status": "success"}

    @app.post("/api/offer")
    async def direct_offer(request: Request) -> Any:
        data = await request.json()
        return await offer(data, data.get("requestData") or {}, "direct")

    @app.patch("/api/offer")
    async def direct_patch(request: Request) -> dict[str, str]:
        return await patch(await request.json())

    @app.api_route("/api/sessions/{sid}/api/offer", methods=["POST", "PATCH"])
    async def session_offer(sid: str, request: Request) -> Any:
        options = SESSIONS.get(sid)
        if options is None:
            return Response("Invalid or not-yet-ready session_id", status_code=404)
        data = await request.json()
        if request.method == "PATCH":
            return await patch(data)
        return await offer(data, options, sid)

    return app


if __name__ == "__main__":
    bot_serving.main(create_app, __doc__.splitlines()[0], llm_url=False)
