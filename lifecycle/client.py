"""`PipecatClient`: sessions with a Pipecat bot over any transport.

The client is the asyncio driver of the sans-I/O :class:`~lifecycle.protocol.SessionProtocol`:
it runs start/connect attempts, timeouts and cancellation, feeds the protocol what the
transport reports, and carries out the actions it returns in one loop (:meth:`_carry_out`):
events to user callbacks one at a time, in order, messages to the transport, answers to
waiting requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Final, TypeVar

from lifecycle import rtvi
from lifecycle.dispatch import EventBus
from lifecycle.errors import (
    BotNotReadyError,
    ConnectionTimeoutError,
    PipecatClientError,
    SessionCancelledError,
    SessionClosedError,
    TransportError,
)
from lifecycle.events import EVENT_NAMES
from lifecycle.functions import FunctionCallHandler, FunctionCalls, SessionCalls
from lifecycle.logs import describe_exception, get_logger
from lifecycle.media import AudioFrame
from lifecycle.protocol import (
    Action,
    Answer,
    CancelFunctions,
    Dropped,
    Emit,
    End,
    MarkReady,
    Note,
    RunFunction,
    Send,
    SessionProtocol,
    Stop,
    StopFunction,
    Transitioned,
)
from lifecycle.registration import EventCallback, EventRegistration
from lifecycle.rtvi import BotReadyData
from lifecycle.session_io import RequestDeadlines, SessionIO, SessionSink
from lifecycle.start import APIRequest, as_api_request, post_start
from lifecycle.states import State
from lifecycle.timeouts import check_seconds
from lifecycle.trace import SessionTrace
from lifecycle.transport import ConnectRequest, Transport

__all__ = ["EVENT_NAMES", "EventCallback", "PipecatClient"]

_T = TypeVar("_T")

_TRANSPORT_CLOSE_TIMEOUT: Final = 10.0


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

        ``max_pending_events`` bounds the callback queue (high-rate events are
        dropped first, lifecycle events never); ``drain_timeout`` is how long
        :meth:`disconnect` waits for queued callbacks before discarding them.
        """
        self._transport = transport
        self._log = get_logger(logger)
        self._connect_timeout = check_seconds(connect_timeout, "connect_timeout")
        self._request_timeout = check_seconds(request_timeout, "request_timeout")
        self._functions = FunctionCalls()
        self._abandoned_transport = False
        self._protocol = SessionProtocol(logger=logger, max_message_size=transport.max_message_size)
        lifecycle = self._protocol.lifecycle  # read twice per event: the shortest way
        self._bus = EventBus(
            EVENT_NAMES,
            session_id=lambda: lifecycle.session_id,
            log=self._log,
            max_pending=max_pending_events,
            drain_timeout=drain_timeout,
        )
        for name, callback in (callbacks or {}).items():
            self._handlers_for(name).append(callback)
        self._session: SessionIO | None = None
        self._trace = SessionTrace()
        # Counts disconnect() calls, so a start/connect still waiting in _begin (for the
        # previous session's end and callbacks) notices one and does not start a session.
        self._disconnects = 0

    # ----------------------------------------------------------------- state

    @property
    def state(self) -> State:
        """The current state."""
        return self._protocol.state

    @property
    def session_id(self) -> int:
        """Id of the current (or last) session; 0 before the first."""
        return self._protocol.session_id

    @property
    def transport(self) -> Transport:
        """The transport this client was built with."""
        return self._transport

    @property
    def trace(self) -> SessionTrace:
        """A bounded record of recent sessions' transitions and notes, for bug reports."""
        return self._trace

    # ---------------------------------------------------------------- events

    async def _drain(self, since: float | None = None) -> None:
        """Wait (``drain_timeout`` from ``since``) for queued callbacks; not from a callback."""
        await self._bus.drain(self._protocol.session_id, since=since)

    # ------------------------------------------------ carrying out actions

    @property
    def protocol(self) -> SessionProtocol:
        """The sans-I/O session protocol this client drives (read it; don't feed it)."""
        return self._protocol

    def _carry_out(self, session: SessionIO, actions: list[Action], inbound: bool = False) -> None:
        # The one loop that does what the protocol decided, in order.
        # A message in is a Note then mostly an Emit or an Answer: those skip the class
        # patterns' attribute matching; the other cases go most frequent first.
        # ``inbound``: what the transport reported; once its last action is reached, its
        # handling is complete, so that action's callbacks may run at once (EventBus.emit).
        last = actions[-1] if inbound and actions else None
        for action in actions:
            if isinstance(action, Note):
                self._trace.record_note(session.id, action.kind, action.detail)
                continue
            if isinstance(action, Emit):
                args = action.args
                self._trace.record_event(session.id, action.name, args[0] if args else None)
                self._bus.emit(action.name, args, action is last)
                continue
            if isinstance(action, Answer):
                future = session.pending.get(action.request_id)
                if future is None or future.done():
                    session.log.debug("answer for a request no longer awaited dropped")
                elif action.error is not None:
                    future.set_exception(action.error)
                else:
                    future.set_result(action.result)
                continue
            match action:
                case Send(message=message):
                    self._send(message, session)
                case Dropped(reason=reason):
                    session.log.warning_limited("inbound message dropped", reason=reason)
                case Transitioned(event=event):
                    self._trace.record_transition(event)
                case RunFunction(call=call):
                    session.calls.on_call(call)
                case StopFunction(tool_call_id=call_id, cancelled=cancelled):
                    session.calls.on_stopped(call_id, cancelled)
                case CancelFunctions():
                    session.calls.cancel_all()
                case MarkReady(info=info):
                    if not session.ready.done():
                        session.ready.set_result(info)
                case Stop(error=error):
                    session.stop_error = session.stop_error or error
                case End(trigger=trigger, reason=reason):
                    self._end(session, trigger, reason)

    # ------------------------------------------------------- starting sessions

    async def start_bot(self, request: APIRequest | str) -> Any:
        """POST to the start endpoint: idle/disconnected -> authenticating -> authenticated.

        Returns the parsed JSON response and fires ``on_bot_started(response)``.
        """
        api_request = as_api_request(request)
        session = await self._begin("start_bot")
        return await self._run_attempt(session, self._start_flow(session, api_request))

    async def connect(self, params: Mapping[str, Any] | None = None) -> BotReadyData:
        """Connect the transport and wait for ``bot-ready`` (-> connecting -> connected -> ready).

        From authenticated, ``params`` default to the start_bot response; from
        idle/disconnected, to what the transport was built with.
        """
        session = self._session
        goes_on = (
            None
            if session is None
            or (session.attempt is not None and not session.attempt.done())
            or self._protocol.lifecycle.starts_new_session
            else self._protocol.proceed("connect")  # the session start_bot began goes on
        )
        if session is None or goes_on is None:
            session = await self._begin("connect")
        else:
            self._carry_out(session, goes_on)
        return await self._run_attempt(session, self._connect_flow(session, params))

    async def start_bot_and_connect(self, request: APIRequest | str) -> BotReadyData:
        """start_bot, then connect with its response; resolves on ``bot-ready``."""
        api_request = as_api_request(request)
        session = await self._begin("start_bot")
        return await self._run_attempt(session, self._start_and_connect_flow(session, api_request))

    async def _begin(self, trigger: str) -> SessionIO:
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
        actions = self._protocol.begin(trigger)  # InvalidStateError if a session is in progress
        log = self._protocol.log
        session = SessionIO(
            id=self._protocol.session_id,
            log=log,
            ready=loop.create_future(),
            loop=loop,
            deadlines=RequestDeadlines(loop),
            calls=SessionCalls(self._functions, lambda m: self._send_if_ready(session, m), log),
        )
        if self._session is not None:
            self._session.live = False  # a late report of the last session is dropped
        self._session = session
        self._carry_out(session, actions)
        return session

    def _check_loop(self, session: SessionIO, loop: asyncio.AbstractEventLoop | None) -> None:
        """A live session belongs to the loop it started on; say so instead of hanging."""
        if loop is session.loop:
            return
        ended = session.end_task is not None and session.end_task.done()
        if ended or session.loop.is_closed():
            if not ended and self._protocol.lifecycle.session_in_progress:
                self._abandon(session)
            return
        raise PipecatClientError(
            "this client's session is bound to another event loop: call it from the loop "
            "(and thread) that started the session, or disconnect() there first "
            f"(session loop {id(session.loop):#x}, calling loop "
            f"{'none' if loop is None else f'{id(loop):#x}'})"
        )

    def _abandon(self, session: SessionIO) -> None:
        # Its loop closed while the session was live (asyncio.run() ended): nothing of it can
        # run any more. End it in the table and start clean on the new loop.
        session.log.warning("session abandoned: its event loop closed")
        self._carry_out(session, self._protocol.abandon("event loop closed"))
        self._abandoned_transport = session.transport_used

    async def _run_attempt(self, session: SessionIO, flow: Coroutine[Any, Any, _T]) -> _T:
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

    async def _start_flow(self, session: SessionIO, request: APIRequest) -> Any:
        session.log.debug("starting bot", endpoint=request.endpoint)
        response = await post_start(request)
        session.start_request = request
        self._carry_out(session, self._protocol.bot_started(response))
        return response

    async def _start_and_connect_flow(
        self, session: SessionIO, request: APIRequest
    ) -> BotReadyData:
        response = await self._start_flow(session, request)
        goes_on = self._protocol.proceed("connect")
        if goes_on is None:
            # Refused only when the session is ending: its cancellation stops this attempt
            # at its next await, and the awaiter gets the session's stop error.
            session.log.debug("connect after start refused: the session is ending")
        else:
            self._carry_out(session, goes_on)
        params = response if isinstance(response, Mapping) else None
        return await self._connect_flow(session, params)

    async def _connect_flow(
        self, session: SessionIO, params: Mapping[str, Any] | None
    ) -> BotReadyData:
        if params is None and isinstance(self._protocol.start_response, Mapping):
            params = self._protocol.start_response
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
        sink = SessionSink(
            self._protocol, self._bus, functools.partial(self._carry_out, session), session
        )
        try:
            async with asyncio.timeout(self._connect_timeout):
                session.transport_used = True
                try:
                    await self._transport.connect(request, sink)
                except TransportError:
                    raise
                except Exception as exc:
                    raise TransportError(
                        f"transport could not connect: {describe_exception(exc)}"
                    ) from exc
                if self._protocol.lifecycle.can_fire("transport_connected"):
                    raise TransportError("transport returned from connect without connecting")
                return await asyncio.shield(session.ready)
        except TimeoutError:
            message = self._protocol.timeout_message(self._connect_timeout)
            raise ConnectionTimeoutError(message) from None

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
            and (session.end_task is not None or self._protocol.lifecycle.can_fire("disconnect"))
        ):
            if session.end_task is None and session.stop_error is None:
                session.stop_error = SessionCancelledError("disconnect() cancelled the session")
            await asyncio.shield(self._end(session, "disconnect", "client disconnect"))
        await self._drain(since=began)

    def _end(self, session: SessionIO, trigger: str, reason: str) -> asyncio.Task[None]:
        """Start ending ``session`` once; every later caller gets the same task."""
        if session.end_task is None:
            session.live = False  # the transport's reports no longer count
            session.end_task = asyncio.get_running_loop().create_task(
                self._end_flow(session, trigger, reason)
            )
        return session.end_task

    async def _end_flow(self, session: SessionIO, trigger: str, reason: str) -> None:
        self._carry_out(session, self._protocol.end(trigger, reason))
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
        session.deadlines.close()
        if not session.ready.done():
            session.ready.cancel()
        if session.transport_used:
            try:
                async with asyncio.timeout(_TRANSPORT_CLOSE_TIMEOUT):  # no task of its own
                    await self._transport.disconnect()
            except Exception as exc:
                session.log.warning("transport disconnect failed", error=describe_exception(exc))
        self._carry_out(session, self._protocol.cleanup_done(reason))

    # --------------------------------------------------------------- sending

    def _require_ready(self) -> SessionIO:
        session = self._session_here()
        self._protocol.require_ready()
        return session

    def _session_here(self) -> SessionIO:
        # The session, called from its own loop; what the protocol then does checks READY.
        session = self._session
        if session is None:
            raise BotNotReadyError(f"the bot is not ready (state: {self.state.value})")
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._check_loop(session, loop)
        return session

    def _send(self, message: dict[str, Any], session: SessionIO) -> None:
        # The trace's note is the record of each message out (no per-message log line).
        self._trace.record_note(session.id, "message-out", str(message.get("type")))
        self._transport.send_message(message)

    def _send_if_ready(self, session: SessionIO, message: dict[str, Any]) -> None:
        if self._session is session and session.end_task is None and self._protocol.sending_allowed:
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
        session = self._session_here()
        send = self._protocol.request(msg_type, data)  # BotNotReadyError unless READY
        msg_id: str = send.message["id"]
        future: asyncio.Future[Any] = session.loop.create_future()
        session.pending[msg_id] = future
        # One timer for the session's requests, not wait_for: no task, loop turn or
        # timer of its own per request.
        session.deadlines.add(future, msg_type, limit)
        try:
            self._send(send.message, session)  # what _carry_out does with a Send
            return await future
        finally:
            session.pending.pop(msg_id, None)
            if self._session is session:
                self._protocol.forget_request(msg_id)

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
        send = self._protocol.file(content, data, mime, name, run_immediately=run_immediately)
        self._carry_out(session, [send])
        msg_id: str = send.message["id"]
        return msg_id

    async def send_dtmf(self, buttons: str | Sequence[str]) -> None:
        """Press DTMF keys (``0``-``9``, ``*``, ``#``); requires READY.

        A bot on RTVI 2.1+ gets one ``dtmf`` ``{"buttons": [...]}``; a 2.0.x bot one
        ``{"button": k}`` per key. Any other key raises ``ValueError`` and sends nothing; a
        bot below RTVI 2.0 raises :class:`~lifecycle.errors.UnsupportedFeatureError` and
        nothing is sent.
        """
        rtvi.dtmf_keys(buttons)  # ValueError before BotNotReadyError, as the docs say
        session = self._require_ready()
        self._carry_out(session, list(self._protocol.dtmf(buttons)))

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
