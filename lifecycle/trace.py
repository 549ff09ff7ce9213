"""`SessionTrace`: a bounded record of what a client's sessions did, for bug reports.

The client records every transition (with its trigger and reason) and notes such as
messages in and out, errors and close codes. The trace keeps the last
``max_sessions`` sessions; within a session it keeps every transition (a session has
at most a handful) and the newest notes up to ``max_entries`` entries in all, and of every
note's text and transition's reason only a prefix of ``max_text`` characters (a bot controls
message types and error texts), so memory stays bounded however long a session runs and
whatever the bot sends. It exports as JSON lines and as a
Mermaid sequence diagram. No I/O: it only builds strings.

Each session also keeps a :class:`~lifecycle.timeline.Timeline` of the conversation (the
client records its events there as they are emitted, bounded the same way), from which
:meth:`SessionTrace.turns` computes turn latencies and :meth:`SessionTrace.to_html` draws a
self-contained HTML timeline.

Standalone use with the sans-I/O core::

    lifecycle = SessionLifecycle()
    trace = SessionTrace()
    lifecycle.add_transition_hook(trace.record_transition)
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from lifecycle.logs import BOT_TEXT_LIMIT, bounded
from lifecycle.machine import TransitionEvent
from lifecycle.records import TRANSITION, SessionRecord, TraceEntry
from lifecycle.states import State
from lifecycle.table import FIRED_BY
from lifecycle.timeline import RECORDED, Timeline

if TYPE_CHECKING:
    from lifecycle.turns import Turn

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_TEXT",
    "TRANSITION",
    "SessionRecord",
    "SessionTrace",
    "TraceEntry",
]

DEFAULT_MAX_SESSIONS: Final = 20
"""Sessions kept by default; older ones fall off."""
DEFAULT_MAX_ENTRIES: Final = 1000
"""Entries kept per session by default; the oldest notes fall off first."""
DEFAULT_MAX_TEXT: Final = BOT_TEXT_LIMIT
"""Characters kept of a note's text or a transition's reason by default."""

_MERMAID_TEXT_LIMIT: Final = 120
_MERMAID_ESCAPES: Final = {"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", "%": "#37;"}
_MERMAID_UNSAFE: Final = re.compile("[#;<>%]")
_NOTE_ARROWS: Final = {"message-out": "client->>bot", "message-in": "bot->>client"}


_Note = tuple[int, str, float, str, int]
"""A note as stored: (sequence number, kind, monotonic time, detail, count). Its wall time
is the session's start's plus the monotonic time since: one clock read per note, not two."""


class _SessionEntries:
    """Mutable storage of one session: transitions are never dropped, notes are bounded."""

    __slots__ = (
        "dropped",
        "notes",
        "run_open",
        "session_id",
        "started_at",
        "started_wall",
        "timeline",
        "transitions",
    )

    def __init__(self, session_id: int, at: float, wall: float, max_notes: int) -> None:
        self.session_id = session_id
        self.started_at = at
        self.started_wall = wall
        # Kept apart so the oldest note drops in O(1), by the deque itself (its maxlen is
        # the entries left beside the transitions); notes stay plain tuples because a
        # client records one per message (TraceEntry objects are built when read).
        self.transitions: list[tuple[int, TraceEntry]] = []
        self.notes: deque[_Note] = deque(maxlen=max_notes)
        # Whether the newest entry is a note: the same note again then only counts.
        self.run_open = False
        self.dropped = 0
        self.timeline = Timeline()

    def entries(self) -> list[TraceEntry]:
        """Every kept entry in recording order."""
        sid = self.session_id
        merged: list[tuple[int, TraceEntry]] = [
            (
                seq,
                TraceEntry(
                    session_id=sid,
                    kind=kind,
                    at=at,
                    wall=self.started_wall + (at - self.started_at),
                    detail=detail,
                    count=count,
                ),
            )
            for seq, kind, at, detail, count in self.notes
        ]
        merged.extend(self.transitions)
        merged.sort(key=_seq_of)
        return [entry for _, entry in merged]


def _seq_of(item: tuple[int, TraceEntry]) -> int:
    return item[0]


class SessionTrace:
    """A bounded record of a client's sessions: transitions with timing, triggers and notes.

    ``max_sessions`` sessions are kept (the oldest falls off when a new one starts);
    each keeps at most ``max_entries`` entries: every transition, and the newest notes.
    Entries for a session that already fell off are ignored. Not thread-safe: call it
    from the thread that drives the lifecycle (the client's event loop).
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_text: int = DEFAULT_MAX_TEXT,
    ) -> None:
        """Create an empty trace with the given bounds (each at least 1)."""
        if max_sessions < 1 or max_entries < 1 or max_text < 1:
            raise ValueError("max_sessions, max_entries and max_text must be at least 1")
        self.max_sessions = max_sessions
        """How many sessions are kept."""
        self.max_entries = max_entries
        """How many entries one session keeps (read when a session starts and at each of
        its transitions)."""
        self.max_text = max_text
        """How many characters of a note's text or a reason are kept (then ``… (N chars)``)."""
        self._sessions: OrderedDict[int, _SessionEntries] = OrderedDict()
        self._evicted_upto = -1
        self._seq = 0

    def record_transition(self, event: TransitionEvent) -> None:
        """Record one state change (usable directly as a ``SessionLifecycle`` transition hook)."""
        self._add(
            TraceEntry(
                session_id=event.session_id,
                kind=TRANSITION,
                at=event.at,
                wall=time.time(),
                source=State(event.source),
                dest=State(event.dest),
                trigger=event.trigger,
                reason=None if event.reason is None else bounded(event.reason, self.max_text),
            )
        )

    def record_note(self, session_id: int, kind: str, detail: str) -> None:
        """Record something that happened in a session without changing state.

        ``kind`` names it (``"message-in"``, ``"message-out"``, ``"error"``...);
        ``detail`` must already be redacted by the caller; only its first ``max_text``
        characters are kept (as of ``kind``). The same note again, with no other entry in
        between (a bot's stream of tokens), only counts: one entry, ``count`` times.
        """
        # A client records one note per message: the kept session's lookup comes first.
        session = self._sessions.get(session_id) or self._session_for(session_id, time.monotonic())
        if session is None:
            return
        notes = session.notes
        if session.run_open:
            last = notes[-1]
            if last[3] == detail and last[1] == kind:
                notes[-1] = (last[0], kind, last[2], detail, last[4] + 1)
                return
        limit = self.max_text
        if type(kind) is not str or len(kind) > limit:
            kind = bounded(kind, limit)
        if type(detail) is not str or len(detail) > limit:
            detail = bounded(detail, limit)
        if len(notes) == notes.maxlen:
            session.dropped += 1  # the append lets the oldest note fall off
        self._seq += 1
        notes.append((self._seq, kind, time.monotonic(), detail, 1))
        session.run_open = True

    def record_event(self, session_id: int, name: str, data: Any = None) -> None:
        """Put one emitted event on its session's timeline (if it is a kind turns use).

        ``name`` as the client emits it (``"on_bot_llm_text"``...) or ``"send_text"`` /
        ``"user_audio"`` for what the client sent; ``data`` its argument. Cheap for the
        rest: one set lookup. Events of a session not traced (yet, or any more) are ignored.
        """
        if name in RECORDED:
            session = self._sessions.get(session_id)
            if session is not None:
                session.timeline.record(name, data, time.monotonic())

    def _session_for(self, session_id: int, at: float) -> _SessionEntries | None:
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        if session_id <= self._evicted_upto:
            return None  # a late entry of a session that already fell off
        session = _SessionEntries(session_id, at, time.time(), self.max_entries)
        self._sessions[session_id] = session
        # Ids normally arrive in order; keep the dict ordered by id regardless.
        if any(sid > session_id for sid in self._sessions):
            self._sessions = OrderedDict(sorted(self._sessions.items()))
        while len(self._sessions) > self.max_sessions:
            evicted, _ = self._sessions.popitem(last=False)
            self._evicted_upto = max(self._evicted_upto, evicted)
        return self._sessions.get(session_id)

    def _add(self, entry: TraceEntry) -> None:
        session = self._session_for(entry.session_id, entry.at)
        if session is not None:
            self._seq += 1
            session.transitions.append((self._seq, entry))
            session.run_open = False
            self._bound(session)

    def _bound(self, session: _SessionEntries) -> None:
        # A transition takes one entry from the notes' room (only transitions left is fine:
        # a session has a handful, bounded by the table); the newest notes stay.
        room = max(0, self.max_entries - len(session.transitions))
        notes = session.notes
        if notes.maxlen != room:
            session.dropped += max(0, len(notes) - room)
            session.notes = deque(notes, maxlen=room)

    def sessions(self) -> list[SessionRecord]:
        """Snapshots of the kept sessions, oldest first."""
        return [
            SessionRecord(
                session_id=s.session_id,
                started_at=s.started_at,
                started_wall=s.started_wall,
                entries=tuple(s.entries()),
                dropped=s.dropped,
                marks=s.timeline.marks(),
            )
            for s in self._sessions.values()
        ]

    def clear(self) -> None:
        """Forget every recorded session (later entries of those sessions are kept again)."""
        self._sessions.clear()
        self._evicted_upto = -1

    def __len__(self) -> int:
        """The number of kept sessions."""
        return len(self._sessions)

    def turns(self, session_id: int | None = None) -> tuple[Turn, ...]:
        """The turns of the kept sessions (only ``session_id``'s if given), typed and timed.

        See :class:`lifecycle.turns.Turn`: per turn, from when the user's input ended, the
        first LLM text, TTS text, bot audio and bot-started-speaking, with the bot's metrics.
        """
        from lifecycle.turns import turns_from_marks

        turns: list[Turn] = []
        for record in self.sessions():
            if session_id is None or record.session_id == session_id:
                turns += turns_from_marks(record.marks, record.session_id, record.started_at)
        return tuple(turns)

    def to_html(self, *, title: str = "pipecat-lifecycle session timeline") -> str:
        """A self-contained HTML page (inline CSS, SVG and script; no network) of the sessions.

        Per session: state bands, lanes for the user, LLM, TTS, bot speech, function calls
        and transport events, each turn's latency drawn and labelled, details on hover.
        Every bot-controlled string is HTML-escaped.
        """
        from lifecycle.report import render_html

        return render_html(self.sessions(), self.turns(), title=title)

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every kept entry as a JSON-ready dict (the objects :meth:`to_jsonl` writes)."""
        rows: list[dict[str, Any]] = []
        for record in self.sessions():
            for entry in record.entries:
                rows.append(
                    {
                        "session_id": entry.session_id,
                        "t": round(record.elapsed(entry), 6),
                        "time": _iso(entry.wall),
                        "kind": entry.kind,
                        "source": entry.source.value if entry.source is not None else None,
                        "dest": entry.dest.value if entry.dest is not None else None,
                        "trigger": entry.trigger,
                        "reason": entry.reason,
                        "detail": entry.detail,
                        "count": entry.count,
                    }
                )
        return rows

    def to_jsonl(self) -> str:
        """One JSON object per line and entry, oldest session first.

        Keys: ``session_id``, ``t`` (seconds since the session's first entry), ``time``
        (wall clock, ISO 8601 UTC), ``kind`` (``"transition"`` or the note's kind),
        ``source``, ``dest``, ``trigger``, ``reason`` (transitions), ``detail`` (notes) and
        ``count`` (how many of the same note came in a row: 1 but for runs, e.g. a bot's
        tokens; 1 for transitions); keys that do not apply are ``null``. Empty string when
        nothing was recorded.
        """
        return "".join(
            json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
            for row in self.to_dicts()
        )

    def to_mermaid(self) -> str:
        """A Mermaid ``sequenceDiagram`` of the kept sessions, one boxed section each.

        Participants: ``client`` (the application), ``lifecycle`` (the state machine) and
        ``bot`` (bot, start server, transport). A transition is an arrow from whoever
        caused it to ``lifecycle`` labelled with trigger and time, plus a note with the
        state change; messages are arrows between client and bot; other notes are notes.
        """
        lines = [
            "sequenceDiagram",
            "    participant client",
            "    participant lifecycle",
            "    participant bot",
        ]
        records = self.sessions()
        if not records:
            lines.append("    Note over client,bot: no sessions recorded")
        for record in records:
            lines.append("    rect rgba(128, 128, 128, 0.08)")
            header = f"session {record.session_id} · {_iso(record.started_wall)}"
            if record.dropped:
                header += f" · {record.dropped} older notes dropped"
            lines.append(f"    Note over client,bot: {_mermaid_text(header)}")
            for entry in record.entries:
                stamp = f"+{record.elapsed(entry) * 1000:.1f} ms"
                lines += _mermaid_entry(entry, stamp)
            lines.append("    end")
        return "\n".join(lines) + "\n"


def _mermaid_entry(entry: TraceEntry, stamp: str) -> list[str]:
    if entry.is_transition:
        assert entry.source is not None and entry.dest is not None
        actor = "client" if FIRED_BY.get(entry.trigger or "") in (None, "client") else "bot"
        change = f"{entry.source.value} → {entry.dest.value}"
        if entry.reason:
            change += f" ({entry.reason})"
        return [
            f"    {actor}->>lifecycle: {_mermaid_text(f'{entry.trigger} {stamp}')}",
            f"    Note right of lifecycle: {_mermaid_text(change)}",
        ]
    times = f" x{entry.count}" if entry.count > 1 else ""
    text = _mermaid_text(f"{entry.kind} {stamp}: {entry.detail or ''}{times}")
    arrow = _NOTE_ARROWS.get(entry.kind)
    if arrow is not None:
        return [f"    {arrow}: {text}"]
    if entry.kind == "error":
        return [f"    bot--xclient: {text}"]
    return [f"    Note over client,bot: {text}"]


def _mermaid_text(text: str) -> str:
    """``text`` made safe for one Mermaid line: bounded, single line, no syntax characters."""
    flat = " ".join(text.split())
    if len(flat) > _MERMAID_TEXT_LIMIT:
        flat = flat[: _MERMAID_TEXT_LIMIT - 1] + "…"
    # '#' starts an entity code and ';' ends a statement in Mermaid; '<' '>' are HTML.
    return _MERMAID_UNSAFE.sub(lambda match: _MERMAID_ESCAPES[match.group()], flat)


def _iso(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
