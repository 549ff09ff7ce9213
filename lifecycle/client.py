"""`PipecatClient`: sessions with a Pipecat bot over any transport.

The client does the async work around the sans-I/O :class:`SessionLifecycle`: it runs
start/connect attempts, turns transport reports into triggers, matches requests to
responses, and hands events to user callbacks one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from lifecycle import __version__, rtvi
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
)
from lifecycle.logs import SafeLogger, describe_exception, get_logger
from lifecycle.machine import SessionLifecycle, TransitionEvent
from lifecycle.media import AudioFrame
from lifecycle.redact import redact_text
from lifecycle.rtvi import BotReadyData, RTVIError
from lifecycle.start import APIRequest, post_start
from lifecycle.states import State
from lifecycle.table import SESSION_START_STATES
from lifecycle.trace import SessionTrace
from lifecycle.transport import ConnectRequest, Inbound, Transport

__all__ = ["EVENT_NAMES", "EventCallback", "PipecatClient"]

EVENT_NAMES: Final = frozenset(
    {
        "on_transition",
        "on_transport_state_changed",
        "on_bot_started",
        "on_connected",
        "on_bot_ready",
        "on_disconnected",
        "on_bot_disconnected",
        "on_server_message",
        "on_message_error",
        "on_error",
        "on_unhandled_message",
        "on_bot_audio",
    }
)
"""Every event name a callback can be registered for."""

EventCallback = Callable[..., Any]
"""A plain function or coroutine function taking the event's arguments."""

_F = TypeVar("_F", bound=EventCallback)
_T = TypeVar("_T")

_TRANSPORT_CLOSE_TIMEOUT: Final = 10.0


@dataclass(eq=False)
class _Session:
    """Everything that belongs to one session; dropped when the next one starts."""

    id: int
    log: SafeLogger
    ready: asyncio.Future[BotReadyData]
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    attempt: asyncio.Task[Any] | None = None
    end_task: asyncio.Task[None] | None = None
    # What an awaiting start/connect raises when the client (not its caller) stops it.
    stop_error: PipecatClientError | None = None
    start_request: APIRequest | None = None
    start_response: Any = None
    transport_used: bool = False


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
            self._client._on_inbound(self._session, message)

    def message_dropped(self, reason: str) -> None:
        if self._live():
            self._session.log.warning("inbound frame dropped", reason=reason)

    def audio_received(self, frame: AudioFrame) -> None:
        if self._live():
            self._client._emit("on_bot_audio", frame)

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        if self._live():
            self._client._on_transport_closed(self._session, clean, error, reason)


