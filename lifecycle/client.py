"""`PipecatClient`: sessions with a Pipecat bot over any transport.

The client does the async work around the sans-I/O :class:`SessionLifecycle`: it runs
start/connect attempts, turns transport reports into triggers, matches requests to
responses, and hands events to user callbacks one at a time, in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from lifecycle import __version__, rtvi
from lifecycle.dispatch import EventBus, EventStream, check_seconds
from lifecycle.errors import (
    BotNotReadyError,
    ConnectionTimeoutError,
    InvalidStateError,
    MessageError,
    PipecatClientError,
    RequestTimeoutError,
    SessionCancelledError,
    SessionClosedError,
    TransportError,
    UnsupportedFeatureError,
)
from lifecycle.events import (
    EVENT_NAMES,
    FunctionCall,
    FunctionCallStopped,
)
from lifecycle.functions import FunctionCallHandler, FunctionCalls, SessionCalls
from lifecycle.logs import SafeLogger, bounded, describe_exception, get_logger
from lifecycle.machine import SessionLifecycle, TransitionEvent
from lifecycle.media import AudioFrame
from lifecycle.redact import redact_text
from lifecycle.registration import EventCallback, EventRegistration
from lifecycle.rtvi import BotReadyData, RTVIError
from lifecycle.start import APIRequest, as_api_request, post_start
from lifecycle.states import State
from lifecycle.trace import SessionTrace
from lifecycle.transport import ConnectRequest, Inbound, Transport

__all__ = ["EVENT_NAMES", "EventCallback", "PipecatClient"]

_T = TypeVar("_T")

_TRANSPORT_CLOSE_TIMEOUT: Final = 10.0
_ARRIVED_KEPT: Final = 8  # message types remembered for a connect timeout's message
_PREFIX: Final = 100  # bot-controlled strings in logs and errors keep this many characters


def _prefix(text: str) -> str:
    """A bounded prefix of a bot-controlled string, for log lines and error messages."""
    return bounded(text, _PREFIX)


@dataclass(frozen=True, slots=True)
class _Close:
    """How the transport ended by itself."""

    clean: bool
    why: str
    error: BaseException | None


@dataclass(eq=False)
class _Session:
    """Everything that belongs to one session; dropped when the next one starts."""

    id: int
    log: SafeLogger
    ready: asyncio.Future[BotReadyData]
    loop: asyncio.AbstractEventLoop
    calls: SessionCalls
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    attempt: asyncio.Task[Any] | None = None
    end_task: asyncio.Task[None] | None = None
    # What an awaiting start/connect raises when the client (not its caller) stops it.
    stop_error: PipecatClientError | None = None
    start_request: APIRequest | None = None
    start_response: Any = None
    transport_used: bool = False
    transport_up: bool = False
    bot_info: BotReadyData | None = None
    close: _Close | None = None
    fatal: RTVIError | None = None
    # Types of the first messages that arrived, for a connect timeout's message.
    arrived: list[str] = field(default_factory=list)
    # Events the transition hook decided on that fire once the session's cleanup is done.
    after_cleanup: list[str] = field(default_factory=list)


class _SessionEvents:
    """The :class:`~lifecycle.transport.TransportEvents` sink of one session.

    Reports arriving after the session began to end, or from an older session,
    are dropped, so a late transport callback never touches the next session.
    """

    __slots__ = ("_client", "_session")

    def __init__(self, client: PipecatClient, session: _Session) -> None:
        self._client = client
        self._session = session

    def _live(self) -> bool:
        return self._client._session is self._session and self._session.end_task is None

    def transport_connected(self) -> None:
        if self._live():
            self._client._on_transport_connected(self._session)

    def message_received(self, message: Inbound) -> None:
        if self._live():
            # The events this message fires count its wire size against the byte bound.
            bus = self._client._bus
            bus.inbound_size = len(message) if isinstance(message, str | bytes) else 0
            try:
                self._client._on_inbound(self._session, message)
            finally:
                bus.inbound_size = 0

    def message_dropped(self, reason: str) -> None:
        if self._live():
            self._session.log.warning_limited("inbound frame dropped", reason=reason)

    def audio_received(self, frame: AudioFrame) -> None:
        if self._live():
            self._client._emit("on_bot_audio", frame)

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        if self._live():
            self._client._on_transport_closed(self._session, clean, error, reason)


class PipecatClient(EventRegistration):
    """A client for Pipecat bots speaking RTVI; one instance serves many sessions in turn.

    Start a session with :meth:`start_bot_and_connect`, :meth:`connect`, or
    :meth:`start_bot` then :meth:`connect`; each resolves only once the bot sent
    ``bot-ready``. End it with :meth:`disconnect`. The client never reconnects by itself.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        callbacks: Mapping[str, EventCallback] | None = None,
        logger: Any = None,
        connect_timeout: float = 30.0,
        request_timeout: float = 10.0,
        max_pending_events: int = 10_000,
        drain_timeout: float = 5.0,
    ) -> None:
        """Build a client on ``transport``; see the module docs for the arguments.

        ``max_pending_events`` bounds the callback queue (API.md §12: high-rate events are
        dropped first, lifecycle events never); ``drain_timeout`` is how long
        :meth:`disconnect` waits for queued callbacks before discarding them.
        """
        self._transport = transport
        self._log = get_logger(logger)
        self._connect_timeout = check_seconds(connect_timeout, "connect_timeout")
        self._request_timeout = check_seconds(request_timeout, "request_timeout")
        self._functions = FunctionCalls()
        self._abandoned_transport = False
        self._lifecycle = SessionLifecycle(logger=logger)
        self._bus = EventBus(
            EVENT_NAMES,
            session_id=lambda: self._lifecycle.session_id,
            log=self._log,
            max_pending=max_pending_events,
            drain_timeout=drain_timeout,
        )
        for name, callback in (callbacks or {}).items():
            self._handlers_for(name).append(callback)
        self._lifecycle.add_transition_hook(self._on_transition)
        self._session: _Session | None = None
        self._trace = SessionTrace()
        # Counts disconnect() calls, so a start/connect still waiting in _begin (for the
        # previous session's end and callbacks) notices one and does not start a session.
        self._disconnects = 0

    # ----------------------------------------------------------------- state

    @property
    def state(self) -> State:
        """The current state."""
        return self._lifecycle.state

    @property
    def session_id(self) -> int:
        """Id of the current (or last) session; 0 before the first."""
        return self._lifecycle.session_id

    @property
    def transport(self) -> Transport:
        """The transport this client was built with."""
        return self._transport

    @property
    def trace(self) -> SessionTrace:
        """A bounded record of recent sessions' transitions and notes, for bug reports."""
        return self._trace

    # ---------------------------------------------------------------- events

    def _handlers_for(self, name: str) -> list[EventCallback]:
        return self._bus.handlers_for(name)

    @property
    def dropped_events(self) -> int:
        """Events dropped by the callback queue's bound or the drain limit (API.md §12)."""
        return self._bus.dropped

    def events(self, *names: str, maxsize: int = 10_000) -> EventStream:
        """Every event from now on (only ``names`` if given) as an async iterator.

        Use as ``async with client.events() as stream: async for event in stream: ...``;
        each item is a :class:`~lifecycle.dispatch.ClientEvent`. The stream is fed when the
        event happens, independently of callbacks, and lasts across sessions until closed.
        Falling ``maxsize`` behind drops its oldest events (never lifecycle ones), counted
        in ``stream.dropped``. Unknown names raise ``ValueError``.
        """
        return self._bus.stream(names, maxsize)

    async def wait_for(
        self, name: str, predicate: Callable[[Any], object] | None = None, *, timeout: float
    ) -> Any:
        """The data of the first ``name`` event after this call for which ``predicate`` holds.

        Raises ``TimeoutError`` after ``timeout`` seconds, and ``SessionClosedError`` if a
        session ends first (unless ``name`` is ``on_disconnected``). Called between
        sessions, it waits into the next one. ``predicate`` runs when the event happens.
        """
        return await self._bus.wait_for(name, predicate, timeout)

    def _emit(self, name: str, *args: Any) -> None:
        self._trace.record_event(self._lifecycle.session_id, name, args[0] if args else None)
        self._bus.emit(name, *args)

    async def _drain(self, since: float | None = None) -> None:
        """Wait (``drain_timeout`` from ``since``) for queued callbacks; not from a callback."""
        await self._bus.drain(self._lifecycle.session_id, since=since)

    # ------------------------------------------------ what follows a transition

    def _on_transition(self, event: TransitionEvent) -> None:
        # The one place that acts on state changes (as h11's _respond_to_state_changes):
        # events, the ready future, client-ready, stop errors, function-call cleanup.
        self._trace.record_transition(event)
        self._log.info(
            "transition",
            session_id=event.session_id,
            trigger=event.trigger,
            source=event.source.value,
            dest=event.dest.value,
            reason=event.reason,
        )
        self._emit("on_transition", event)
        self._emit("on_transport_state_changed", event.dest)
        session = self._session
        if session is None or session.id != event.session_id:
            return  # a new session's first transition: nothing of it exists yet
        match (event.source, event.trigger):
            case (_, "bot_started"):
                self._emit("on_bot_started", session.start_response)
            case (_, "transport_connected"):
                self._emit("on_connected")
                self._send(rtvi.client_ready(__version__), session)
            case (_, "bot_ready"):
                info = session.bot_info
                assert info is not None  # set before bot_ready is fired
                if not session.ready.done():
                    session.ready.set_result(info)
                self._emit("on_bot_ready", info)
            case (State.READY, "transport_closed"):
                close = session.close
                if close is not None and not close.clean:
                    self._emit("on_error", RTVIError(f"transport lost: {close.why}", fatal=True))
                self._emit("on_bot_disconnected")
            case (source, "transport_closed"):
                close = session.close
                why = close.why if close is not None else "closed"
                stop = TransportError(f"transport closed before the bot was ready ({why})")
                stop.__cause__ = close.error if close is not None else None
                session.stop_error = session.stop_error or stop
                if source is State.CONNECTED:
                    self._emit("on_bot_disconnected")
            case (source, "fail") if session.fatal is not None and source is not State.READY:
                session.stop_error = session.stop_error or TransportError(
                    f"the bot reported a fatal error: {_prefix(session.fatal.message)}"
                )
        if event.source is State.READY:
            session.calls.cancel_all()  # a handler still running sends nothing
        if event.dest is State.DISCONNECTED:
            # Fires once the session's cleanup (transport closed, requests failed) is done:
            # a transport_closed enters DISCONNECTED before that cleanup runs.
            if session.end_task is None or session.end_task.done():
                self._emit("on_disconnected")
            else:
                session.after_cleanup.append("on_disconnected")

    # ------------------------------------------------------- starting sessions

    async def start_bot(self, request: APIRequest | str) -> Any:
        """POST to the start endpoint: idle/disconnected -> authenticating -> authenticated.

        Returns the parsed JSON response and fires ``on_bot_started(response)``.
        """
        api_request = _as_request(request)
        session = await self._begin("start_bot")
        return await self._run_attempt(session, self._start_flow(session, api_request))

    async def connect(self, params: Mapping[str, Any] | None = None) -> BotReadyData:
        """Connect the transport and wait for ``bot-ready`` (-> connecting -> connected -> ready).

        From authenticated, ``params`` default to the start_bot response; from
        idle/disconnected, to what the transport was built with.
        """
        session = self._session
        if (
            session is None
            or (session.attempt is not None and not session.attempt.done())
            or self._lifecycle.starts_new_session
            or not self._lifecycle.connect()  # goes on with the session start_bot began
        ):
            session = await self._begin("connect")
        return await self._run_attempt(session, self._connect_flow(session, params))

    async def start_bot_and_connect(self, request: APIRequest | str) -> BotReadyData:
        """start_bot, then connect with its response; resolves on ``bot-ready``."""
        api_request = _as_request(request)
        session = await self._begin("start_bot")
        return await self._run_attempt(session, self._start_and_connect_flow(session, api_request))

    async def _begin(self, trigger: str) -> _Session:
        loop = asyncio.get_running_loop()
        disconnects = self._disconnects
        previous = self._session
        if previous is not None:
            self._check_loop(previous, loop)
        if (
            previous is not None
            and previous.loop is loop  # an ended loop's tasks can't be awaited here
            and previous.end_task is not None
            and not previous.end_task.done()
        ):
            await asyncio.shield(previous.end_task)
        # Callbacks of the previous session run before a new session starts (bounded, as
        # in disconnect(): a flood left queued by a session that ended itself can't stall it).
        await self._drain()
        if self._disconnects != disconnects:
            raise SessionCancelledError("disconnect() was called before the session started")
        if not self._lifecycle.fire(trigger):
            raise InvalidStateError(
                f"cannot {trigger.replace('_', ' ')}: {self._lifecycle.refusal(trigger)}; "
                "a session is in progress (call disconnect() first)"
            )
        session_id = self._lifecycle.session_id
        log = self._log.bind(session_id=session_id)
        session = _Session(
            id=session_id,
            log=log,
            ready=loop.create_future(),
            loop=loop,
            calls=SessionCalls(self._functions, lambda m: self._send_if_ready(session, m), log),
        )
        self._session = session
        return session

    def _check_loop(self, session: _Session, loop: asyncio.AbstractEventLoop | None) -> None:
        """A live session belongs to the loop it started on; say so instead of hanging."""
        if loop is session.loop:
            return
        ended = session.end_task is not None and session.end_task.done()
        if ended or session.loop.is_closed():
            if not ended and self._lifecycle.session_in_progress:
                self._abandon(session)
            return
        raise PipecatClientError(
            "this client's session is bound to another event loop: call it from the loop "
            "(and thread) that started the session, or disconnect() there first "
            f"(session loop {id(session.loop):#x}, calling loop "
            f"{'none' if loop is None else f'{id(loop):#x}'})"
        )

    def _abandon(self, session: _Session) -> None:
        # Its loop closed while the session was live (asyncio.run() ended): nothing of it can
        # run any more. End it in the table and start clean on the new loop.
        session.log.warning("session abandoned: its event loop closed")
        self._lifecycle.fire("disconnect", "event loop closed")
        self._lifecycle.fire("disconnected", "event loop closed")
        self._abandoned_transport = session.transport_used

    async def _run_attempt(self, session: _Session, flow: Coroutine[Any, Any, _T]) -> _T:
        attempt = asyncio.get_running_loop().create_task(flow)
        session.attempt = attempt
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if (caller is None or caller.cancelling() == 0) and session.stop_error is not None:
                # Stopped by the client (disconnect, transport closed, fatal error): raise
                # once the session has fully ended, so the caller sees DISCONNECTED.
                if session.end_task is not None:
                    await asyncio.shield(session.end_task)
                raise session.stop_error from session.stop_error.__cause__
            # The caller gave up: abandon the attempt as if disconnect() had been called.
            attempt.cancel()
            await asyncio.shield(self._end(session, "disconnect", "start/connect cancelled"))
            raise
        except Exception as exc:
            await asyncio.shield(self._end(session, "fail", describe_exception(exc)))
            raise

    async def _start_flow(self, session: _Session, request: APIRequest) -> Any:
        session.log.debug("starting bot", endpoint=request.endpoint)
        response = await post_start(request)
        session.start_request = request
        session.start_response = response
        self._lifecycle.bot_started()
        return response

    async def _start_and_connect_flow(self, session: _Session, request: APIRequest) -> BotReadyData:
        response = await self._start_flow(session, request)
        self._lifecycle.connect()
        params = response if isinstance(response, Mapping) else None
        return await self._connect_flow(session, params)

    async def _connect_flow(
        self, session: _Session, params: Mapping[str, Any] | None
    ) -> BotReadyData:
        if params is None and isinstance(session.start_response, Mapping):
            params = session.start_response
        start = session.start_request
        request = ConnectRequest(
            params=params,
            start_endpoint=start.endpoint if start else None,
            start_headers=dict(start.headers) if start else {},
            session_id=session.id,
        )
        if self._abandoned_transport:
            # The last session's loop closed under it: let the transport drop what it held.
            self._abandoned_transport = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._transport.disconnect(), _TRANSPORT_CLOSE_TIMEOUT)
        try:
            async with asyncio.timeout(self._connect_timeout):
                session.transport_used = True
                try:
                    await self._transport.connect(request, _SessionEvents(self, session))
                except TransportError:
                    raise
                except Exception as exc:
                    raise TransportError(
                        f"transport could not connect: {describe_exception(exc)}"
                    ) from exc
                if self._lifecycle.can_fire("transport_connected"):
                    raise TransportError("transport returned from connect without connecting")
                return await asyncio.shield(session.ready)
        except TimeoutError:
            raise ConnectionTimeoutError(self._timeout_message(session)) from None

    def _timeout_message(self, session: _Session) -> str:
        limit = f"the bot was not ready within {self._connect_timeout} s of connect()"
        if not session.transport_up:
            return f"{limit}: the transport did not connect"
        if not session.arrived:
            return (
                f"{limit}: the transport was up, but nothing arrived from the bot "
                "(no bot-ready: does the bot run an RTVI processor and the right serializer?)"
            )
        seen = ", ".join(session.arrived)
        return (
            f"{limit}: the transport was up and the bot sent {seen}, but no bot-ready "
            "(is RTVI in the bot's pipeline, answering client-ready?)"
        )

    # ------------------------------------------------------ ending sessions

    async def disconnect(self) -> None:
        """End the session from any state; idempotent; a no-op in idle/disconnected.

        Cancels a start/connect in flight (its awaiter gets SessionCancelledError) and
        fails pending requests with SessionClosedError. Every callback of the session
        has run when it returns (except when called from inside a callback), waiting at
        most ``drain_timeout`` s: then the queued rest is discarded (``dropped_events``)
        except the lifecycle events, ``on_disconnected`` among them, which still run.
        """
        self._disconnects += 1
        session, loop = self._session, asyncio.get_running_loop()
        began = loop.time()  # callbacks run while the session ends
        if session is not None:
            self._check_loop(session, loop)
        if (
            session is not None
            and session.loop is loop
            and (session.end_task is not None or self._lifecycle.can_fire("disconnect"))
        ):
            if session.end_task is None and session.stop_error is None:
                session.stop_error = SessionCancelledError("disconnect() cancelled the session")
            await asyncio.shield(self._end(session, "disconnect", "client disconnect"))
        await self._drain(since=began)

    def _end(self, session: _Session, trigger: str, reason: str) -> asyncio.Task[None]:
        """Start ending ``session`` once; every later caller gets the same task."""
        if session.end_task is None:
            session.end_task = asyncio.get_running_loop().create_task(
                self._end_flow(session, trigger, reason)
            )
        return session.end_task

    async def _end_flow(self, session: _Session, trigger: str, reason: str) -> None:
        self._lifecycle.fire(trigger, reason)
        attempt = session.attempt
        if attempt is not None and not attempt.done():
            # Once bot-ready arrived the attempt only returns it (a few loop turns): let it,
            # so connect() resolves as bot-ready decided and its caller never gets a bare
            # CancelledError it did not ask for.
            if not session.ready.done():
                attempt.cancel()
            await asyncio.wait([attempt], timeout=_TRANSPORT_CLOSE_TIMEOUT)
        closed = SessionClosedError(f"the session ended before a response arrived ({reason})")
        for future in session.pending.values():
            if not future.done():
                future.set_exception(closed)
        session.pending.clear()
        if not session.ready.done():
            session.ready.cancel()
        if session.transport_used:
            try:
                await asyncio.wait_for(self._transport.disconnect(), _TRANSPORT_CLOSE_TIMEOUT)
            except Exception as exc:
                session.log.warning("transport disconnect failed", error=describe_exception(exc))
        self._lifecycle.disconnected(reason)  # refused after transport_closed: already there
        session.log.flush_limited()
        session.log.info("session ended", reason=reason)
        for name in session.after_cleanup:  # what the transition hook left for this moment
            self._emit(name)

    # ------------------------------------------------------ transport reports

    def _on_transport_connected(self, session: _Session) -> None:
        session.transport_up = True
        self._lifecycle.transport_connected()

    def _on_transport_closed(
        self, session: _Session, clean: bool, error: BaseException | None, reason: str | None
    ) -> None:
        why = reason or ("bot left" if clean else "connection lost")
        if error is not None:
            why = f"{why}: {describe_exception(error)}"
        session.log.info("transport closed", clean=clean, reason=why)
        self._trace.record_note(session.id, "close", redact_text(why))
        session.close = _Close(clean, why, error)
        self._end(session, "transport_closed", why)

    def _on_inbound(self, session: _Session, raw: Inbound) -> None:
        try:
            event = rtvi.decode(raw, self._transport.max_message_size)
        except rtvi.InvalidMessage as exc:
            session.log.warning_limited("inbound message dropped", reason=exc.reason)
            return
        self._trace.record_note(session.id, "message-in", event.type)
        if not session.ready.done():
            _note_arrival(session, event.type)
        match event:
            case rtvi.Notification(event=name, args=args):
                self._emit(name, *args)
                match args:
                    case (FunctionCall() as call,):
                        session.calls.on_call(call)
                    case (FunctionCallStopped(tool_call_id=call_id, cancelled=cancelled),):
                        session.calls.on_stopped(call_id, cancelled)
            case rtvi.BotReady(info=info, major=major):
                accepted, session.bot_info = session.bot_info, info
                if not self._lifecycle.bot_ready():
                    session.bot_info = accepted  # a refused bot-ready changes nothing
                    session.log.warning_limited(
                        "bot-ready dropped",
                        state=self.state.value,
                        refused=self._lifecycle.refusal("bot_ready"),
                    )
                elif major != 2:
                    session.log.warning(
                        "bot speaks another RTVI major version; continuing",
                        bot_version=_prefix(info.version),
                        client_version=rtvi.PROTOCOL_VERSION,
                    )
            case rtvi.ServerResponse(id=msg_id, result=result):
                future = self._pending_future(session, msg_id)
                if future is None:
                    session.log.warning_limited(
                        "response for no pending request dropped", msg_id=bounded(msg_id, _PREFIX)
                    )
                else:
                    future.set_result(result)
            case rtvi.ErrorResponse(id=msg_id, error=text, message=message):
                future = self._pending_future(session, msg_id)
                if future is None:
                    self._emit("on_message_error", message)
                else:
                    future.set_exception(MessageError(text, data=message.get("data")))
            case rtvi.ServerMessage(data=data):
                self._emit("on_server_message", data)
            case rtvi.BotError(error=error):
                self._on_bot_error(session, error)
            case rtvi.Ignored(type=msg_type, reason=reason):
                session.log.debug("inbound message ignored", msg_type=msg_type, reason=reason)
            case rtvi.Unknown(message=message):
                self._emit("on_unhandled_message", message)

    @staticmethod
    def _pending_future(session: _Session, msg_id: Any) -> asyncio.Future[Any] | None:
        future = session.pending.get(msg_id) if isinstance(msg_id, str) else None
        return None if future is None or future.done() else future

    def _on_bot_error(self, session: _Session, error: RTVIError) -> None:
        session.log.warning_limited(
            "bot error", error_message=_prefix(error.message), fatal=error.fatal
        )
        self._emit("on_error", error)
        if error.fatal:
            session.fatal = error
            self._end(session, "fail", f"fatal error: {_prefix(error.message)}")

    # --------------------------------------------------------------- sending

    def _require_ready(self) -> _Session:
        session = self._session
        if session is not None:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            self._check_loop(session, loop)
        if session is None or not self._lifecycle.sending_allowed:
            raise BotNotReadyError(f"the bot is not ready (state: {self.state.value})")
        return session

    def _send(self, message: dict[str, Any], session: _Session) -> None:
        self._trace.record_note(session.id, "message-out", str(message.get("type")))
        session.log.debug("sending", msg_type=message.get("type"), msg_id=message.get("id"))
        self._transport.send_message(message)

    def _send_if_ready(self, session: _Session, message: dict[str, Any]) -> None:
        if (
            self._session is session
            and session.end_task is None
            and self._lifecycle.sending_allowed
        ):
            self._send(message, session)

    def send_client_message(self, msg_type: str, data: Any = None) -> None:
        """Send an RTVI ``client-message`` ``{t, d}``; requires READY."""
        session = self._require_ready()
        self._send(rtvi.client_message(msg_type, data), session)

    async def send_client_request(
        self, msg_type: str, data: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Send a ``client-message`` and return the ``d`` of its ``server-response``.

        Raises MessageError on ``error-response``, RequestTimeoutError after ``timeout``
        (default ``request_timeout``), SessionClosedError if the session ends first.
        """
        limit = self._request_timeout if timeout is None else check_seconds(timeout, "timeout")
        session = self._require_ready()
        message = rtvi.client_message(msg_type, data)
        msg_id: str = message["id"]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        session.pending[msg_id] = future
        # A plain timer, not wait_for: no extra task or loop turn per request.
        timer = loop.call_later(
            limit, _expire, future, f"no response to {_prefix(msg_type)!r} within {limit} s"
        )
        try:
            self._send(message, session)
            return await future
        finally:
            timer.cancel()
            session.pending.pop(msg_id, None)

    async def send_text(
        self, content: str, *, run_immediately: bool = True, audio_response: bool = True
    ) -> str:
        """Send RTVI ``send-text``; requires READY. Returns the message id.

        The bot echoes the id as ``msg_id`` in its ``user-input`` for this text. ``content``
        that is not a ``str`` raises ``TypeError`` and nothing is sent.
        """
        session = self._require_ready()
        message = rtvi.send_text(
            content, run_immediately=run_immediately, audio_response=audio_response
        )
        self._send(message, session)
        self._trace.record_event(session.id, "send_text", content)
        msg_id: str = message["id"]
        return msg_id

    async def send_file(
        self,
        content: str,
        data: bytes,
        mime: str,
        *,
        name: str | None = None,
        run_immediately: bool = True,
    ) -> str:
        """Send RTVI 2.2 ``send-file``: ``content`` with one file (``data``, inline base64).

        Requires READY and a bot on RTVI 2.2 or later (else
        :class:`~lifecycle.errors.UnsupportedFeatureError`, nothing sent). Returns the
        message id.
        """
        session = self._require_ready()
        version = session.bot_info.version if session.bot_info is not None else ""
        if not rtvi.supports_send_file(version):
            raise UnsupportedFeatureError("send-file", _prefix(version) or "?", "2.2")
        encoded = base64.b64encode(data).decode("ascii")
        message = rtvi.send_file(content, encoded, mime, name, run_immediately=run_immediately)
        self._send(message, session)
        msg_id: str = message["id"]
        return msg_id

    async def send_dtmf(self, buttons: str | Sequence[str]) -> None:
        """Press DTMF keys (``0``-``9``, ``*``, ``#``); requires READY.

        A bot on RTVI 2.1+ gets one ``dtmf`` ``{"buttons": [...]}``; a 2.0.x bot one
        ``{"button": k}`` per key. Any other key raises ``ValueError`` and sends nothing; a
        bot below RTVI 2.0 raises :class:`~lifecycle.errors.UnsupportedFeatureError` and
        nothing is sent.
        """
        keys = rtvi.dtmf_keys(buttons)
        session = self._require_ready()
        version = session.bot_info.version if session.bot_info is not None else ""
        for message in rtvi.dtmf(keys, version):
            self._send(message, session)

    def send_ui_event(self, event: str, payload: Any = None) -> None:
        """Send RTVI ``ui-event`` ``{event, payload}`` (as client-js 1.13); requires READY."""
        session = self._require_ready()
        self._send(rtvi.ui_event(event, payload), session)

    def cancel_ui_job_group(self, job_id: str, reason: str | None = None) -> None:
        """Send RTVI ``ui-cancel-job-group`` ``{job_id, reason}``; requires READY."""
        session = self._require_ready()
        self._send(rtvi.ui_cancel_job_group(job_id, reason), session)

    async def send_audio(self, frame: AudioFrame) -> None:
        """Send s16le PCM audio to the bot (transports that carry audio); requires READY."""
        session = self._require_ready()
        self._trace.record_event(session.id, "user_audio", frame)
        self._transport.send_audio(frame)

    async def disconnect_bot(self) -> None:
        """Ask the bot to leave (RTVI ``disconnect-bot``); the session ends when it does."""
        session = self._require_ready()
        self._send(rtvi.disconnect_bot(), session)

    # -------------------------------------------------------- function calls

    def register_function_call_handler(self, name: str, handler: FunctionCallHandler) -> None:
        """Answer the bot's calls of function ``name`` with ``handler(call)`` (``"*"``: any).

        The handler (sync or async) runs in a task of its own; a non-``None`` return goes
        back as ``llm-function-call-result``. Registering a name again replaces it.
        """
        self._functions.register(name, handler)

    def unregister_function_call_handler(self, name: str) -> None:
        """Stop answering calls of function ``name``."""
        self._functions.unregister(name)

    def unregister_all_function_call_handlers(self) -> None:
        """Stop answering every function call."""
        self._functions.unregister_all()

    # ------------------------------------------------------- context manager

    async def __aenter__(self) -> PipecatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    def __repr__(self) -> str:
        return (
            f"<PipecatClient state={self.state.value} session_id={self.session_id} "
            f"transport={type(self._transport).__name__}>"
        )


def _note_arrival(session: _Session, msg_type: str) -> None:
    # Before bot-ready, what came is remembered (bounded) for a connect timeout's message.
    seen = _prefix(msg_type)
    if len(session.arrived) < _ARRIVED_KEPT and seen not in session.arrived:
        session.arrived.append(seen)


def _expire(future: asyncio.Future[Any], message: str) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(message))


def _as_request(request: APIRequest | str) -> APIRequest:
    return as_api_request(request)
