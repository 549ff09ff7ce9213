"""`SessionLifecycle`: the sans-I/O session state machine, built from the table.

It holds no sockets, tasks or timers, so any client (ours, another SDK, a test
harness) can embed it and drive it by calling one method per trigger. The table is loaded
into one `transitions` machine at import (which checks every state and trigger of it); a
trigger looks its move up in that machine's transitions, and everything that follows a state
change happens in :meth:`SessionLifecycle._fire_now`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from transitions import Machine

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

TransitionHook = Callable[[TransitionEvent], object]
"""A callable run after every transition with its :class:`TransitionEvent`."""


def _moves(machine: Machine) -> dict[tuple[str, State], State]:
    """``(trigger, source) -> dest`` for every transition ``machine`` holds."""
    return {
        (name, _BY_NAME[source]): _BY_NAME[str(transition.dest)]
        for name, event in machine.events.items()
        for source, transitions in event.transitions.items()
        for transition in transitions
    }


_MACHINE: Final = Machine(
    name="pipecat-lifecycle",
    model=None,
    states=list(State),
    transitions=[dict(row) for row in TRANSITIONS],
    initial=INITIAL_STATE,
    auto_transitions=False,
)
"""The table as a `transitions` machine, built once (it checks every state and trigger)."""

# A trigger is one lookup in the machine's own transitions: running it through the library's
# event processing (partials, event data, callbacks, eight log calls) cost ~11 µs a trigger,
# 0.3 ms more per client to build a machine of its own; a session fires seven.
_MOVES: Final = _moves(_MACHINE)


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
        self._state: State = INITIAL_STATE
        self._hooks: list[TransitionHook] = []
        self._session_id = 0
        # Triggers fired from a hook wait here until the current transition is done.
        self._pending: deque[tuple[str, str | None]] = deque()
        self._firing = False
        self._log = get_logger(logger)

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

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
        return (trigger, self._state) in _MOVES

    def refusal(self, trigger: str) -> str:
        """Why ``trigger`` is refused now, naming the state and the event (h11-style).

        The machine itself only answers ``False``; a caller that wants an error builds
        it from this text.
        """
        return refusal(self._state, trigger)

    @property
    def starts_new_session(self) -> bool:
        """Whether a start (``start_bot``/``connect``) now begins a new session."""
        return self._state in SESSION_START_STATES

    @property
    def session_in_progress(self) -> bool:
        """Whether a session has started and not yet ended."""
        return self._state in IN_PROGRESS_STATES

    @property
    def sending_allowed(self) -> bool:
        """Whether messages and audio may be sent to the bot now (READY)."""
        return self._state in SENDING_STATES

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
        source = self._state
        dest = _MOVES.get((trigger, source))
        if dest is None:
            return False
        self._state = dest
        if source in SESSION_START_STATES:
            self._session_id += 1
        event = TransitionEvent(
            source=source,
            dest=dest,
            trigger=trigger,
            session_id=self._session_id,
            at=time.monotonic(),
            reason=reason,
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
        return True

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