class PipecatClient:
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
    ) -> None:
        """Build a client on ``transport``; see the module docs for the arguments."""
        self._transport = transport
        self._log = get_logger(logger)
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._handlers: dict[str, list[EventCallback]] = {name: [] for name in EVENT_NAMES}
        for name, callback in (callbacks or {}).items():
            self.add_event_handler(name, callback)
        self._lifecycle = SessionLifecycle(logger=logger)
        self._lifecycle.add_transition_hook(self._on_transition)
        self._session: _Session | None = None
        self._queue: deque[tuple[int, str, tuple[Any, ...]]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
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

    def add_event_handler(self, name: str, callback: EventCallback) -> None:
        """Call ``callback`` on event ``name``; unknown names raise ``ValueError``."""
        self._handlers_for(name).append(callback)

    def remove_event_handler(self, name: str, callback: EventCallback) -> None:
        """Stop calling ``callback`` on event ``name``."""
        handlers = self._handlers_for(name)
        with contextlib.suppress(ValueError):
            handlers.remove(callback)

    def event_handler(self, name: str) -> Callable[[_F], _F]:
        """Decorator form of :meth:`add_event_handler`."""
        self._handlers_for(name)  # unknown names fail here, not at decoration

        def register(callback: _F) -> _F:
            self.add_event_handler(name, callback)
            return callback

        return register

    def _handlers_for(self, name: str) -> list[EventCallback]:
        try:
            return self._handlers[name]
        except KeyError:
            known = ", ".join(sorted(EVENT_NAMES))
            raise ValueError(f"unknown event {name!r}; known events: {known}") from None

    def _emit(self, name: str, *args: Any) -> None:
        if not self._handlers[name]:
            return
        self._queue.append((self._lifecycle.session_id, name, args))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        # One task runs every callback, serially and in event order.
        while self._queue:
            session_id, name, args = self._queue.popleft()
            if session_id != self._lifecycle.session_id:
                continue  # a newer session started: an ended session's events never reach it
            for callback in tuple(self._handlers[name]):
                try:
                    result = callback(*args)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._log.error(
                        "event callback failed",
                        session_id=session_id,
                        event_name=name,
                        error=describe_exception(exc, with_traceback=True),
                    )

    async def _drain(self) -> None:
        """Wait until every queued callback has run (not from inside a callback)."""
        current = asyncio.current_task()
        while (task := self._dispatcher) is not None and not task.done() and task is not current:
            await asyncio.shield(task)

    def _on_transition(self, event: TransitionEvent) -> None:
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
            self.state is State.AUTHENTICATED
            and session is not None
            and (session.attempt is None or session.attempt.done())
        ):
            self._lifecycle.connect()
        else:
            session = await self._begin("connect")
        return await self._run_attempt(session, self._connect_flow(session, params))

    async def start_bot_and_connect(self, request: APIRequest | str) -> BotReadyData:
        """start_bot, then connect with its response; resolves on ``bot-ready``."""
        api_request = _as_request(request)
        session = await self._begin("start_bot")
        return await self._run_attempt(session, self._start_and_connect_flow(session, api_request))

    async def _begin(self, trigger: str) -> _Session:
        disconnects = self._disconnects
        # Callbacks of the previous session all run before a new session starts.
        await self._drain()
        previous = self._session
        if previous is not None and previous.end_task is not None and not previous.end_task.done():
            await asyncio.shield(previous.end_task)
        if self._disconnects != disconnects:
            raise SessionCancelledError("disconnect() was called before the session started")
        if self.state not in SESSION_START_STATES:
            raise InvalidStateError(
                f"cannot {trigger.replace('_', ' ')} while {self.state.value}: "
                "a session is in progress (call disconnect() first)"
            )
        loop = asyncio.get_running_loop()
        self._lifecycle.fire(trigger)
        session_id = self._lifecycle.session_id
        session = _Session(
            id=session_id,
            log=self._log.bind(session_id=session_id),
            ready=loop.create_future(),
        )
        self._session = session
        return session

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
        self._emit("on_bot_started", response)
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
                if self.state not in (State.CONNECTED, State.READY):
                    raise TransportError("transport returned from connect without connecting")
                return await asyncio.shield(session.ready)
        except TimeoutError:
            raise ConnectionTimeoutError(
                f"the bot was not ready within {self._connect_timeout} s of connect()"
            ) from None

    # ------------------------------------------------------ ending sessions

    async def disconnect(self) -> None:
        """End the session from any state; idempotent; a no-op in idle/disconnected.

        Cancels a start/connect in flight (its awaiter gets SessionCancelledError) and
        fails pending requests with SessionClosedError. Every callback of the session
        has run when it returns (except when called from inside a callback).
        """
        self._disconnects += 1
        session = self._session
        if session is not None and (
            session.end_task is not None or self.state not in SESSION_START_STATES
        ):
            if session.end_task is None and session.stop_error is None:
                session.stop_error = SessionCancelledError("disconnect() cancelled the session")
            await asyncio.shield(self._end(session, "disconnect", "client disconnect"))
        await self._drain()

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
        self._lifecycle.disconnected(reason)
        session.log.info("session ended", reason=reason)
        self._emit("on_disconnected")

    # ------------------------------------------------------ transport reports

    def _on_transport_connected(self, session: _Session) -> None:
        if not self._lifecycle.transport_connected():
            return
        self._emit("on_connected")
        self._send(rtvi.client_ready(__version__), session)

    def _on_transport_closed(
        self, session: _Session, clean: bool, error: BaseException | None, reason: str | None
    ) -> None:
        why = reason or ("bot left" if clean else "connection lost")
        if error is not None:
            why = f"{why}: {describe_exception(error)}"
        state = self.state
        session.log.info("transport closed", clean=clean, reason=why, state=state.value)
        self._trace.record_note(session.id, "close", redact_text(why))
        if state is State.READY:
            if not clean:
                self._emit("on_error", RTVIError(f"transport lost: {why}", fatal=True))
        else:
            stop = TransportError(f"transport closed before the bot was ready ({why})")
            stop.__cause__ = error
            session.stop_error = stop
        if state in (State.CONNECTED, State.READY):
            self._emit("on_bot_disconnected")
        self._end(session, "transport_closed", why)

    def _on_inbound(self, session: _Session, raw: Inbound) -> None:
        try:
            message = rtvi.decode(raw, self._transport.max_message_size)
        except rtvi.InvalidMessage as exc:
            session.log.warning("inbound message dropped", reason=exc.reason)
            return
        msg_type: str = message["type"]
        data = message.get("data")
        self._trace.record_note(session.id, "message-in", msg_type)
        if msg_type == "bot-ready":
            self._on_bot_ready(session, data)
        elif msg_type in ("server-response", "error-response"):
            self._on_response(session, message, data)
        elif msg_type == "server-message":
            self._emit("on_server_message", data)
        elif msg_type == "error":
            self._on_bot_error(session, RTVIError.from_data(data))
        else:
            self._emit("on_unhandled_message", message)

    def _on_bot_ready(self, session: _Session, data: Any) -> None:
        if self.state is not State.CONNECTED:
            session.log.warning("bot-ready dropped", state=self.state.value)
            return
        info = BotReadyData.from_data(data)
        if rtvi.protocol_major(info.version) != 2:
            session.log.warning(
                "bot speaks another RTVI major version; continuing",
                bot_version=info.version,
                client_version=rtvi.PROTOCOL_VERSION,
            )
        self._lifecycle.bot_ready()
        if not session.ready.done():
            session.ready.set_result(info)
        self._emit("on_bot_ready", info)

    def _on_response(self, session: _Session, message: dict[str, Any], data: Any) -> None:
        msg_id = message.get("id")
        future = session.pending.get(msg_id) if isinstance(msg_id, str) else None
        if future is None or future.done():
            if message["type"] == "error-response":
                self._emit("on_message_error", message)
            else:
                session.log.warning("response for no pending request dropped", msg_id=msg_id)
            return
        if message["type"] == "server-response":
            future.set_result(data.get("d") if isinstance(data, Mapping) else None)
        else:
            text = data.get("error") if isinstance(data, Mapping) else None
            future.set_exception(
                MessageError(str(text or "the bot refused the request"), data=data)
            )

    def _on_bot_error(self, session: _Session, error: RTVIError) -> None:
        session.log.warning("bot error", error_message=error.message, fatal=error.fatal)
        self._emit("on_error", error)
        if error.fatal:
            if self.state is not State.READY:
                session.stop_error = TransportError(
                    f"the bot reported a fatal error: {error.message}"
                )
            self._end(session, "fail", f"fatal error: {error.message}")

    # --------------------------------------------------------------- sending

    def _require_ready(self) -> _Session:
        session = self._session
        if self.state is not State.READY or session is None:
            raise BotNotReadyError(f"the bot is not ready (state: {self.state.value})")
        return session

    def _send(self, message: dict[str, Any], session: _Session) -> None:
        self._trace.record_note(session.id, "message-out", str(message.get("type")))
        session.log.debug("sending", msg_type=message.get("type"), msg_id=message.get("id"))
        self._transport.send_message(message)

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
        session = self._require_ready()
        message = rtvi.client_message(msg_type, data)
        msg_id: str = message["id"]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        session.pending[msg_id] = future
        limit = self._request_timeout if timeout is None else timeout
        # A plain timer, not wait_for: no extra task or loop turn per request.
        timer = loop.call_later(
            limit, _expire, future, f"no response to {msg_type!r} within {limit} s"
        )
        try:
            self._send(message, session)
            return await future
        finally:
            timer.cancel()
            session.pending.pop(msg_id, None)

    async def send_text(
        self, content: str, *, run_immediately: bool = True, audio_response: bool = True
    ) -> None:
        """Send RTVI ``send-text``; requires READY."""
        session = self._require_ready()
        self._send(
            rtvi.send_text(content, run_immediately=run_immediately, audio_response=audio_response),
            session,
        )

    async def send_audio(self, frame: AudioFrame) -> None:
        """Send s16le PCM audio to the bot (transports that carry audio); requires READY."""
        self._require_ready()
        self._transport.send_audio(frame)

    async def disconnect_bot(self) -> None:
        """Ask the bot to leave (RTVI ``disconnect-bot``); the session ends when it does."""
        session = self._require_ready()
        self._send(rtvi.disconnect_bot(), session)

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


def _expire(future: asyncio.Future[Any], message: str) -> None:
    if not future.done():
        future.set_exception(RequestTimeoutError(message))


def _as_request(request: APIRequest | str) -> APIRequest:
    return APIRequest(request) if isinstance(request, str) else request
