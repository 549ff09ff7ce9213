"""SessionTrace: bounded, exported as JSON lines and Mermaid, fed by a SessionLifecycle hook."""

from __future__ import annotations

import json
import re
import tracemalloc
from datetime import datetime

import pytest

from lifecycle import SessionLifecycle, State, TransitionEvent
from lifecycle.trace import TRANSITION, SessionTrace

READY_PATH = ["start_bot", "bot_started", "connect", "transport_connected", "bot_ready"]


def run_session(machine: SessionLifecycle, *, end: str = "disconnect") -> None:
    for trigger in READY_PATH:
        assert machine.fire(trigger)
    if end == "disconnect":
        assert machine.disconnect(reason="client disconnect")
        assert machine.disconnected()
    else:
        assert machine.transport_closed(reason="close 1006")


def traced() -> tuple[SessionLifecycle, SessionTrace]:
    machine = SessionLifecycle()
    trace = SessionTrace()
    machine.add_transition_hook(trace.record_transition)
    return machine, trace


def test_records_every_transition_through_a_lifecycle_hook() -> None:
    machine, trace = traced()
    run_session(machine)
    (record,) = trace.sessions()
    assert record.session_id == 1
    assert [(e.source, e.dest, e.trigger) for e in record.entries] == [
        (State.IDLE, State.AUTHENTICATING, "start_bot"),
        (State.AUTHENTICATING, State.AUTHENTICATED, "bot_started"),
        (State.AUTHENTICATED, State.CONNECTING, "connect"),
        (State.CONNECTING, State.CONNECTED, "transport_connected"),
        (State.CONNECTED, State.READY, "bot_ready"),
        (State.READY, State.DISCONNECTING, "disconnect"),
        (State.DISCONNECTING, State.DISCONNECTED, "disconnected"),
    ]
    assert all(e.kind == TRANSITION and e.is_transition for e in record.entries)
    assert record.entries[5].reason == "client disconnect"
    times = [record.elapsed(e) for e in record.entries]
    assert times[0] == 0.0 and times == sorted(times)


def test_sessions_are_kept_apart_and_notes_interleave() -> None:
    machine, trace = traced()
    run_session(machine)
    machine.connect()
    machine.transport_connected()
    trace.record_note(machine.session_id, "message-in", "bot-ready")
    machine.bot_ready()
    trace.record_note(machine.session_id, "close", "close 1006")
    machine.transport_closed(reason="close 1006")
    first, second = trace.sessions()
    assert (first.session_id, second.session_id) == (1, 2)
    assert [e.kind for e in second.entries] == [
        TRANSITION,
        TRANSITION,
        "message-in",
        TRANSITION,
        "close",
        TRANSITION,
    ]
    assert second.entries[2].detail == "bot-ready"
    assert second.entries[-1].reason == "close 1006"


def test_old_sessions_fall_off() -> None:
    machine = SessionLifecycle()
    trace = SessionTrace(max_sessions=3)
    machine.add_transition_hook(trace.record_transition)
    for _ in range(7):
        run_session(machine)
    assert [r.session_id for r in trace.sessions()] == [5, 6, 7]
    assert len(trace) == 3
    # A late note for a session that fell off is ignored, not resurrected.
    trace.record_note(2, "message-in", "late")
    assert [r.session_id for r in trace.sessions()] == [5, 6, 7]


def test_default_bounds() -> None:
    machine, trace = traced()
    for _ in range(25):
        run_session(machine)
    assert len(trace.sessions()) == 20
    assert trace.sessions()[0].session_id == 6
    for i in range(1500):
        trace.record_note(machine.session_id, "message-in", f"m{i}")
    last = trace.sessions()[-1]
    assert len(last.entries) == 1000
    assert last.dropped == 1500 + 7 - 1000


