"""`SessionProtocol`: the whole RTVI session as a sans-I/O object.

It owns the :class:`~lifecycle.machine.SessionLifecycle` and every fact of the current
session (the bot's ``bot-ready`` data, how the transport closed, a fatal error, what arrived
before ``bot-ready``, the ids of requests awaiting an answer), and applies the protocol's
rules: ``client-ready`` when the transport connects, which ``bot-ready`` is accepted,
sending only when ready, the one inbound size gate, matching responses to requests, a
fatal ``error`` ending the session, the connect timeout's diagnosis.

Inputs are method calls; each returns the :data:`Action` objects its caller carries out,
in order. It never touches a socket, a task, a timer or a clock: a driver (our asyncio
:class:`~lifecycle.client.PipecatClient`, or your own) feeds it what happened and does what
it says. See ``docs/embed.md`` for a synchronous driver.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lifecycle import rtvi
from lifecycle.errors import (
    BotNotReadyError,
    InvalidStateError,
    MessageError,
    PipecatClientError,
    TransportError,
    UnsupportedFeatureError,
)
from lifecycle.events import TYPED_EVENTS, FunctionCall, FunctionCallStopped
from lifecycle.logs import SafeLogger, bounded, describe_exception, get_logger
from lifecycle.machine import SessionLifecycle, TransitionEvent
from lifecycle.redact import redact_text
from lifecycle.rtvi import BotReadyData, RTVIError
from lifecycle.states import State
from lifecycle.version import __version__

__all__ = [
    "Action",
    "Answer",
    "CancelFunctions",
    "Dropped",
    "Emit",
    "End",
    "MarkReady",
    "Note",
    "RunFunction",
    "Send",
    "SessionProtocol",
    "Stop",
    "StopFunction",
    "Transitioned",
]

_ARRIVED_KEPT: Final = 8  # message types remembered for a connect timeout's message
_PREFIX: Final = 100  # bot-controlled strings in logs and errors keep this many characters
# The events whose argument starts or stops a client-side function call.
_CALL_EVENTS: Final = frozenset(
    name
    for name, build in TYPED_EVENTS.values()
    if build in (FunctionCall.from_data, FunctionCallStopped.from_data)
)


def _prefix(text: str) -> str:
    """A bounded prefix of a bot-controlled string, for log lines and error messages."""
    return bounded(text, _PREFIX)


# ----------------------------------------------------------------- actions
# Emit, Send and Answer are built for each message, so they are not frozen (a frozen
# dataclass takes three times as long to build); nothing changes an action once built.


@dataclass(slots=True)
class Emit:
    """Hand the event ``name`` with ``args`` to the user's callbacks."""

    name: str
    args: tuple[Any, ...] = ()


@dataclass(slots=True)
class Send:
    """Send ``message`` to the bot over the transport."""

    message: dict[str, Any]


@dataclass(slots=True)
class Answer:
    """Settle the request ``request_id``: with ``result``, or by raising ``error``."""

    request_id: str
    result: Any = None
    error: MessageError | None = None


@dataclass(frozen=True, slots=True)
class MarkReady:
    """The bot is ready: a waiting ``connect`` resolves with ``info``."""

    info: BotReadyData


@dataclass(frozen=True, slots=True)
class Stop:
    """A waiting start/connect fails with ``error`` (the first Stop of a session wins)."""

    error: PipecatClientError


@dataclass(frozen=True, slots=True)
class End:
    """End the session: fire ``trigger`` with :meth:`SessionProtocol.end`, clean up, then
    call :meth:`SessionProtocol.cleanup_done`."""

    trigger: str
    reason: str


@dataclass(frozen=True, slots=True)
class Transitioned:
    """The state changed (for a trace or a log; the events about it are separate Emits)."""

    event: TransitionEvent


