"""An in-process bot and transport: whole sessions with no network.

Like ``httpx.MockTransport`` for HTTP code, :class:`LoopbackTransport` with a
:class:`LoopbackBot` lets applications test their Pipecat client code: the bot answers
``client-ready`` with ``bot-ready``, answers client messages with the given handlers,
and can push messages, errors, audio, or leave, whenever the test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from lifecycle import rtvi
from lifecycle.errors import TransportError
from lifecycle.media import AudioFrame
from lifecycle.transport import ConnectRequest, Transport, TransportEvents
from transports._tasks import TaskSet

__all__ = ["Handler", "LoopbackBot", "LoopbackTransport"]

Handler = Callable[[Any], Any]
"""``handler(data) -> response data``, sync or async; raising makes an ``error-response``."""

BOT_LIBRARY = "pipecat-lifecycle-loopback"


class _Link:
    """One live connection between the transport and the bot."""

    def __init__(self, events: TransportEvents) -> None:
        self.events = events
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tasks = TaskSet()
        self.open = True

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.spawn(coro)

    async def close(self) -> None:
        self.open = False
        await self.tasks.cancel_all()


class LoopbackBot:
    """A scriptable in-process RTVI bot.

    ``ready_delay``: seconds between client-ready and bot-ready. ``send_bot_ready``: False
    makes a bot that never becomes ready. ``handlers``: client-message type -> handler; an
    unknown type or a raising handler gets an ``error-response``. ``fail_connect``: an
    exception the transport's connect raises (the client surfaces it as TransportError).
    ``connect_delay``: seconds the transport's connect takes.
    """

    def __init__(
        self,
        *,
        ready_delay: float = 0.0,
        send_bot_ready: bool = True,
        handlers: Mapping[str, Handler] | None = None,
        fail_connect: BaseException | None = None,
        connect_delay: float = 0.0,
    ) -> None:
        self.ready_delay = ready_delay
        self.send_bot_ready = send_bot_ready
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.fail_connect = fail_connect
        self.connect_delay = connect_delay
        self.received: list[dict[str, Any]] = []
        """Every RTVI message the bot got, in order, across sessions."""
        self.received_audio: list[AudioFrame] = []
        """Every audio frame the client sent."""
        self.connections = 0
        """How many times a transport connected to this bot."""
        self._link: _Link | None = None
        self._changed = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether a client is connected now."""
        return self._link is not None and self._link.open

    # -- driving the session from a test

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send any raw RTVI message to the client (serialized as JSON, like a real wire)."""
        self._deliver(rtvi.encode(message))

    async def send_raw(self, payload: str | bytes) -> None:
        """Send raw text/bytes as if they came off the wire (for bad-input tests)."""
        self._deliver(payload)

    async def send_server_message(self, data: Any) -> None:
        """Send an RTVI ``server-message``."""
        await self.send(rtvi.make_message("server-message", data))

    async def send_error(self, message: str, fatal: bool = False) -> None:
        """Send an RTVI ``error``."""
        await self.send(rtvi.make_message("error", {"error": message, "fatal": fatal}))

    async def send_audio(self, frame: AudioFrame) -> None:
        """Send audio to the client."""
        link = self._require_link()
        link.events.audio_received(frame)

    async def leave(self) -> None:
        """End the session from the bot side, cleanly (like WS close 1000 / peerLeft)."""
        await self._hang_up(clean=True, reason="bot left")

    async def crash(self) -> None:
        """Drop the connection abruptly (like WS 1006 or a killed bot)."""
        await self._hang_up(clean=False, reason="connection lost")

    async def wait_for_message(self, msg_type: str, count: int = 1) -> dict[str, Any]:
        """Wait until the bot received ``count`` messages of ``msg_type``; return the last.

        Bound it with ``asyncio.wait_for`` in tests.
        """
        while True:
            matches = [m for m in self.received if m.get("type") == msg_type]
            if len(matches) >= count:
                return matches[count - 1]
            self._changed.clear()
            await self._changed.wait()

    # -- internals used by LoopbackTransport

    def _require_link(self) -> _Link:
        link = self._link
        if link is None or not link.open:
            raise RuntimeError("no client is connected to the loopback bot")
        return link

    def _deliver(self, payload: str | bytes) -> None:
        link = self._require_link()
        # Deliver on the next loop turn, in order, like bytes arriving from a socket.
        asyncio.get_running_loop().call_soon(self._deliver_now, link, payload)

    @staticmethod
    def _deliver_now(link: _Link, payload: str | bytes) -> None:
        if link.open:
            link.events.message_received(payload)

    async def _hang_up(self, *, clean: bool, reason: str) -> None:
        link = self._require_link()
        self._link = None
        await link.close()
        link.events.transport_closed(clean=clean, reason=reason)

    async def _attach(self, events: TransportEvents) -> _Link:
        if self.connect_delay:
            await asyncio.sleep(self.connect_delay)
        if self.fail_connect is not None:
            raise self.fail_connect
        if self._link is not None:
            await self._link.close()
        link = _Link(events)
        self._link = link
        self.connections += 1
        link.spawn(self._serve(link))
        return link

    async def _detach(self, link: _Link) -> None:
        if self._link is link:
            self._link = None
        await link.close()

    def _receive(self, link: _Link, message: Mapping[str, Any]) -> None:
        if link.open:
            link.inbox.put_nowait(dict(message))

    async def _serve(self, link: _Link) -> None:
        while True:
            message = await link.inbox.get()
            self.received.append(message)
            self._changed.set()
            msg_type = message.get("type")
            if msg_type == "client-ready":
                if self.send_bot_ready:
                    link.spawn(self._ready(message))
            elif msg_type == "client-message":
                link.spawn(self._answer(message))
            elif msg_type == "disconnect-bot":
                link.spawn(self.leave())

    async def _ready(self, client_ready: Mapping[str, Any]) -> None:
        if self.ready_delay:
            await asyncio.sleep(self.ready_delay)
        data = {
            "version": rtvi.PROTOCOL_VERSION,
            "about": {"library": BOT_LIBRARY, "library_version": "0.1.0"},
            "capabilities": {"audio_in": True, "audio_out": True},
        }
        await self.send(rtvi.make_message("bot-ready", data, client_ready.get("id")))

    async def _answer(self, message: Mapping[str, Any]) -> None:
        payload = message.get("data")
        payload = payload if isinstance(payload, Mapping) else {}
        msg_type = payload.get("t")
        handler = self.handlers.get(msg_type) if isinstance(msg_type, str) else None
        msg_id = message.get("id")
        if handler is None:
            reply = rtvi.make_message(
                "error-response", {"error": f"no handler for {msg_type!r}"}, msg_id
            )
        else:
            try:
                result = handler(payload.get("d"))
                if inspect.isawaitable(result):
                    result = await result
                reply = rtvi.make_message("server-response", {"t": msg_type, "d": result}, msg_id)
            except Exception as exc:
                reply = rtvi.make_message("error-response", {"error": str(exc)}, msg_id)
        with contextlib.suppress(RuntimeError):
            await self.send(reply)


class LoopbackTransport(Transport):
    """A transport to an in-process :class:`LoopbackBot`; needs no connect params."""

    carries_audio = True

    def __init__(self, bot: LoopbackBot) -> None:
        self.bot = bot
        self._link: _Link | None = None

    async def connect(self, request: ConnectRequest, events: TransportEvents) -> None:
        """Attach to the bot (raising its ``fail_connect``), then report connected."""
        self._link = await self.bot._attach(events)
        events.transport_connected()

    def send_message(self, message: Mapping[str, Any]) -> None:
        """Hand a message to the bot."""
        self.bot._receive(self._require_link(), message)

    def send_audio(self, frame: AudioFrame) -> None:
        """Hand audio to the bot (recorded in ``bot.received_audio``)."""
        self._require_link()
        self.bot.received_audio.append(frame)

    async def disconnect(self) -> None:
        """Detach from the bot; idempotent."""
        link, self._link = self._link, None
        if link is not None:
            await self.bot._detach(link)

    def _require_link(self) -> _Link:
        link = self._link
        if link is None or not link.open:
            raise TransportError("the loopback transport is not connected")
        return link
