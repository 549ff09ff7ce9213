"""`SessionLifecycle`: the sans-I/O session state machine, built from the table.

It holds no sockets, tasks or timers, so any client (ours, another SDK, a test
harness) can embed it and drive it by calling one method per trigger.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from transitions import EventData, Machine

from lifecycle.logs import describe_exception, get_logger
from lifecycle.states import State
from lifecycle.table import (
    IN_PROGRESS_STATES,
    INITIAL_STATE,
    SENDING_STATES,
    SESSION_START_STATES,
    TRANSITIONS,
    describe,
    refusal,
)

__all__ = ["SessionLifecycle", "TransitionEvent", "TransitionHook"]

_ALLOWED: Final[frozenset[tuple[str, State]]] = frozenset(
    (row["trigger"], source) for row in TRANSITIONS for source in row["source"]
)


@dataclass(frozen=True, slots=True)
class TransitionEvent:
    """One state change: what moved the session, from where to where, and when."""

    source: State
    """The state left."""
    dest: State
    """The state entered."""
    trigger: str
    """The table trigger that caused it."""
    session_id: int
    """Id of the session this transition belongs to (one more for every new session)."""
    at: float
    """``time.monotonic()`` seconds when it happened."""
    reason: str | None = None
    """Why, when the caller said (an error message, a close code...)."""


_BY_NAME: Final[dict[str, State]] = {state.name: state for state in State}

_MACHINE_NAME: Final = "pipecat-lifecycle"
"""Our machines' name in `transitions`' log lines (it prefixes them with ``NAME: ``)."""


class _TransitionsAtDebug(logging.Filter):
    """`transitions` logs three INFO lines per state change; ours become DEBUG lines.

    An application that shows INFO (Locust does by default) would otherwise print thousands
    of them in a load run. Lines of other machines (the application's own) are untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and args and args[0] == f"{_MACHINE_NAME}: "):
            return True
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The logger let the line through at its original level: decide again at DEBUG.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


logging.getLogger("transitions.core").addFilter(_TransitionsAtDebug())

TransitionHook = Callable[[TransitionEvent], object]
"""A callable run after every transition with its :class:`TransitionEvent`."""


class _Model:
    """The object `transitions` keeps one machine's state on (apart, so it adds nothing to
    ours); ``owner`` gets the state changes."""

    __slots__ = ("owner", "state")

    def __init__(self, owner: SessionLifecycle) -> None:
        self.state = INITIAL_STATE
        self.owner = owner


def _after_state_change(event_data: EventData) -> None:
    model = event_data.model
    assert isinstance(model, _Model)
    model.owner._after_state_change(event_data)


# One `transitions` machine, built once from the table, moves every session's model: building
# one per client cost 0.3 ms (9 events, 8 states, bound methods), a third of a connect's CPU.
# Models are never added to it (`add_model` would keep them alive): an event is fired with
# its model, and the machine keeps no state of its own between calls (not queued).
_MACHINE: Final = Machine(
    name=_MACHINE_NAME,
    model=None,
    states=list(State),
    transitions=[dict(row) for row in TRANSITIONS],
    initial=INITIAL_STATE,
    auto_transitions=False,
    send_event=True,
    after_state_change=_after_state_change,
)
_EVENTS: Final = _MACHINE.events


class SessionLifecycle:
    """The session state machine: the table, queued triggers and transition hooks.

    Every trigger of :data:`lifecycle.TRANSITIONS` is a method of the same name
    that takes no argument (an optional ``reason`` is recorded on the event). A
    trigger the table does not allow from the current state changes nothing and
    returns ``False``. A trigger fired from inside a hook runs once the current
    transition and its hooks are done, never inside them.
    """

    def __init__(self, *, logger: Any = None) -> None:
        """A machine in the table's initial state, session id 0; ``logger``: a structlog logger."""
        self._model = _Model(self)
        self._hooks: list[TransitionHook] = []
        self._session_id = 0
        # Our own queue: transitions' queued mode raises out of the outer call when a
        # queued trigger turns out invalid, and logs through stdlib logging.
        self._pending: deque[tuple[str, str | None]] = deque()
        self._firing = False
        self._log = get_logger(logger)

    @property
    def state(self) -> State:
        """The current state."""
        return self._model.state

    @property
    def session_id(self) -> int:
        """Id of the current (or last) session; 0 before the first one."""
        return self._session_id

    def add_transition_hook(self, callback: TransitionHook) -> None:
        """Run ``callback(event)`` after every transition, in the order hooks were added."""
        self._hooks.append(callback)

    def remove_transition_hook(self, callback: TransitionHook) -> None:
        """Stop running a hook added with :meth:`add_transition_hook`."""
        self._hooks.remove(callback)

    def can_fire(self, trigger: str) -> bool:
        """Whether the table allows ``trigger`` from the current state."""
        return (trigger, self.state) in _ALLOWED

    def refusal(self, trigger: str) -> str:
        """Why ``trigger`` is refused now, naming the state and the event (h11-style).

        The machine itself only answers ``False``; a caller that wants an error builds
        it from this text.
        """
        return refusal(self.state, trigger)

    @property
    def starts_new_session(self) -> bool:
        """Whether a start (``start_bot``/``connect``) now begins a new session."""
        return self.state in SESSION_START_STATES

    @property
    def session_in_progress(self) -> bool:
        """Whether a session has started and not yet ended."""
        return self.state in IN_PROGRESS_STATES

    @property
    def sending_allowed(self) -> bool:
        """Whether messages and audio may be sent to the bot now (READY)."""
        return self.state in SENDING_STATES

    def fire(self, trigger: str, reason: str | None = None) -> bool:
        """Fire ``trigger`` by name; ``False`` when it is not allowed now (nothing changes).

        Inside a hook the trigger is queued and ``True`` is returned; it is checked
        against the table when its turn comes.
        """
        if self._firing:
            self._pending.append((trigger, reason))
            return True
        self._firing = True
        try:
            result = self._fire_now(trigger, reason)
            while self._pending:
                trigger, reason = self._pending.popleft()
                if not self._fire_now(trigger, reason):
                    # Queued from a hook, then overtaken (the state moved on): nothing to do.
                    self._log.debug("queued trigger refused", refused=self.refusal(trigger))
            return result
        finally:
            self._pending.clear()
            self._firing = False

    def _fire_now(self, trigger: str, reason: str | None) -> bool:
        if (trigger, self._model.state) not in _ALLOWED:
            return False
        return bool(_EVENTS[trigger].trigger(self._model, reason=reason))

    def _after_state_change(self, event_data: EventData) -> None:
        transition = event_data.transition
        assert transition is not None and event_data.event is not None
        source = _BY_NAME[transition.source]
        if source in SESSION_START_STATES:
            self._session_id += 1
        event = TransitionEvent(
            source=source,
            dest=_BY_NAME[str(transition.dest)],
            trigger=event_data.event.name,
            session_id=self._session_id,
            at=time.monotonic(),
            reason=event_data.kwargs.get("reason"),
        )
        for hook in tuple(self._hooks):
            try:
                hook(event)
            except Exception as exc:
                # A broken hook must never change the lifecycle.
                self._log.error(
                    "transition hook failed",
                    session_id=self._session_id,
                    error=describe_exception(exc, with_traceback=True),
                )

    # One method per trigger of the table (a test keeps them equal to TRANSITIONS); each
    # docstring is the table's description of its trigger (set below).

    def start_bot(self, reason: str | None = None) -> bool:
        return self.fire("start_bot", reason)

    def bot_started(self, reason: str | None = None) -> bool:
        return self.fire("bot_started", reason)

    def connect(self, reason: str | None = None) -> bool:
        return self.fire("connect", reason)

    def transport_connected(self, reason: str | None = None) -> bool:
        return self.fire("transport_connected", reason)

    def bot_ready(self, reason: str | None = None) -> bool:
        return self.fire("bot_ready", reason)

    def disconnect(self, reason: str | None = None) -> bool:
        return self.fire("disconnect", reason)

    def fail(self, reason: str | None = None) -> bool:
        return self.fire("fail", reason)

    def transport_closed(self, reason: str | None = None) -> bool:
        return self.fire("transport_closed", reason)

    def disconnected(self, reason: str | None = None) -> bool:
        return self.fire("disconnected", reason)

    def __repr__(self) -> str:
        return f"<SessionLifecycle state={self.state.value} session_id={self._session_id}>"


def _document_methods() -> None:
    for trigger in dict.fromkeys(row["trigger"] for row in TRANSITIONS):
        method = vars(SessionLifecycle).get(trigger)
        if method is None:  # pragma: no cover - guards edits of the table
            raise RuntimeError(f"SessionLifecycle lacks the trigger method {trigger!r}")
        method.__doc__ = describe(trigger)


_document_methods()
