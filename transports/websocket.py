"""WebSocket transport: RTVI over Pipecat's protobuf frames (``websockets`` asyncio client).

Wire format (the same as Pipecat's ``ProtobufFrameSerializer`` and the JS client's
``WebSocketTransport``): every WebSocket message is a *binary* frame holding one protobuf
``pipecat.Frame`` (see ``transports/_pb/frames.proto``). Text WebSocket frames are never sent.

Outbound:

* an RTVI message -> ``Frame.message`` (``MessageFrame{data: <the RTVI JSON text>}``);
* :meth:`WebSocketTransport.send_audio` -> ``Frame.audio`` (``AudioRawFrame{audio,
  sample_rate, num_channels}``, s16le PCM).

Inbound:

* ``Frame.message`` -> ``events.message_received(<its JSON text>)`` (the client validates it);
* ``Frame.audio`` -> ``events.audio_received(AudioFrame(...))``;
* ``Frame.transcription``, ``Frame.text`` and ``Frame.interruption`` have no RTVI form, so
  they become synthetic RTVI-shaped messages that reach ``on_unhandled_message``::

      {"label": "rtvi-ai", "type": "transport-transcription",
       "data": {"text": ..., "user_id": ..., "timestamp": ...}}
      {"label": "rtvi-ai", "type": "transport-text", "data": {"text": ...}}
      {"label": "rtvi-ai", "type": "transport-interruption", "data": {}}

* a text WebSocket frame, an undecodable or empty protobuf frame, malformed audio, or a frame
  over ``max_message_size`` bytes -> ``events.message_dropped(reason)``; the session goes on.
  Frames over 16 x ``max_message_size`` (the ``websockets`` ``max_size``) close the connection
  (code 1009), which is reported like any lost connection.

Connect parameters: ``wsUrl`` or ``ws_url`` in ``ConnectRequest.params`` (a ``/start``
response works as is), else the constructor's ``ws_url``. The handshake carries the
constructor's ``headers`` (e.g. ``Authorization``), plus a start response's ``headers`` object
and its ``token`` as ``Authorization: Bearer <token>`` where the constructor set none; none of
them is ever logged. ``wss://`` verifies certificates with the default context unless
``ssl`` gives an :class:`ssl.SSLContext`; verification is never turned off implicitly.

Ends: the bot closing with 1000 -> ``transport_closed(clean=True, reason="close 1000")``; any
other close code, or a connection lost without a close frame -> ``clean=False`` (``reason``
e.g. ``"close 1011"`` or ``"close 1006"``). :meth:`WebSocketTransport.disconnect` closes with
1000, waits (bounded) for the close handshake, and reports nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from lifecycle.errors import TransportError
from lifecycle.logs import RedactingStdlibLogger, describe_exception, get_logger
from lifecycle.media import AudioFrame
from lifecycle.redact import redact_url
from lifecycle.rtvi import DEFAULT_MAX_MESSAGE_SIZE, LABEL, encode
from lifecycle.transport import ConnectRequest, Transport, TransportEvents, first_param
from transports._pb import frames_pb2 as pb

__all__ = [
    "HARD_CAP_FACTOR",
    "WebSocketTransport",
    "decode_frame",
    "encode_audio",
    "encode_message",
]

# websockets' own debug lines dump the handshake (Authorization, ?token=...): redact them.
_WS_LOGGER: Final = RedactingStdlibLogger(logging.getLogger("websockets.client"), {})

HARD_CAP_FACTOR: Final = 16
"""Frames larger than this many times ``max_message_size`` close the connection."""
# A live Pipecat bot answers a close in ~2 ms; a frozen one must not delay the session end
# past the caller's timeout + 1 s.
_CLOSE_TIMEOUT: Final = 0.5
_FLUSH_TIMEOUT: Final = 0.25


def encode_message(message: Mapping[str, Any]) -> bytes:
    """One RTVI message as a serialized protobuf ``Frame`` (the ``message`` oneof)."""
    return pb.Frame(message=pb.MessageFrame(data=encode(message))).SerializeToString()


def encode_audio(frame: AudioFrame) -> bytes:
    """One audio frame as a serialized protobuf ``Frame`` (the ``audio`` oneof)."""
    audio = pb.AudioRawFrame(
        audio=frame.pcm, sample_rate=frame.sample_rate, num_channels=frame.num_channels
    )
    return pb.Frame(audio=audio).SerializeToString()


def decode_frame(data: bytes) -> str | dict[str, Any] | AudioFrame:
    """Decode one inbound protobuf ``Frame``.

    Returns the RTVI JSON text of a message frame, a synthetic RTVI dict for transcription,
    text and interruption frames, or an :class:`AudioFrame`. Raises :class:`ValueError`
    (with a short reason) for anything unusable.
    """
    try:
        frame = pb.Frame.FromString(data)
    except (DecodeError, RecursionError) as exc:
        raise ValueError(f"undecodable protobuf frame ({type(exc).__name__})") from None
    kind = frame.WhichOneof("frame")
    if kind == "message":
        return frame.message.data
    if kind == "audio":
        audio = frame.audio
        pcm = bytes(audio.audio)
        if audio.sample_rate <= 0 or audio.num_channels <= 0:
            raise ValueError("audio frame without sample_rate or num_channels")
        if len(pcm) % (2 * audio.num_channels):
            raise ValueError("audio frame is not whole s16le samples")
        return AudioFrame(pcm=pcm, sample_rate=audio.sample_rate, num_channels=audio.num_channels)
    if kind == "transcription":
        t = frame.transcription
        data_: dict[str, Any] = {"text": t.text, "user_id": t.user_id, "timestamp": t.timestamp}
        return {"label": LABEL, "type": "transport-transcription", "data": data_}
    if kind == "text":
        return {"label": LABEL, "type": "transport-text", "data": {"text": frame.text.text}}
    if kind == "interruption":
        return {"label": LABEL, "type": "transport-interruption", "data": {}}
    raise ValueError("protobuf frame with no known content")


class WebSocketTransport(Transport):
    """A transport to a Pipecat bot over a WebSocket with protobuf frames.

    One instance serves one client session after session: after :meth:`disconnect` (or after
    the bot closed the connection) :meth:`connect` may be called again.
    """

    carries_audio = True

    def __init__(
        self,
        ws_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        open_timeout: float = 10.0,
        logger: Any = None,
    ) -> None:
        """Configure the transport; nothing connects until :meth:`connect`.

        ``ws_url`` is used when the connect params carry no ``wsUrl``/``ws_url``. ``headers``
        are sent on the opening handshake. ``ssl`` is the context for ``wss://`` (default:
        verify certificates). ``open_timeout`` bounds the opening handshake in seconds.
        """
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        self._ws_url = ws_url
        self._headers: dict[str, str] = dict(headers or {})
        self._ssl = ssl
        self.max_message_size = max_message_size
        self._open_timeout = open_timeout
        self._base_log = get_logger(logger).bind(transport="websocket")
        self._log = self._base_log
        self._ws: ClientConnection | None = None
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether a connection is up and accepting messages."""
        return (
            self._ws is not None
            and not self._closing
            and self._reader is not None
            and (not self._reader.done())
        )

    def _url(self, params: Mapping[str, Any] | None) -> str:
        url = first_param(params, "wsUrl", "ws_url") or self._ws_url
        if not url:
            raise TransportError("no WebSocket URL: pass wsUrl/ws_url params or ws_url=")
        if not isinstance(url, str):
            raise TransportError("the WebSocket URL is not a string")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme not in ("ws", "wss"):
            raise TransportError(f"not a ws:// or wss:// URL: {redact_url(url)}")
        return url

    def _handshake_headers(self, params: Mapping[str, Any] | None) -> dict[str, str]:
        """The constructor's headers, plus what a start response brings for this session.

        A response's ``headers`` object is added, and its ``token`` becomes
        ``Authorization: Bearer <token>``; the constructor's own headers always win.
        """
        headers: dict[str, str] = {}
        extra = first_param(params, "headers")
        if isinstance(extra, Mapping):
            headers.update({str(k): str(v) for k, v in extra.items()})
        token = first_param(params, "token")
        if isinstance(token, str) and token:
            headers.setdefault("Authorization", f"Bearer {token}")
        present = {name.lower() for name in self._headers}
        headers = {k: v for k, v in headers.items() if k.lower() not in present}
        headers.update(self._headers)
        return headers

    async def connect(self, request: ConnectRequest, events: TransportEvents) -> None:
        """Open the WebSocket, start the reader and writer, then report ``transport_connected``.

        Raises on any handshake failure (refused, HTTP error, bad URL, timeout).
        """
        async with self._lock:
            if self._ws is not None:
                if self.connected:
                    raise TransportError("the WebSocket transport is already connected")
                await self._teardown()  # the last session ended by the bot's side
            self._log = self._base_log.bind(session_id=request.session_id)
            url = self._url(request.params)
            kwargs: dict[str, Any] = {}
            if urlsplit(url).scheme.lower() == "wss" and self._ssl is not None:
                kwargs["ssl"] = self._ssl
            safe_url = redact_url(url)
            self._log.debug("websocket connecting", url=safe_url)
            # The hard cap: larger frames close the connection (1009) instead of being read.
            ws = await ws_connect(
                url,
                logger=_WS_LOGGER,
                additional_headers=self._handshake_headers(request.params) or None,
                open_timeout=self._open_timeout,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=HARD_CAP_FACTOR * self.max_message_size,
                **kwargs,
            )
            self._ws = ws
            self._closing = False
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write(ws, self._queue), name="ws-writer")
            self._reader = asyncio.create_task(self._read(ws, events), name="ws-reader")
            self._log.debug("websocket connected", url=safe_url)
            # Before the reader task first runs, so no message can precede this.
            events.transport_connected()

    def send_message(self, message: Mapping[str, Any]) -> None:
        """Queue one RTVI message as a binary protobuf frame; order is preserved."""
        self._enqueue(encode_message(message))

    def send_audio(self, frame: AudioFrame) -> None:
        """Queue PCM audio (s16le) as a protobuf audio frame."""
        self._enqueue(encode_audio(frame))

    def _enqueue(self, data: bytes) -> None:
        if self._queue is None or not self.connected:
            raise TransportError("the WebSocket transport is not connected")
        self._queue.put_nowait(data)

    async def disconnect(self) -> None:
        """Close with 1000 (bounded wait for the close handshake), stop every task; idempotent."""
        async with self._lock:
            await self._teardown()

    async def _teardown(self) -> None:
        ws, reader, writer, queue = self._ws, self._reader, self._writer, self._queue
        if ws is None:
            return
        self._closing = True
        try:
            # Let what was already queued (e.g. a last message) leave first, briefly.
            if writer is not None and queue is not None and not writer.done():
                queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), _FLUSH_TIMEOUT)
            try:
                await asyncio.wait_for(ws.close(1000), _CLOSE_TIMEOUT + 0.5)
            except Exception as exc:
                self._log.debug("websocket close failed; aborting", error=describe_exception(exc))
                ws.transport.abort()
        finally:
            for task in (writer, reader):
                if task is not None and not task.done():
                    task.cancel()
            tasks = [t for t in (writer, reader) if t is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._ws = self._reader = self._writer = self._queue = None
            self._log.debug("websocket disconnected")

    async def _write(self, ws: ClientConnection, queue: asyncio.Queue[bytes | None]) -> None:
        while True:
            data = await queue.get()
            if data is None:
                return
            try:
                await ws.send(data)
            except ConnectionClosed:
                return  # the reader reports the close

    async def _read(self, ws: ClientConnection, events: TransportEvents) -> None:
        error: BaseException | None = None
        try:
            while True:
                data = await ws.recv()
                self._dispatch(data, events)
        except ConnectionClosed as exc:
            error = exc
        except Exception as exc:  # never let the reader die silently
            error = exc
            self._log.warning("websocket reader failed", error=describe_exception(exc))
        finally:
            writer = self._writer
            if writer is not None and not writer.done() and self._ws is ws and not self._closing:
                writer.cancel()
        if self._closing or self._ws is not ws:
            return  # our own disconnect: nothing to report
        rcvd = ws.protocol.close_rcvd
        code = rcvd.code if rcvd is not None else 1006
        clean = code == 1000
        reason = f"close {code}"
        self._log.info("websocket closed by the remote side", code=code, clean=clean)
        with contextlib.suppress(Exception):
            events.transport_closed(clean=clean, error=None if clean else error, reason=reason)

    def _dispatch(self, data: str | bytes, events: TransportEvents) -> None:
        try:
            if isinstance(data, str):
                events.message_dropped("text WebSocket frame where a binary protobuf frame belongs")
                return
            if len(data) > self.max_message_size:
                events.message_dropped(
                    f"frame of {len(data)} bytes is over the {self.max_message_size} byte limit"
                )
                return
            try:
                item = decode_frame(data)
            except ValueError as exc:
                events.message_dropped(str(exc))
                return
            if isinstance(item, AudioFrame):
                events.audio_received(item)
            else:
                events.message_received(item)
        except Exception as exc:  # a failing sink must not end the session
            self._log.warning("websocket event sink failed", error=describe_exception(exc))
