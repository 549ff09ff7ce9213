"""The one declarative table of every legal trigger of a session.

The state machine, the README and the exported diagrams are all built from
:data:`TRANSITIONS`; nothing else may move the state. Each row is in the
``transitions`` library's format (``trigger``, ``source``, ``dest``).

Triggers and their meaning:

``start_bot``
    The client called ``start_bot()``: a new session starts.
``bot_started``
    The start endpoint answered with a usable response.
``connect``
    The client called ``connect()``: a new session starts, or the session
    begun by ``start_bot`` goes on.
``transport_connected``
    The transport reports its connection up (fired by the transport).
``bot_ready``
    The bot's RTVI ``bot-ready`` arrived.
``disconnect``
    The client called ``disconnect()`` (or abandoned a start/connect).
``fail``
    An error ended the session: a startup failure, a connect timeout or a
    fatal RTVI ``error``. Cleanup follows, exactly as for ``disconnect``.
``transport_closed``
    The transport ended by itself: the bot left or the connection was lost
    (fired by the transport). Nothing is left to tear down gracefully.
``disconnected``
    Cleanup after ``disconnect``/``fail`` finished.
"""

from __future__ import annotations

from typing import Final, TypedDict

from lifecycle.states import State

__all__ = [
    "ACTIVE_STATES",
    "IN_PROGRESS_STATES",
    "SENDING_STATES",
    "SESSION_START_STATES",
    "TRANSITIONS",
    "TRIGGERS",
    "Transition",
    "allowed_sources",
    "refusal",
]


class Transition(TypedDict):
    """One row of the table: a trigger, the states it leaves, the state it enters."""

    trigger: str
    source: list[State]
    dest: State


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
"""Every legal trigger of a session; see the module docstring for each one's meaning."""

TRIGGERS: Final[tuple[str, ...]] = tuple(dict.fromkeys(row["trigger"] for row in TRANSITIONS))
"""The trigger names, in table order."""


def allowed_sources(trigger: str) -> tuple[State, ...]:
    """The states ``trigger`` may be fired from (empty for an unknown trigger)."""
    sources = [state for row in TRANSITIONS if row["trigger"] == trigger for state in row["source"]]
    return tuple(dict.fromkeys(sources))


def refusal(state: State, trigger: str) -> str:
    """Why the table refuses ``trigger`` in ``state``: names the state and the event.

    As h11's state machine does for a missing table entry; callers turn it into their error.
    """
    sources = allowed_sources(trigger)
    if not sources:
        return f"{trigger!r} is not a trigger of the session table"
    allowed = ", ".join(source.value for source in sources)
    return f"can't handle event {trigger!r} in state {state.value!r} (allowed from: {allowed})"
