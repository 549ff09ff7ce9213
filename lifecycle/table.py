"""The one declarative table of every legal trigger of a session, and every fact about it.

The state machine, the README, the exported diagrams, the trace's sequence diagrams and the
CLI's progress line are all built from what is here: :data:`TRANSITIONS` (each row in the
``transitions`` library's format: ``trigger``, ``source``, ``dest``), :data:`INITIAL_STATE`,
the state groups, and per trigger what it means (:data:`TRIGGER_MEANINGS`) and who fires it
(:data:`FIRED_BY`). Nothing else may move the state or restate these facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, TypedDict

from lifecycle.states import State

__all__ = [
    "ACTIVE_STATES",
    "FIRED_BY",
    "INITIAL_STATE",
    "IN_PROGRESS_STATES",
    "SENDING_STATES",
    "SESSION_START_STATES",
    "TRANSITIONS",
    "TRIGGERS",
    "TRIGGER_MEANINGS",
    "WAITING_STATES",
    "Transition",
    "allowed_sources",
    "describe",
    "refusal",
]


class Transition(TypedDict):
    """One row of the table: a trigger, the states it leaves, the state it enters."""

    trigger: str
    source: list[State]
    dest: State


INITIAL_STATE: Final = State.IDLE
"""The state every machine starts in; never re-entered."""

SESSION_START_STATES: Final = (State.IDLE, State.DISCONNECTED)
"""States a new session may start from."""

ACTIVE_STATES: Final = (
    State.AUTHENTICATING,
    State.AUTHENTICATED,
    State.CONNECTING,
    State.CONNECTED,
    State.READY,
)
"""States of a session in progress, which ``disconnect``/``fail`` can end."""

IN_PROGRESS_STATES: Final = (*ACTIVE_STATES, State.DISCONNECTING)
"""States of a session that has started and not yet ended."""

SENDING_STATES: Final = (State.READY,)
"""States in which messages and audio may be sent to the bot."""

WAITING_STATES: Final = (
    State.AUTHENTICATING,
    State.AUTHENTICATED,
    State.CONNECTING,
    State.CONNECTED,
)
"""States in which a start/connect waits for the server, the transport or the bot."""

TRANSITIONS: Final[list[Transition]] = [
    {
        "trigger": "start_bot",
        "source": [State.IDLE, State.DISCONNECTED],
        "dest": State.AUTHENTICATING,
    },
    {"trigger": "bot_started", "source": [State.AUTHENTICATING], "dest": State.AUTHENTICATED},
    {
        "trigger": "connect",
        "source": [State.IDLE, State.DISCONNECTED, State.AUTHENTICATED],
        "dest": State.CONNECTING,
    },
    {"trigger": "transport_connected", "source": [State.CONNECTING], "dest": State.CONNECTED},
    {"trigger": "bot_ready", "source": [State.CONNECTED], "dest": State.READY},
    {"trigger": "disconnect", "source": list(ACTIVE_STATES), "dest": State.DISCONNECTING},
    {"trigger": "fail", "source": list(ACTIVE_STATES), "dest": State.DISCONNECTING},
    {
        "trigger": "transport_closed",
        "source": [State.CONNECTING, State.CONNECTED, State.READY],
        "dest": State.DISCONNECTED,
    },
    {"trigger": "disconnected", "source": [State.DISCONNECTING], "dest": State.DISCONNECTED},
]
"""Every legal trigger of a session; :data:`TRIGGER_MEANINGS` says what each one means."""

Actor = Literal["client", "server", "transport", "bot"]
"""Who causes a trigger: the client's own code, the start endpoint, the transport, the bot."""

TRIGGER_MEANINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "start_bot": "start_bot() called: a new session starts",
        "bot_started": "the start endpoint answered with a usable response",
        "connect": "connect() called: a new session starts, or the one start_bot began goes on",
        "transport_connected": "the transport reports its connection up",
        "bot_ready": "the bot's RTVI bot-ready arrived",
        "disconnect": "disconnect() called (or a start/connect abandoned)",
        "fail": "an error ended the session: a startup failure, a connect timeout or a fatal "
        "RTVI error; cleanup follows, as for disconnect",
        "transport_closed": "the transport ended by itself: the bot left or the connection "
        "was lost; nothing is left to tear down gracefully",
        "disconnected": "cleanup after disconnect/fail finished",
    }
)
"""What each trigger means (the trigger methods' docstrings are built from it)."""

FIRED_BY: Final[Mapping[str, Actor]] = MappingProxyType(
    {
        "start_bot": "client",
        "bot_started": "server",
        "connect": "client",
        "transport_connected": "transport",
        "bot_ready": "bot",
        "disconnect": "client",
        "fail": "client",
        "transport_closed": "transport",
        "disconnected": "client",
    }
)
"""Who causes each trigger (the trace's sequence diagrams draw the arrow from it)."""

TRIGGERS: Final[tuple[str, ...]] = tuple(dict.fromkeys(row["trigger"] for row in TRANSITIONS))
"""The trigger names, in table order."""


def allowed_sources(trigger: str) -> tuple[State, ...]:
    """The states ``trigger`` may be fired from (empty for an unknown trigger)."""
    sources = [state for row in TRANSITIONS if row["trigger"] == trigger for state in row["source"]]
    return tuple(dict.fromkeys(sources))


def refusal(state: State, trigger: str) -> str:
    """Why the table refuses ``trigger`` in ``state``: names the state and the trigger (in
    h11's words, "can't handle event", which messages and tests quote).

    As h11's state machine does for a missing table entry; callers turn it into their error.
    """
    sources = allowed_sources(trigger)
    if not sources:
        return f"{trigger!r} is not a trigger of the session table"
    allowed = ", ".join(source.value for source in sources)
    return f"can't handle event {trigger!r} in state {state.value!r} (allowed from: {allowed})"


def describe(trigger: str) -> str:
    """``"idle/disconnected -> authenticating: start_bot() called..."`` for ``trigger``."""
    sources = "/".join(state.value for state in allowed_sources(trigger))
    dest = next(row["dest"] for row in TRANSITIONS if row["trigger"] == trigger)
    return f"{sources} -> {dest.value}: {TRIGGER_MEANINGS[trigger]}."


def _check() -> None:
    if set(TRIGGER_MEANINGS) != set(TRIGGERS) or set(FIRED_BY) != set(TRIGGERS):
        raise RuntimeError("every trigger needs a meaning and an actor")  # pragma: no cover


_check()