def test_entries_per_session_are_bounded_and_transitions_are_kept() -> None:
    machine = SessionLifecycle()
    trace = SessionTrace(max_entries=10)
    machine.add_transition_hook(trace.record_transition)
    for trigger in READY_PATH:
        machine.fire(trigger)
    for i in range(100):
        trace.record_note(machine.session_id, "message-in", f"m{i}")
    machine.fail(reason="fatal error: boom")
    machine.disconnected()
    (record,) = trace.sessions()
    assert len(record.entries) == 10
    transitions = [e for e in record.entries if e.is_transition]
    assert len(transitions) == 7  # every transition survives
    notes = [e.detail for e in record.entries if not e.is_transition]
    assert notes == ["m97", "m98", "m99"]  # the newest notes
    assert record.dropped == 97


def test_a_run_of_the_same_note_is_one_counted_entry() -> None:
    machine, trace = traced()
    for trigger in READY_PATH:
        machine.fire(trigger)
    sid = machine.session_id
    for _ in range(3000):  # a bot's tokens: more than max_entries, yet one entry
        trace.record_note(sid, "message-in", "bot-llm-text")
    trace.record_note(sid, "message-in", "bot-llm-stopped")
    trace.record_note(sid, "message-in", "bot-llm-text")  # another run: a new entry
    machine.disconnect(reason="done")
    trace.record_note(sid, "message-in", "bot-llm-text")  # a transition ended the run
    (record,) = trace.sessions()
    notes = [(e.detail, e.count) for e in record.entries if not e.is_transition]
    assert notes == [
        ("bot-llm-text", 3000),
        ("bot-llm-stopped", 1),
        ("bot-llm-text", 1),
        ("bot-llm-text", 1),
    ]
    assert record.dropped == 0
    counts = [row["count"] for row in trace.to_dicts() if row["kind"] == "message-in"]
    assert counts == [3000, 1, 1, 1]
    assert "bot-llm-text x3000" in trace.to_mermaid()


def test_jsonl_parses_back() -> None:
    machine, trace = traced()
    run_session(machine)
    trace.record_note(machine.session_id, "error", 'quote " newline \n unicode é')
    machine.connect()
    machine.transport_closed(reason="close 1006")
    text = trace.to_jsonl()
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 7 + 1 + 2
    keys = {"session_id", "t", "time", "kind", "source", "dest", "trigger", "reason", "detail"}
    keys.add("count")
    assert all(set(row) == keys for row in rows)
    assert rows[0] == {
        **rows[0],
        "session_id": 1,
        "t": 0.0,
        "kind": "transition",
        "source": "idle",
        "dest": "authenticating",
        "trigger": "start_bot",
        "reason": None,
        "detail": None,
    }
    note = rows[7]
    assert note["kind"] == "error" and note["detail"] == 'quote " newline \n unicode é'
    assert note["source"] is None and note["trigger"] is None
    assert rows[-1]["session_id"] == 2 and rows[-1]["reason"] == "close 1006"
    assert rows[8]["t"] == 0.0  # t restarts with each session
    for row in rows:
        assert datetime.fromisoformat(row["time"].replace("Z", "+00:00")).tzinfo is not None
        assert row["t"] >= 0


def test_empty_trace_exports() -> None:
    trace = SessionTrace()
    assert trace.to_jsonl() == ""
    assert trace.sessions() == []
    assert trace.to_mermaid().startswith("sequenceDiagram\n")


