"""What a command prints and writes about turns: one line per turn, the HTML timeline file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.cli.output import Output

if TYPE_CHECKING:
    from lifecycle.trace import SessionTrace


def print_turns(trace: SessionTrace, out: Output, session_id: int | None = None) -> None:
    """One line per turn of the traced sessions (``session_id``'s only, if given).

    Text: the turn's summary (latencies from the end of the user's input, the bot's ttfb);
    JSON: ``{"event": "turn", ...the Turn's fields}``.
    """
    for turn in trace.turns(session_id):
        out.emit("turn", turn.summary(), **turn.to_dict())


def write_report(trace: SessionTrace, out: Output, path: str) -> bool:
    """Write ``trace.to_html()`` to ``path``; say where (or why not). False if it failed."""
    try:
        Path(path).write_text(trace.to_html(), encoding="utf-8")
    except OSError as exc:
        out.emit("report", f"could not write the report {path}: {exc}", path=path, ok=False)
        return False
    out.emit("report", f"report written to {path}", path=path, ok=True)
    return True
