"""The state enum, the declarative table and the embeddable SessionLifecycle."""

from __future__ import annotations

import subprocess
import sys

import pytest
import structlog

from lifecycle import TRANSITIONS, SessionLifecycle, State, TransitionEvent
from lifecycle.table import TRIGGERS


def test_state_members_in_order() -> None:
    assert [s.value for s in State] == [
        "idle",
        "authenticating",
        "authenticated",
        "connecting",
        "connected",
        "ready",
        "disconnecting",
        "disconnected",
    ]
    assert State.READY == "ready"


def test_table_rows_are_transitions_format() -> None:
    states = set(State)
    for row in TRANSITIONS:
        assert set(row) == {"trigger", "source", "dest"}
        assert row["dest"] in states
        assert row["source"] and set(row["source"]) <= states
    # idle is initial and never re-entered
    assert all(row["dest"] is not State.IDLE for row in TRANSITIONS)


def test_one_method_per_trigger_and_nothing_else_moves_state() -> None:
    machine = SessionLifecycle()
    for trigger in TRIGGERS:
        assert callable(getattr(machine, trigger))
    assert not hasattr(machine, "to_ready")  # no auto transitions


@pytest.mark.parametrize("start", list(State))
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_trigger_from_every_state(start: State, trigger: str) -> None:
    machine = SessionLifecycle()
    machine._state = start  # place the machine; only the table may move it from here
    allowed = {
        row["dest"] for row in TRANSITIONS if row["trigger"] == trigger and start in row["source"]
    }
    result = getattr(machine, trigger)()
    if allowed:
        assert result is True
        assert machine.state in allowed
    else:
        assert result is False
        assert machine.state is start


def test_full_session_and_session_ids() -> None:
    machine = SessionLifecycle()
    seen: list[TransitionEvent] = []
    machine.add_transition_hook(seen.append)
    assert machine.state is State.IDLE and machine.session_id == 0
    for trigger in ("start_bot", "bot_started", "connect", "transport_connected", "bot_ready"):
        assert getattr(machine, trigger)()
    assert machine.state is State.READY
    assert machine.session_id == 1  # connect from authenticated continues the session
    machine.disconnect(reason="bye")
    machine.disconnected()
    assert machine.state is State.DISCONNECTED
    machine.connect()
    assert machine.session_id == 2
    assert [e.trigger for e in seen][:3] == ["start_bot", "bot_started", "connect"]
    assert seen[5].reason == "bye" and seen[5].dest is State.DISCONNECTING
    assert all(isinstance(e.at, float) for e in seen)
    assert [e.at for e in seen] == sorted(e.at for e in seen)
    assert seen[-1].session_id == 2 and seen[0].session_id == 1


def test_trigger_fired_from_hook_runs_after_current_transition() -> None:
    machine = SessionLifecycle()
    order: list[tuple[str, State]] = []

    def hook(event: TransitionEvent) -> None:
        order.append((event.trigger, machine.state))
        if event.trigger == "connect":
            assert machine.transport_connected() is True  # queued
            order.append(("after-queue", machine.state))

    machine.add_transition_hook(hook)
    machine.connect()
    assert order == [
        ("connect", State.CONNECTING),
        ("after-queue", State.CONNECTING),
        ("transport_connected", State.CONNECTED),
    ]


def test_invalid_trigger_queued_from_hook_is_dropped_quietly() -> None:
    machine = SessionLifecycle()
    machine.add_transition_hook(lambda e: machine.bot_ready() if e.dest is State.CONNECTING else 0)
    assert machine.connect() is True
    assert machine.state is State.CONNECTING


def test_hook_exception_never_changes_lifecycle() -> None:
    machine = SessionLifecycle()
    calls: list[State] = []

    def broken(event: TransitionEvent) -> None:
        raise RuntimeError("boom token=abc")

    machine.add_transition_hook(broken)
    machine.add_transition_hook(lambda e: calls.append(e.dest))
    with structlog.testing.capture_logs() as logs:
        machine.connect()
    assert machine.state is State.CONNECTING and calls == [State.CONNECTING]
    assert logs[0]["event"] == "transition hook failed"
    assert logs[0]["session_id"] == 1


def test_remove_hook() -> None:
    machine = SessionLifecycle()
    seen: list[TransitionEvent] = []
    machine.add_transition_hook(seen.append)
    machine.remove_transition_hook(seen.append)
    machine.connect()
    assert seen == []


def test_core_imports_no_io_library() -> None:
    code = (
        "import sys, lifecycle, lifecycle.machine, lifecycle.rtvi, lifecycle.errors, "
        "lifecycle.table, lifecycle.states\n"
        "bad = [m for m in ('aiortc', 'websockets', 'httpx', 'socket', 'asyncio') "
        "if m in sys.modules and m in ('aiortc', 'websockets', 'httpx')]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_lifecycle_never_imports_aiortc() -> None:
    code = (
        "import sys, lifecycle\nfrom lifecycle import PipecatClient\n"
        "import transports, transports.loopback\n"
        "print('aiortc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names_importable_from_lifecycle() -> None:
    import lifecycle

    for name in [
        "PipecatClient",
        "APIRequest",
        "State",
        "TRANSITIONS",
        "SessionLifecycle",
        "TransitionEvent",
        "BotReadyData",
        "RTVIError",
        "AudioFrame",
        "PipecatClientError",
        "StartBotError",
        "AuthenticationError",
        "TransportError",
        "ConnectionTimeoutError",
        "InvalidStateError",
        "BotNotReadyError",
        "SessionCancelledError",
        "SessionClosedError",
        "MessageError",
        "RequestTimeoutError",
    ]:
        assert getattr(lifecycle, name) is not None
    assert issubclass(lifecycle.AuthenticationError, lifecycle.StartBotError)
    for err in (
        "StartBotError",
        "TransportError",
        "ConnectionTimeoutError",
        "InvalidStateError",
        "BotNotReadyError",
        "SessionCancelledError",
        "SessionClosedError",
        "MessageError",
        "RequestTimeoutError",
    ):
        assert issubclass(getattr(lifecycle, err), lifecycle.PipecatClientError)


def test_the_table_loads_into_a_transitions_graph_machine() -> None:
    # The claim an embedder relies on: TRANSITIONS is a `transitions` table as it stands.
    from transitions.extensions import GraphMachine

    machine = GraphMachine(
        states=list(State),
        transitions=TRANSITIONS,
        initial=State.IDLE,
        auto_transitions=False,
        graph_engine="mermaid",
    )
    for trigger in ("start_bot", "bot_started", "connect", "transport_connected", "bot_ready"):
        assert getattr(machine, trigger)()
    assert machine.state is State.READY
    drawn = machine.get_graph().draw(None)
    edges = {(source, row["dest"]) for row in TRANSITIONS for source in row["source"]}
    assert drawn.count("-->") == len(edges) + 1  # one per edge (triggers merged), and [*]
    assert all(trigger in drawn for trigger in TRIGGERS)