@dataclass(frozen=True, slots=True)
class Note:
    """A trace note: ``kind`` (``message-in``, ``message-out``, ``close``) and its detail."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """An inbound message was unusable (too big, not JSON, not RTVI) and was dropped; log it
    (the driver's log, rate-limited: a bot controls how often)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RunFunction:
    """The bot called a client-side function: run its handler (results go back as Sends)."""

    call: FunctionCall


@dataclass(frozen=True, slots=True)
class StopFunction:
    """The bot stopped the call ``tool_call_id``; cancel its handler if ``cancelled``."""

    tool_call_id: str | None
    cancelled: bool | None


@dataclass(frozen=True, slots=True)
class CancelFunctions:
    """The session left ready: cancel every running function handler, send no result."""


Action = (
    Emit
    | Send
    | Answer
    | MarkReady
    | Stop
    | End
    | Transitioned
    | Note
    | Dropped
    | RunFunction
    | StopFunction
    | CancelFunctions
)
"""Everything an input of :class:`SessionProtocol` can ask its driver to do."""


@dataclass(frozen=True, slots=True)
class _Close:
    """How the transport ended by itself."""

    clean: bool
    why: str
    error: BaseException | None


_PLAIN_EVENTS: Final = {
    msg_type: (name, build)
    for msg_type, (name, build) in TYPED_EVENTS.items()
    if name not in _CALL_EVENTS
}
"""Typed events that need nothing but their Emit (function-call events start handlers)."""

_IN_NOTES: Final[dict[str, Note]] = {
    msg_type: Note("message-in", msg_type) for msg_type in (*TYPED_EVENTS, *rtvi.CLASSIFIED_TYPES)
}
"""The ``message-in`` note of each RTVI type this client knows (a bot's own types get theirs
made as they come: a bot controls them, so none is kept)."""
_RESPONSE_NOTE: Final = _IN_NOTES["server-response"]


class SessionProtocol:
    """One client's sessions with a Pipecat bot, without I/O: inputs in, actions out.

    A session goes: :meth:`begin` (``"start_bot"`` or ``"connect"``), maybe
    :meth:`bot_started` and :meth:`proceed`\\ ``("connect")``, :meth:`transport_connected`,
    :meth:`receive` for every inbound message, and ends through an :class:`End` action or
    the driver's own :meth:`end`, then :meth:`cleanup_done`. Every input returns a list of
    actions for the driver to carry out in order.
    """

    def __init__(
        self, *, logger: Any = None, max_message_size: int = rtvi.DEFAULT_MAX_MESSAGE_SIZE
    ) -> None:
        """A protocol in the table's initial state; ``max_message_size`` bounds inbound
        messages; ``logger``: a structlog logger (lines are redacted)."""
        self.lifecycle = SessionLifecycle(logger=logger)
        """The session state machine (read it; fire triggers only through this object)."""
        self.max_message_size = max_message_size
        """Inbound messages larger than this many bytes are dropped."""
        self._root_log = get_logger(logger)
        self.log: SafeLogger = self._root_log
        """The current session's logger (bound to its id)."""
        self._out: list[Action] = []
        self._reset()
        self.lifecycle.add_transition_hook(self._on_transition)

    def _reset(self) -> None:
        # The facts of one session: a new session starts with none of the last one's.
        self.bot_info: BotReadyData | None = None
        """The accepted ``bot-ready``'s data (None before it)."""
        self.start_response: Any = None
        """What the start endpoint answered (None without start_bot)."""
        self.transport_up = False
        """Whether the transport reported its connection up."""
        self._close: _Close | None = None
        self._fatal: RTVIError | None = None
        self._ready = False
        self._ending = False
        self._arrived: list[str] = []
        self._pending: set[str] = set()
        self._after_cleanup: list[Action] = []

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The current state."""
        return self.lifecycle.state

    @property
    def session_id(self) -> int:
        """Id of the current (or last) session; 0 before the first."""
        return self.lifecycle.session_id

    @property
    def ending(self) -> bool:
        """Whether the session is ending: an End was issued and cleanup is not done."""
        return self._ending

    @property
    def sending_allowed(self) -> bool:
        """Whether messages may go to the bot now (READY and not ending)."""
        return self.lifecycle.sending_allowed and not self._ending

    @property
    def pending_requests(self) -> frozenset[str]:
        """Ids of the requests awaiting an answer."""
        return frozenset(self._pending)

    # ------------------------------------------------------------- inputs

    def begin(self, trigger: str) -> list[Action]:
        """Start a new session with ``trigger`` (``start_bot`` or ``connect``).

        Raises :class:`~lifecycle.errors.InvalidStateError` when a session is in progress.
        """
        if not self.lifecycle.can_fire(trigger) or not self.lifecycle.starts_new_session:
            raise InvalidStateError(
                f"cannot {trigger.replace('_', ' ')}: {self.lifecycle.refusal(trigger)}; "
                "a session is in progress (call disconnect() first)"
            )
        self._reset()
        fired = self.lifecycle.fire(trigger)
        assert fired  # checked above; nothing else runs in between
        self.log = self._root_log.bind(session_id=self.session_id)
        return self._take()

    def proceed(self, trigger: str) -> list[Action] | None:
        """Fire ``trigger`` in the current session (``connect`` after ``bot_started``).

        ``None`` when the table refuses it now: the driver then begins a new session.
        """
        if not self.lifecycle.fire(trigger):
            return None
        return self._take()

    def bot_started(self, response: Any) -> list[Action]:
        """The start endpoint answered with ``response``."""
        self.start_response = response
        if not self.lifecycle.bot_started():
            self.log.debug("bot_started refused", refused=self.lifecycle.refusal("bot_started"))
        return self._take()

    def transport_connected(self) -> list[Action]:
        """The transport is up: ``client-ready`` goes out."""
        self.transport_up = True
        if not self.lifecycle.transport_connected():
            self.log.warning_limited(
                "transport_connected dropped",
                refused=self.lifecycle.refusal("transport_connected"),
            )
        return self._take()

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> list[Action]:
        """The transport ended by itself: the session ends."""
        why = reason or ("bot left" if clean else "connection lost")
        if error is not None:
            why = f"{why}: {describe_exception(error)}"
        self.log.info("transport closed", clean=clean, reason=why)
        self._close = _Close(clean, why, error)
        self._out.append(Note("close", redact_text(why)))
        self._issue_end("transport_closed", why)
        return self._take()

    def receive(self, raw: str | bytes | bytearray | Mapping[str, Any]) -> list[Action]:
        """One inbound message as received (checked here: size, JSON, label, type)."""
        try:
            message = rtvi.parse(raw, self.max_message_size)
        except rtvi.InvalidMessage as exc:
            return [Dropped(exc.reason)]
        msg_type = message["type"]
        if self._ready and not self._out:
            # The two most frequent messages once ready, each with one thing to decide,
            # take the short way; each does what rtvi.classify and the matching case below do.
            plain = _PLAIN_EVENTS.get(msg_type)
            if plain is not None:  # tokens, levels, speaking...: a typed event
                name, build = plain
                args = () if build is None else (build(message.get("data")),)
                return [_IN_NOTES[msg_type], Emit(name, args)]
            if msg_type == "server-response":
                msg_id: Any = message.get("id")
                data = message.get("data")
                if self._claim(msg_id):  # (a str id of a pending request)
                    return [_RESPONSE_NOTE, Answer(msg_id, rtvi.response_result(data))]
        event = rtvi.classify(message)
        out = self._out
        note = _IN_NOTES.get(event.type)  # the same immutable Note for every known type
        out.append(Note("message-in", event.type) if note is None else note)
        if not self._ready:
            self._note_arrival(event.type)
        if isinstance(event, rtvi.Notification):  # most messages: no class pattern for them
            name, args = event.event, event.args
            out.append(Emit(name, args))
            if name in _CALL_EVENTS:  # the rest (tokens, audio...) need no second look
                match args:
                    case (FunctionCall() as call,):
                        out.append(RunFunction(call))
                    case (FunctionCallStopped(tool_call_id=call_id, cancelled=cancelled),):
                        out.append(StopFunction(call_id, cancelled))
            return self._take()
        match event:  # the most frequent first
            case rtvi.ServerResponse(id=msg_id, result=result):
                if self._claim(msg_id):
                    out.append(Answer(msg_id, result))
                else:
                    self.log.warning_limited(
                        "response for no pending request dropped", msg_id=bounded(msg_id, _PREFIX)
                    )
            case rtvi.BotReady(info=info, major=major):
                self._on_bot_ready(info, major)
            case rtvi.ErrorResponse(id=msg_id, error=text, message=message):
                if self._claim(msg_id):
                    out.append(Answer(msg_id, error=MessageError(text, data=message.get("data"))))
                else:
                    out.append(Emit("on_message_error", (message,)))
            case rtvi.ServerMessage(data=data):
                out.append(Emit("on_server_message", (data,)))
            case rtvi.BotError(error=error):
                self._on_bot_error(error)
            case rtvi.Ignored(type=msg_type, reason=reason):
                self.log.debug("inbound message ignored", msg_type=msg_type, reason=reason)
            case rtvi.Unknown(message=message):
                out.append(Emit("on_unhandled_message", (message,)))
        return self._take()

    def end(self, trigger: str, reason: str) -> list[Action]:
        """The driver ends the session now with ``trigger`` (``disconnect``/``fail``, or the
        ``trigger`` of an :class:`End` action); then it cleans up and calls
        :meth:`cleanup_done`."""
        self._ending = True
        if not self.lifecycle.fire(trigger, reason):
            # Already over (e.g. transport_closed came first): the cleanup still runs.
            self.log.debug("end trigger refused", refused=self.lifecycle.refusal(trigger))
        return self._take()

    def cleanup_done(self, reason: str) -> list[Action]:
        """The driver finished the session's cleanup (transport closed, requests failed)."""
        if not self.lifecycle.disconnected(reason):
            # transport_closed entered DISCONNECTED already; nothing more moves.
            self.log.debug("disconnected refused", refused=self.lifecycle.refusal("disconnected"))
        self._ending = False
        self._pending.clear()
        self.log.flush_limited()
        self.log.info("session ended", reason=reason)
        self._out.extend(self._after_cleanup)
        self._after_cleanup = []
        return self._take()

    def abandon(self, reason: str) -> list[Action]:
        """The driver lost the session (its event loop closed): end it in the table now."""
        for trigger in ("disconnect", "disconnected"):
            if not self.lifecycle.fire(trigger, reason):
                self.log.debug("abandon refused", refused=self.lifecycle.refusal(trigger))
        return self._take()

    # --------------------------------------------------------------- sending

    def require_ready(self) -> None:
        """Raise :class:`~lifecycle.errors.BotNotReadyError` unless sending is allowed."""
        if not self.lifecycle.sending_allowed:
            raise BotNotReadyError(f"the bot is not ready (state: {self.state.value})")

    def send(self, message: dict[str, Any]) -> Send:
        """``message`` as a :class:`Send`, if the bot is ready (else BotNotReadyError)."""
        self.require_ready()
        return Send(message)

    def request(self, msg_type: str, data: Any = None) -> Send:
        """A ``client-message`` request awaiting a ``server-response`` (its id in
        ``message["id"]``); its :class:`Answer` comes from :meth:`receive`."""
        send = self.send(rtvi.client_message(msg_type, data))
        self._pending.add(send.message["id"])
        return send

    def forget_request(self, request_id: str) -> None:
        """The driver stopped waiting for ``request_id`` (timeout, cancel): a late answer is
        dropped."""
        self._pending.discard(request_id)

    def dtmf(self, buttons: str | Sequence[str]) -> list[Send]:
        """The ``dtmf`` message(s) for ``buttons``, shaped for the bot's RTVI version."""
        keys = rtvi.dtmf_keys(buttons)
        self.require_ready()
        version = self.bot_info.version if self.bot_info is not None else ""
        return [Send(message) for message in rtvi.dtmf(keys, version)]

    def file(
        self, content: str, data: bytes, mime: str, name: str | None, *, run_immediately: bool
    ) -> Send:
        """The ``send-file`` message (``data`` inline as base64), if the bot is ready and
        speaks RTVI 2.2 or later; else :class:`~lifecycle.errors.UnsupportedFeatureError`."""
        self.require_ready()
        version = self.bot_info.version if self.bot_info is not None else ""
        if not rtvi.supports_send_file(version):
            raise UnsupportedFeatureError("send-file", _prefix(version) or "?", "2.2")
        encoded = base64.b64encode(data).decode("ascii")
        return Send(rtvi.send_file(content, encoded, mime, name, run_immediately=run_immediately))

    def timeout_message(self, limit: float) -> str:
        """Why no ``bot-ready`` came within ``limit`` seconds, from what the session saw."""
        head = f"the bot was not ready within {limit} s of connect()"
        if not self.transport_up:
            return f"{head}: the transport did not connect"
        if not self._arrived:
            return (
                f"{head}: the transport was up, but nothing arrived from the bot "
                "(no bot-ready: does the bot run an RTVI processor and the right serializer?)"
            )
        seen = ", ".join(self._arrived)
        return (
            f"{head}: the transport was up and the bot sent {seen}, but no bot-ready "
            "(is RTVI in the bot's pipeline, answering client-ready?)"
        )

    # ---------------------------------------------------------------- rules

    def _issue_end(self, trigger: str, reason: str) -> None:
        if not self._ending:
            self._ending = True
            self._out.append(End(trigger, reason))

    def _claim(self, msg_id: Any) -> bool:
        if isinstance(msg_id, str) and msg_id in self._pending:
            self._pending.discard(msg_id)
            return True
        return False

    def _note_arrival(self, msg_type: str) -> None:
        # Before bot-ready, what came is remembered (bounded) for a connect timeout's message.
        seen = _prefix(msg_type)
        if len(self._arrived) < _ARRIVED_KEPT and seen not in self._arrived:
            self._arrived.append(seen)

    def _on_bot_ready(self, info: BotReadyData, major: int | None) -> None:
        accepted, self.bot_info = self.bot_info, info
        if not self.lifecycle.bot_ready():
            self.bot_info = accepted  # a refused bot-ready changes nothing
            self.log.warning_limited(
                "bot-ready dropped",
                state=self.state.value,
                refused=self.lifecycle.refusal("bot_ready"),
            )
        elif major != 2:
            self.log.warning(
                "bot speaks another RTVI major version; continuing",
                bot_version=_prefix(info.version),
                client_version=rtvi.PROTOCOL_VERSION,
            )

    def _on_bot_error(self, error: RTVIError) -> None:
        self.log.warning_limited(
            "bot error", error_message=_prefix(error.message), fatal=error.fatal
        )
        self._out.append(Emit("on_error", (error,)))
        if error.fatal:
            self._fatal = error
            self._issue_end("fail", f"fatal error: {_prefix(error.message)}")

    def _on_transition(self, event: TransitionEvent) -> None:
        # The one place that acts on state changes (as h11's _respond_to_state_changes).
        self._root_log.info(
            "transition",
            session_id=event.session_id,
            trigger=event.trigger,
            source=event.source.value,
            dest=event.dest.value,
            reason=event.reason,
        )
        out = self._out
        out.append(Transitioned(event))
        out.append(Emit("on_transition", (event,)))
        out.append(Emit("on_transport_state_changed", (event.dest,)))
        match (event.source, event.trigger):
            case (_, "bot_started"):
                out.append(Emit("on_bot_started", (self.start_response,)))
            case (_, "transport_connected"):
                out.append(Emit("on_connected"))
                out.append(Send(rtvi.client_ready(__version__)))
            case (_, "bot_ready"):
                assert self.bot_info is not None  # set before bot_ready is fired
                self._ready = True
                out.append(MarkReady(self.bot_info))
                out.append(Emit("on_bot_ready", (self.bot_info,)))
            case (State.READY, "transport_closed"):
                close = self._close
                if close is not None and not close.clean:
                    lost = RTVIError(f"transport lost: {close.why}", fatal=True)
                    out.append(Emit("on_error", (lost,)))
                out.append(Emit("on_bot_disconnected"))
            case (source, "transport_closed"):
                close = self._close
                why = close.why if close is not None else "closed"
                stop = TransportError(f"transport closed before the bot was ready ({why})")
                stop.__cause__ = close.error if close is not None else None
                out.append(Stop(stop))
                if source is State.CONNECTED:
                    out.append(Emit("on_bot_disconnected"))
            case (source, "fail") if self._fatal is not None and source is not State.READY:
                text = _prefix(self._fatal.message)
                out.append(Stop(TransportError(f"the bot reported a fatal error: {text}")))
        if event.source is State.READY:
            out.append(CancelFunctions())  # a handler still running sends nothing
        if event.dest is State.DISCONNECTED:
            # on_disconnected fires once the session's cleanup is done: a transport_closed
            # enters DISCONNECTED before that cleanup runs.
            if self._ending:
                self._after_cleanup.append(Emit("on_disconnected"))
            else:
                out.append(Emit("on_disconnected"))
