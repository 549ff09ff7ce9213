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

Ends (the close codes, decided in issue 12.5): the bot closing with **1000** (normal closure,
what Pipecat sends when the bot ends the session) or **1005** (a close frame without a code: a
deliberate close by a peer that names no reason, e.g. Node's ``ws.close()``) is a clean
bot-side end -> ``transport_closed(clean=True)``. Every other code is a lost link ->
``clean=False``: **1001** "going away" too, because from a server it means the server is
shutting down or restarting, not that the bot finished the conversation (Pipecat bots end with
1000; a websockets server shutting down sends 1001, uvicorn sends **1012**), so the user must
hear about it (``on_error``) and may reconnect; likewise **1006** (no close frame: crash,
abort, network), **1011** (server error), **1012** (service restart), **1013** (try again
later), 1002/1003/1007/1008/1009 (protocol and policy errors), 3000-4999 (registered and
application codes, e.g. Pipecat's runner rejects a bad token with 4003). ``reason`` says who
closed, the code and the peer's reason, e.g. ``"server closed the connection: code 1011
(internal error), reason 'boom'"`` or ``"connection lost without a close frame (code 1006)"``.
:data:`CLEAN_CLOSE_CODES` holds the clean ones. :meth:`WebSocketTransport.disconnect` closes
with 1000, waits (bounded) for the close handshake, and reports nothing.

Dead peers: a ping goes out every ``dead_peer_timeout / 4`` seconds, and every frame read
from the peer counts as a sign of life, as does a pong (:class:`~transports._liveness.
PeerLiveness`). A peer that stops sending anything (frozen, or its host gone without a FIN)
is reported lost within ``dead_peer_timeout`` (default 5 s; ``reason`` "peer silent: ...")
once it has sent its first frame: before that (a bot still starting its pipeline, which on a
busy machine may answer no ping for seconds) the client's ``connect_timeout`` bounds the
wait.
A bot that talks a lot is never called dead: its pong may sit behind thousands of unread
frames, but those frames are its signs of life. ``dead_peer_timeout=None`` turns it off.

Failures to connect raise :class:`~lifecycle.errors.TransportError` naming the URL dialled
(query values and passwords redacted) and what went wrong, with a hint where one is known
(``wss://`` to a plain-HTTP server, an HTTP status to the handshake, a start response without
``wsUrl``). Secrets never reach a message or a chained cause: header values are checked here
(CR/LF) and never quoted, and an exception whose text shows a secret is replaced by a redacted
stand-in as ``__cause__``. websockets' own DEBUG lines go through a redacting adapter that
also drops the payload of data frames (a client message may hold a password).

Event loops: one instance may serve sessions on successive event loops (``asyncio.run()``
twice): a connection left open by a loop that ended is dropped at the next :meth:`connect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from lifecycle.errors import TransportError
from lifecycle.logs import RedactingStdlibLogger, describe_exception, get_logger
from lifecycle.media import AudioFrame
from lifecycle.redact import redact_url
from lifecycle.rtvi import DEFAULT_MAX_MESSAGE_SIZE
from lifecycle.timeouts import check_seconds
from lifecycle.transport import ConnectRequest, Transport, TransportSink, first_param
from transports._errors import transport_error
from transports._liveness import PeerLiveness
from transports._ws_diagnosis import (
    CLEAN_CLOSE_CODES,
    check_headers,
    connect_hint,
    describe_close,
    describe_keys,
    route_hint,
)
from transports._ws_wire import decode_frame, encode_audio, encode_message

__all__ = [
    "CLEAN_CLOSE_CODES",
    "DEFAULT_DEAD_PEER_TIMEOUT",
    "HARD_CAP_FACTOR",
    "WebSocketTransport",
    "decode_frame",
    "describe_close",
    "encode_audio",
    "encode_message",
]

DEFAULT_DEAD_PEER_TIMEOUT: Final = 5.0
"""Seconds within which a peer that stopped answering pings is reported lost."""
HARD_CAP_FACTOR: Final = 16
"""Frames larger than this many times ``max_message_size`` close the connection."""
# A live Pipecat bot answers a close in ~2 ms; a frozen one must not delay the session end
# past the caller's timeout + 1 s.
_CLOSE_TIMEOUT: Final = 0.5
_FLUSH_TIMEOUT: Final = 0.25
# Above this many bytes waiting in the socket's buffer a send goes through the writer task,
# which waits for the buffer to drain (websockets' own default high-water mark).
_DIRECT_WRITE_LIMIT: Final = 32 * 1024
_FRAMES_PER_YIELD: Final = 64  # inbound frames handled per event-loop turn under a flood
_DATA_OPCODES: Final = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


class _WebSocketsLogger(RedactingStdlibLogger):
    """websockets' logger: handshake lines redacted, data frames logged without their payload.

    websockets logs ``> BINARY 7b 22 ... [96 bytes]`` with the start and end of every frame,
    which shows the cleartext of small client messages (a ``password`` field). Only the
    opcode and the size are kept; control frames (ping, pong, close) are logged as they are.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Replace data frames by their summary, then redact and log as usual."""
        if not self.isEnabledFor(level):
            return
        args = tuple(_frame_summary(a) if isinstance(a, Frame) else a for a in args)
        super().log(level, msg, *args, **kwargs)


def _frame_summary(frame: Frame) -> object:
    if frame.opcode not in _DATA_OPCODES:
        return frame
    more = "" if frame.fin else ", continued"
    return f"{frame.opcode.name} [{len(frame.data)} bytes{more}, payload not logged]"


_WS_LOGGER: Final = _WebSocketsLogger(logging.getLogger("websockets.client"), {})


class WebSocketTransport(Transport):
    """A transport to a Pipecat bot over a WebSocket with protobuf frames.

    One instance serves one client session after session: after :meth:`disconnect` (or after
    the bot closed the connection) :meth:`connect` may be called again, on the same or on a new
    event loop.
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
        dead_peer_timeout: float | None = DEFAULT_DEAD_PEER_TIMEOUT,
        logger: Any = None,
    ) -> None:
        """Configure the transport; nothing connects until :meth:`connect`.

        ``ws_url`` is used when the connect params carry no ``wsUrl``/``ws_url``. ``headers``
        are sent on the opening handshake. ``ssl`` is the context for ``wss://`` (default:
        verify certificates). ``open_timeout`` bounds the opening handshake in seconds.
        ``dead_peer_timeout``: a peer from which nothing (no frame, no pong) arrives is
        reported lost within this many seconds (None: no keepalive pings).
        """
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        check_seconds(open_timeout, "open_timeout")
        if dead_peer_timeout is not None:
            check_seconds(dead_peer_timeout, "dead_peer_timeout")
        self._ws_url = ws_url
        self._headers: dict[str, str] = dict(headers or {})
        try:
            check_headers(self._headers)
        except TransportError as exc:
            raise ValueError(str(exc)) from None
        self._ssl = ssl
        self.max_message_size = max_message_size
        self._open_timeout = open_timeout
        self._dead_peer_timeout = dead_peer_timeout
        self._base_log = get_logger(logger).bind(transport="websocket")
        self._log = self._base_log
        self._ws: ClientConnection | None = None
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._writing = False  # the writer task is inside ws.send()
        self._watcher: asyncio.Task[None] | None = None
        self._liveness: PeerLiveness | None = None
        self._silence: float | None = None  # set when the watcher found the peer silent
        self._spoke = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
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
            if params:
                raise TransportError(
                    "no WebSocket URL: the connect params (a start response?) hold no "
                    f"wsUrl/ws_url, only the keys {describe_keys(params)}; a {{'sessionId'}} "
                    "alone is a WebRTC start answer. Pipecat's development runner picks its "
                    'transport from the start request body: send {"transport": "websocket"} '
                    "(command line: leave out --start-data, or use --transport webrtc; Python: "
                    "APIRequest(request_data=...))"
                )
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
        check_headers(headers)
        return headers

    def _bind_loop(self) -> None:
        """Forget a connection that belongs to an event loop that is not the running one.

        ``asyncio.run()`` may have ended while a session was up: that loop's tasks are gone
        and its sockets cannot be awaited any more, so the old state is dropped, not closed.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        ws = self._ws
        if ws is not None:
            self._log.debug("websocket of an ended event loop dropped")
            with contextlib.suppress(Exception):
                ws.transport.abort()
        self._ws = self._reader = self._writer = self._watcher = self._queue = None
        self._closing = False
        self._loop = loop
        self._lock = asyncio.Lock()  # an asyncio.Lock belongs to the loop that first waits

    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        """Open the WebSocket, start the reader (and the liveness watch), then report
        ``transport_connected``.

        Raises :class:`TransportError` on any handshake failure (refused, HTTP error, TLS, bad
        URL or header, timeout), naming the URL (redacted) and the likely cause.
        """
        self._bind_loop()
        async with self._lock:
            if self._ws is not None:
                if self.connected:
                    raise TransportError("the WebSocket transport is already connected")
                await self._teardown()  # the last session ended by the bot's side
            self._log = self._base_log.bind(session_id=request.session_id)
            url = self._url(request.params)
            headers = self._handshake_headers(request.params)
            scheme = urlsplit(url).scheme.lower()
            kwargs: dict[str, Any] = {}
            if scheme == "wss" and self._ssl is not None:
                kwargs["ssl"] = self._ssl
            # websockets' keepalive waits for the pong alone, which a flooding bot's frames
            # delay: _watch_peer pings and counts every frame instead.
            kwargs["ping_interval"] = kwargs["ping_timeout"] = None
            safe_url = redact_url(url)
            self._log.debug("websocket connecting", url=safe_url)
            failure: TransportError | None = None
            try:
                # The hard cap: larger frames close the connection (1009) instead of being read.
                ws = await ws_connect(
                    url,
                    logger=_WS_LOGGER,
                    additional_headers=headers or None,
                    open_timeout=self._open_timeout,
                    close_timeout=_CLOSE_TIMEOUT,
                    max_size=HARD_CAP_FACTOR * self.max_message_size,
                    # Audio frames do not compress; deflate would cost CPU on every frame.
                    compression=None,
                    **kwargs,
                )
            except Exception as exc:
                failure = transport_error(
                    f"could not open the WebSocket: {describe_exception(exc)}"
                    f"{connect_hint(exc, scheme, url)}; URL dialled: {safe_url}",
                    exc,
                )
            if failure is not None:
                raise failure  # outside the except block: no raw __context__ either
            self._ws = ws
            self._closing = False
            self._silence = None
            self._spoke = False  # the silence clock starts at the peer's first frame
            # The writer task and its queue are made at the first send that must wait.
            self._queue = self._writer = None
            self._writing = False
            self._liveness = None
            if self._dead_peer_timeout is not None:
                self._liveness = PeerLiveness(self._dead_peer_timeout, time.monotonic())
                self._watcher = asyncio.create_task(
                    self._watch_peer(ws, self._liveness), name="ws-liveness"
                )
            self._reader = asyncio.create_task(
                self._read(ws, events, self._liveness, route_hint(url)), name="ws-reader"
            )
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
        queue, ws = self._queue, self._ws
        if ws is None or not self.connected:
            raise TransportError("the WebSocket transport is not connected")
        if (queue is None or (queue.empty() and not self._writing)) and _writes_now(ws):
            # Straight to the socket, as ws.send() would do: no hop through a writer task
            # (a speaking caller sends 50 frames a second). Under back-pressure, or while the
            # writer still holds earlier data, the queue keeps the order and waits to drain.
            ws.protocol.send_binary(data)
            ws.send_data()
            return
        if queue is None:
            queue = self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write(ws, queue), name="ws-writer")
        queue.put_nowait(data)

    async def disconnect(self) -> None:
        """Close with 1000 (bounded wait for the close handshake), stop every task; idempotent."""
        self._bind_loop()
        async with self._lock:
            await self._teardown()

    async def _teardown(self) -> None:
        ws, reader, writer, queue = self._ws, self._reader, self._writer, self._queue
        watcher = self._watcher
        if ws is None:
            return
        self._closing = True
        try:
            # Let what was already queued (e.g. a last message) leave first, briefly.
            busy = queue is not None and (not queue.empty() or self._writing)
            if writer is not None and queue is not None and busy and not writer.done():
                queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), _FLUSH_TIMEOUT)
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT + 0.5):  # no task of its own
                    await ws.close(1000)
            except Exception as exc:
                self._log.debug("websocket close failed; aborting", error=describe_exception(exc))
                ws.transport.abort()
        finally:
            for task in (writer, reader, watcher):
                if task is not None and not task.done():
                    task.cancel()
            tasks = [t for t in (writer, reader, watcher) if t is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._ws = self._reader = self._writer = self._watcher = self._queue = None
            self._log.debug("websocket disconnected")

    async def _write(self, ws: ClientConnection, queue: asyncio.Queue[bytes | None]) -> None:
        while True:
            data = await queue.get()
            if data is None:
                return
            self._writing = True
            try:
                await ws.send(data)
            except ConnectionClosed:
                return  # the reader reports the close
            finally:
                self._writing = False

    async def _watch_peer(self, ws: ClientConnection, liveness: PeerLiveness) -> None:
        """Ping every ``dead_peer_timeout / 4``; abort once nothing was heard for too long."""
        ping_every = liveness.timeout / 4
        next_ping = time.monotonic() + ping_every  # the handshake just proved the peer alive
        pinging: asyncio.Task[None] | None = None
        try:
            while True:
                reader = self._reader
                if self._ws is not ws or reader is None or reader.done():
                    return  # the link ended otherwise: nothing left to watch
                now = time.monotonic()
                if now >= next_ping and (pinging is None or pinging.done()):
                    next_ping = now + ping_every
                    # Its own task: a peer that stopped reading must not block the watch.
                    pinging = asyncio.create_task(_ping(ws, liveness), name="ws-ping")
                if not self._spoke:
                    # A bot starting its pipeline (a busy machine: 4 s and more) may answer no
                    # ping before its first frame; the client's connect_timeout bounds that.
                    liveness.heard(now)
                silence = liveness.check(now)
                if silence is not None:
                    self._silence = silence
                    self._log.warning("websocket peer silent", seconds=round(silence, 1))
                    ws.transport.abort()  # the reader reports the lost link
                    return
                await asyncio.sleep(liveness.tick)
        finally:
            if pinging is not None and not pinging.done():
                pinging.cancel()

    async def _read(
        self,
        ws: ClientConnection,
        events: TransportSink,
        liveness: PeerLiveness | None,
        hint: str,
    ) -> None:
        """Read until the link ends; ``hint`` is added to its reason if no frame came."""
        error: BaseException | None = None
        frames = 0
        try:
            while True:
                # recv() returns without suspending while frames are buffered: yield now and
                # then, so a flooding bot cannot starve timers, pings and the callbacks.
                for _ in range(_FRAMES_PER_YIELD):
                    data = await ws.recv()
                    frames += 1
                    self._spoke = True
                    if liveness is not None:
                        liveness.heard(time.monotonic())  # any frame is a sign of life
                    self._dispatch(data, events)
                await asyncio.sleep(0)
        except ConnectionClosed as exc:
            error = exc
        except asyncio.CancelledError:
            if not self._closing:
                # Not our disconnect: the event loop is ending (asyncio.run() returns with the
                # session up). Close the socket while the loop still runs its callbacks.
                ws.transport.abort()
            raise
        except Exception as exc:  # never let the reader die silently
            error = exc
            self._log.warning("websocket reader failed", error=describe_exception(exc))
        finally:
            writer = self._writer
            if writer is not None and not writer.done() and self._ws is ws and not self._closing:
                writer.cancel()
        if self._closing or self._ws is not ws:
            return  # our own disconnect: nothing to report
        protocol = ws.protocol
        clean, reason = describe_close(
            protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent, ws.ping_timeout
        )
        if self._silence is not None:
            clean, error = False, None
            reason = f"peer silent: nothing heard for {self._silence:.1f} s (no frame, no pong)"
        if not frames and protocol.close_rcvd is None and self._silence is None:
            reason += hint  # the runner's telephony route drops an RTVI client: code 1006
        if protocol.close_rcvd is not None and protocol.close_rcvd_then_sent is not False:
            error = None  # the bot's own close frame: the reason says all there is
        self._log.info("websocket closed", clean=clean, reason=reason)
        with contextlib.suppress(Exception):
            events.transport_closed(clean=clean, error=None if clean else error, reason=reason)

    def _dispatch(self, data: str | bytes, events: TransportSink) -> None:
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


def _writes_now(ws: ClientConnection) -> bool:
    """Whether ``ws`` takes a frame without waiting: open, and the socket's buffer below
    :data:`_DIRECT_WRITE_LIMIT` (this transport never sends fragmented messages)."""
    return (
        ws.protocol.state is State.OPEN
        and not ws.transport.is_closing()
        and ws.transport.get_write_buffer_size() < _DIRECT_WRITE_LIMIT
    )


async def _ping(ws: ClientConnection, liveness: PeerLiveness) -> None:
    """Send one ping; its pong, whenever it comes, is a sign of life."""
    with contextlib.suppress(ConnectionClosed):
        pong = await ws.ping()
        await pong
        liveness.heard(time.monotonic())
