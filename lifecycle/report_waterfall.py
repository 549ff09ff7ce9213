"""One turn as a waterfall: its figures on a time axis of the turn's own length.

On the session timeline a 179 ms turn of an 18 s session is a few pixels wide; here the axis
runs from the end of the user's input to the turn's last figure, so each figure is a bar that
can be read (and hovered for its exact value). Tooltips name each figure by its
:class:`~lifecycle.turns.Turn` field (the names of ``to_dict()`` and ``--json``) and the
event that ended it. Pure string building, no I/O; every text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

from lifecycle.turns import Turn

__all__ = ["WATERFALL_ROWS", "waterfall_svg", "waterfalls_html"]

WATERFALL_ROWS: Final = (
    ("llm_first_ms", "LLM first text", "on_bot_llm_text", "#8e24aa"),
    ("tts_first_ms", "TTS first text", "on_bot_tts_text", "#f4511e"),
    ("audio_first_ms", "bot audio", "on_bot_audio", "#43a047"),
    ("bot_speaking_ms", "bot speaking", "on_bot_started_speaking", "#2e7d32"),
)
"""The turn's own figures: (Turn field, heading, the event that ends it, colour)."""

_LEFT: Final = 190  # px for the row headings
_HEAD_CHARS: Final = 30  # a heading longer than this is cut (its tooltip has it whole)
_PLOT: Final = 420  # px for the turn's time axis
_ROW: Final = 18  # px per row
_TOP: Final = 18  # px for the axis labels
_BOT_COLOUR: Final = "#546e7a"  # the bot's own metrics


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _head(text: str) -> str:
    return text if len(text) <= _HEAD_CHARS else text[: _HEAD_CHARS - 1] + "…"


def _rows(turn: Turn) -> list[tuple[str, str, float, str]]:
    """(heading, tooltip, ms, colour) of every figure the turn has, in drawing order."""
    rows = [
        (heading, f"{field} {value:.1f} ms: the first {event} after the input", value, colour)
        for field, heading, event, colour in WATERFALL_ROWS
        for value in (getattr(turn, field),)
        if value is not None
    ]
    for figures, kind in ((turn.ttfb, "ttfb"), (turn.processing, "processing")):
        rows += [
            (
                _head(f"{kind} {name}"),
                f"{kind}[{name}] {value:.1f} ms: the bot's own figure (on_metrics)",
                value,
                _BOT_COLOUR,
            )
            for name, value in figures.items()
        ]
    return rows


def _step(span_ms: float) -> float:
    """An axis step of 1, 2 or 5 times a power of ten giving at most six ticks."""
    step = 1.0
    while span_ms / step > 6:
        step *= 2.5 if str(step)[0] == "2" else 2
    return step


def waterfall_svg(turn: Turn) -> str:
    """The turn's figures as bars from its anchor, on an axis of the turn's own length."""
    rows = _rows(turn)
    if not rows:
        return '<p class="meta">No figures in this turn.</p>'
    span = max(max(ms for _, _, ms, _ in rows) * 1.15, 1.0)
    height = _TOP + len(rows) * _ROW + 4
    parts: list[str] = []
    step = _step(span)
    tick = 0.0
    while tick <= span:
        x = _LEFT + tick / span * _PLOT
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP - 4}" y2="{height}" class="grid"/>'
            f'<text x="{x:.1f}" y="{_TOP - 6}" class="axis">{tick:g} ms</text>'
        )
        tick += step
    for i, (heading, tip, ms, colour) in enumerate(rows):
        y = _TOP + i * _ROW
        width = max(ms / span * _PLOT, 1.5)
        parts.append(
            f'<g class="bar"><text x="{_LEFT - 6}" y="{y + 13}" class="bar-head">{_e(heading)}'
            f'</text><rect x="{_LEFT}" y="{y + 3}" width="{width:.1f}" height="{_ROW - 6}" '
            f'fill="{colour}" rx="2"/><text x="{_LEFT + width + 4:.1f}" y="{y + 13}" '
            f'class="bar-value">{ms:.1f} ms</text><title>{_e(tip)}</title></g>'
        )
    return (
        f'<svg class="waterfall" xmlns="http://www.w3.org/2000/svg" width="{_LEFT + _PLOT + 70}" '
        f'height="{height}" viewBox="0 0 {_LEFT + _PLOT + 70} {height}" role="img" '
        f'aria-label="turn {turn.index} waterfall">{"".join(parts)}</svg>'
    )


def waterfalls_html(turns: Sequence[Turn]) -> str:
    """One captioned waterfall per turn (nothing for a session without turns)."""
    figures = "".join(
        f'<figure class="turn-waterfall" data-turn="{turn.index}"><figcaption>turn '
        f"{turn.index} ({_e(turn.source)}): "
        + (
            f"answered in {turn.answered_ms:.1f} ms"
            if turn.answered_ms is not None
            else "no answer"
        )
        + (" · interrupted" if turn.interrupted else "")
        + f"</figcaption>{waterfall_svg(turn)}</figure>"
        for turn in turns
    )
    return f'<div class="waterfalls">{figures}</div>' if figures else ""
