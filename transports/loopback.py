"""An in-process bot and transport: whole sessions with no network.

Like ``httpx.MockTransport`` for HTTP code, :class:`LoopbackTransport` with a
:class:`LoopbackBot` lets applications test their Pipecat client code: the bot answers
``client-ready`` with ``bot-ready``, answers client messages with the given handlers, talks
like a Pipecat voice bot on ``send-text`` and microphone audio (the testing servers' script,
:mod:`transports.testing.script`), and can push any event, make a function call, send
errors or audio, or leave, whenever the test says so.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

from lifecycle import rtvi
from lifecycle.errors import TransportError
from lifecycle.media import AudioFrame
from lifecycle.transport import ConnectRequest, Transport, TransportSink
from transports._tasks import TaskSet
from transports.testing import messages
from transports.testing.actions import Handler
from transports.testing.dialogue import DEFAULT_DIALOGUE, Dialogue
from transports.testing.script import BotScript
from transports.testing.script_runner import ScriptRunner

__all__ = ["Handler", "LoopbackBot", "LoopbackTransport"]

BOT_LIBRARY = "pipecat-lifecycle-loopback"


class _Link:
    """One live connection between the transport and the bot, with its script."""

    def __init__(self, bot: LoopbackBot, events: TransportSink) -> None:
        self.events = events
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tasks = TaskSet()
        self.open = True
        script = BotScript(library=BOT_LIBRARY, library_version="0.1.0")
        self.runner = ScriptRunner(script, _LoopbackWire(bot, self))

    async def close(self) -> None:
        self.open = False
        await self.runner.close()
        await self.tasks.cancel_all()


class _LoopbackWire:
    """The script's wire: in-process calls, delivered a loop turn later like socket bytes."""

    def __init__(self, bot: LoopbackBot, link: _Link) -> None:
        self._bot = bot
        self._link = link

    async def send(self, message: Mapping[str, Any]) -> None:
        self._bot._deliver_on(self._link, rtvi.encode(message))

    async def send_audio(self, frame: AudioFrame) -> None:
        if self._link.open:  # in order with the messages sent before it
            asyncio.get_running_loop().call_soon(self._play, frame)

    def _play(self, frame: AudioFrame) -> None:
        if self._link.open:
            self._link.events.audio_received(frame)

    async def interrupt(self) -> None:
        """Nothing to drop: audio reaches the client at once."""

    async def leave(self) -> None:
        if self._bot._link is self._link:
            await self._bot.leave()