def test_mermaid_export_shape() -> None:
    machine, trace = traced()
    for trigger in READY_PATH:
        machine.fire(trigger)
    trace.record_note(machine.session_id, "message-out", "client-message; #1 <b>")
    trace.record_note(machine.session_id, "message-in", "server-response")
    trace.record_note(machine.session_id, "error", "requested fatal")
    trace.record_note(machine.session_id, "close", "close 1000")
    machine.fail(reason="fatal error: requested fatal")
    machine.disconnected()
    machine.connect()
    machine.transport_closed(reason="close 1006")
    text = trace.to_mermaid()
    lines = text.splitlines()
    assert lines[:4] == [
        "sequenceDiagram",
        "    participant client",
        "    participant lifecycle",
        "    participant bot",
    ]
    assert sum(line.startswith("    rect ") for line in lines) == 2
    assert lines.count("    end") == 2
    assert re.search(r"^    client->>lifecycle: start_bot \+[\d.]+ ms$", text, re.MULTILINE)
    assert re.search(r"^    bot->>lifecycle: bot_ready \+[\d.]+ ms$", text, re.MULTILINE)
    assert "    Note right of lifecycle: connected → ready" in lines
    assert "    Note right of lifecycle: connecting → disconnected (close 1006)" in lines
    assert any(line.startswith("    client->>bot: message-out") for line in lines)
    assert any(line.startswith("    bot->>client: message-in") for line in lines)
    assert any(line.startswith("    bot--xclient: error") for line in lines)
    # Mermaid syntax characters in details are escaped, never raw.
    body = "\n".join(lines[4:])
    assert ";" not in body.replace("#59;", "").replace("#35;", "").replace("#lt;", "").replace(
        "#gt;", ""
    )
    assert "<" not in body and ">" not in body.replace("->>", "").replace("--x", "")
    # Every session section: a header note, then arrows/notes only.
    allowed = re.compile(r"^    (rect |end$|Note |\w+->>\w+: |\w+--x\w+: )")
    assert all(allowed.match(line) for line in lines[4:])


def test_clear_forgets_everything() -> None:
    machine, trace = traced()
    run_session(machine)
    trace.clear()
    assert trace.sessions() == [] and trace.to_jsonl() == ""
    run_session(machine)
    assert [r.session_id for r in trace.sessions()] == [2]


def test_record_transition_takes_a_plain_event() -> None:
    trace = SessionTrace()
    trace.record_transition(
        TransitionEvent(
            source=State.CONNECTED,
            dest=State.DISCONNECTED,
            trigger="transport_closed",
            session_id=4,
            at=100.0,
            reason="close 1011",
        )
    )
    (record,) = trace.sessions()
    assert record.session_id == 4 and record.entries[0].at == 100.0
    assert record.entries[0].wall > 0


def test_out_of_order_session_ids_stay_sorted() -> None:
    trace = SessionTrace(max_sessions=2)
    trace.record_note(5, "message-in", "a")
    trace.record_note(3, "message-in", "b")
    assert [r.session_id for r in trace.sessions()] == [3, 5]
    trace.record_note(1, "message-in", "c")  # older than everything kept while full
    assert [r.session_id for r in trace.sessions()] == [3, 5]


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionTrace(max_sessions=0)
    with pytest.raises(ValueError):
        SessionTrace(max_entries=0)


# ------------------------------------------------- bot-controlled strings (issue 12.7)


def test_bot_strings_are_kept_as_bounded_prefixes_and_memory_stays_small() -> None:
    machine, trace = traced()
    machine.connect()
    sid = machine.session_id
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):  # 200 messages whose type is 1 MB (the hostile probe: +195 MiB)
            huge = "t" * 1_000_000
            trace.record_note(sid, "message-in", huge)
            del huge
        machine.transport_closed(reason="closed: " + "r" * 1_000_000)
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 250_000  # 200 notes of a 200-character prefix each, not 200 MB
    (record,) = trace.sessions()
    notes = [e for e in record.entries if not e.is_transition]
    assert len(notes) == 200
    assert all(e.detail == "t" * 200 + "… (1000000 chars)" for e in notes)
    (closed,) = [e for e in record.entries if e.trigger == "transport_closed"]
    assert closed.reason is not None and len(closed.reason) < 230
    assert len(trace.to_jsonl()) < 200 * 400


def test_text_bound_is_configurable_and_checked() -> None:
    trace = SessionTrace(max_text=5)
    trace.record_note(1, "message-in", "abcdefgh")
    trace.record_note(1, "x" * 10, "ok")
    entries = trace.sessions()[0].entries
    assert entries[0].detail == "abcde… (8 chars)" and entries[1].kind == "xxxxx… (10 chars)"
    assert entries[1].detail == "ok"
    with pytest.raises(ValueError):
        SessionTrace(max_text=0)
