"""What a :class:`~lifecycle.trace.SessionTrace` gives out: its entries and session records.

Plain frozen data, apart from the trace that records them, so what reads them (the HTML
report, exports) needs nothing of the trace itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lifecycle.states import State
from lifecycle.timeline import Mark

__all__ = ["TRANSITION", "SessionRecord", "TraceEntry"]

TRANSITION: Final = "transition"
"""The ``kind`` of a transition entry (notes have their own kinds)."""


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One recorded entry of a session: a transition or a note."""

    session_id: int
    """The session it belongs to."""
    kind: str
    """``"transition"`` or the note's kind (``"message-in"``, ``"message-out"``, ``"error"``...)."""
    at: float
    """``time.monotonic()`` seconds when it happened."""
    wall: float
    """``time.time()`` when it was recorded (for the wall-clock time in exports)."""
    source: State | None = None
    """The state left (transitions only)."""
    dest: State | None = None
    """The state entered (transitions only)."""
    trigger: str | None = None
    """The table trigger (transitions only)."""
    reason: str | None = None
    """Why the transition happened, when known (transitions only)."""
    detail: str | None = None
    """The note's text, already redacted by the caller (notes only)."""
    count: int = 1
    """How many times this note came in a row (notes only): the same note again, with no
    entry in between, is counted here instead of kept again (a bot's tokens, say)."""

    @property
    def is_transition(self) -> bool:
        """Whether this entry is a state change."""
        return self.kind == TRANSITION


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A snapshot of one session's entries, oldest first."""

    session_id: int
    """The session id."""
    started_at: float
    """``time.monotonic()`` of the session's first recorded entry: ``t`` counts from here."""
    started_wall: float
    """``time.time()`` of that first entry."""
    entries: tuple[TraceEntry, ...]
    """The kept entries in the order they were recorded."""
    dropped: int = 0
    """How many notes fell off because the session reached ``max_entries``."""
    marks: tuple[Mark, ...] = ()
    """The conversation's timeline marks (user, LLM, TTS, bot speech...), oldest first."""

    def elapsed(self, entry: TraceEntry) -> float:
        """Seconds from the session's start to ``entry``."""
        return max(0.0, entry.at - self.started_at)