class LoopbackBot:
    """A scriptable in-process RTVI bot.

    ``ready_delay``: seconds between client-ready and bot-ready. ``send_bot_ready``: False
    makes a bot that never becomes ready. ``handlers``: client-message type -> handler; an
    unknown type or a raising handler gets an ``error-response``. ``fail_connect``: an
    exception the transport's connect raises (the client surfaces it as TransportError).
    ``connect_delay``: seconds the transport's connect takes. ``dialogue``: how the bot
    talks on ``send-text`` and microphone audio, as the testing servers do
    (:class:`transports.testing.dialogue.Dialogue`; ``None``: it never talks). The four
    settings may be changed between messages; they are read as each message arrives.
    """

    def __init__(
        self,
        *,
        ready_delay: float = 0.0,
        send_bot_ready: bool = True,
        handlers: Mapping[str, Handler] | None = None,
        fail_connect: BaseException | None = None,
        connect_delay: float = 0.0,
        dialogue: Dialogue | None = DEFAULT_DIALOGUE,
    ) -> None:
        self.ready_delay = ready_delay
        self.send_bot_ready = send_bot_ready
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.fail_connect = fail_connect
        self.connect_delay = connect_delay
        self.dialogue = dialogue
        self.received: list[dict[str, Any]] = []
        """Every RTVI message the bot got, in order, across sessions."""
        self.received_audio: list[AudioFrame] = []
        """Every audio frame the client sent."""
        self.connections = 0
        """How many times a transport connected to this bot."""
        self._link: _Link | None = None
        self._changed = asyncio.Event()
        self._call_ids = itertools.count(1)

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

    async def send_event(self, event_type: str, data: Any = None) -> None:
        """Send one typed RTVI message, e.g. ``send_event("bot-llm-text", {"text": "hi"})``.

        ``data`` goes on the wire as given (``None``: no data, as Pipecat's speaking events).
        Raises ValueError for a type that is not a server-to-client RTVI event (use
        :meth:`send` for anything else).
        """
        if event_type not in messages.BOT_EVENT_TYPES:
            raise ValueError(f"not a bot event type: {event_type[:60]!r}")
        await self.send(messages.envelope(event_type, data))

    async def call_function(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float = 10.0,
        tool_call_id: str | None = None,
    ) -> Any:
        """Make a function call as a Pipecat bot does and return the client's result.

        Sends ``llm-function-call-started`` and ``-in-progress`` (report level FULL), waits
        for the client's ``llm-function-call-result`` of this ``tool_call_id``, sends
        ``llm-function-call-stopped`` with its result, and returns that result. After
        ``timeout`` seconds without one it sends a cancelled ``-stopped`` and raises
        TimeoutError.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError("timeout must be a number of seconds")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError("timeout must be a positive, finite number of seconds")
        call_id = tool_call_id or f"call_loopback_{next(self._call_ids)}"
        seen = len(self.received)
        await self.send(messages.function_call_started(name))
        await self.send(messages.function_call_in_progress(call_id, name, arguments or {}))

        def answers(message: Mapping[str, Any]) -> bool:
            data = message.get("data")
            return (
                message.get("type") == "llm-function-call-result"
                and isinstance(data, Mapping)
                and data.get("tool_call_id") == call_id
            )

        try:
            async with asyncio.timeout(timeout):
                answer = await self._wait_received(answers, seen)
        except TimeoutError:
            if self.connected:
                await self.send(messages.function_call_stopped(call_id, name, cancelled=True))
            raise TimeoutError(
                f"no result for function call {name[:60]!r} in {timeout:g} s"
            ) from None
        result = answer["data"].get("result")
        await self.send(
            messages.function_call_stopped(call_id, name, cancelled=False, result=result)
        )
        return result

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

    async def _wait_received(
        self, predicate: Callable[[Mapping[str, Any]], bool], start: int
    ) -> dict[str, Any]:
        while True:
            for message in self.received[start:]:
                if predicate(message):
                    return message
            start = len(self.received)
            self._changed.clear()
            await self._changed.wait()

    def _require_link(self) -> _Link:
        link = self._link
        if link is None or not link.open:
            raise RuntimeError("no client is connected to the loopback bot")
        return link

    def _deliver(self, payload: str | bytes) -> None:
        self._deliver_on(self._require_link(), payload)

    def _deliver_on(self, link: _Link, payload: str | bytes) -> None:
        # Deliver on the next loop turn, in order, like bytes arriving from a socket.
        if link.open:
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

    async def _attach(self, events: TransportSink) -> _Link:
        if self.connect_delay:
            await asyncio.sleep(self.connect_delay)
        if self.fail_connect is not None:
            raise self.fail_connect
        if self._link is not None:
            await self._link.close()
        link = _Link(self, events)
        self._link = link
        self.connections += 1
        link.tasks.spawn(self._serve(link))
        return link

    async def _detach(self, link: _Link) -> None:
        if self._link is link:
            self._link = None
        await link.close()

    def _receive(self, link: _Link, message: Mapping[str, Any]) -> None:
        if link.open:
            link.inbox.put_nowait(dict(message))

    def _receive_audio(self, link: _Link, frame: AudioFrame) -> None:
        self.received_audio.append(frame)
        if link.open:
            self._configure(link.runner.script)
            link.runner.receive_audio(frame)

    def _configure(self, script: BotScript) -> None:
        # The settings are public attributes a test may change mid-session.
        script.send_bot_ready = self.send_bot_ready
        script.ready_delay = self.ready_delay
        script.handlers = self.handlers
        script.dialogue = self.dialogue

    async def _serve(self, link: _Link) -> None:
        while True:
            message = await link.inbox.get()
            self.received.append(message)
            self._changed.set()
            self._configure(link.runner.script)
            link.runner.receive(message)


class LoopbackTransport(Transport):
    """A transport to an in-process :class:`LoopbackBot`; needs no connect params."""

    carries_audio = True

    def __init__(self, bot: LoopbackBot) -> None:
        self.bot = bot
        self._link: _Link | None = None

    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        """Attach to the bot (raising its ``fail_connect``), then report connected."""
        self._link = await self.bot._attach(events)
        events.transport_connected()

    def send_message(self, message: Mapping[str, Any]) -> None:
        """Hand a message to the bot."""
        self.bot._receive(self._require_link(), message)

    def send_audio(self, frame: AudioFrame) -> None:
        """Hand audio to the bot (recorded in ``bot.received_audio``)."""
        self.bot._receive_audio(self._require_link(), frame)

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
