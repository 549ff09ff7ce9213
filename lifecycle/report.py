"""The HTML session timeline: one self-contained page drawn from a session trace.

:func:`render_html` turns :class:`~lifecycle.records.SessionRecord` snapshots and their
:class:`~lifecycle.turns.Turn` figures into one HTML string with inline CSS, inline SVG and
a small inline script (hover details, a status line); nothing is fetched, so the page works
offline and from a file. Per session: the client's state as coloured bands over time, one
lane each for the user, the LLM, the TTS, the bot's speech, function calls, the bot's
metrics and transport events, and each turn's latency drawn as a bracket from the end of
the user's input to the bot's answer, labelled; every shape has its details as an SVG
``<title>`` (the script shows them in a panel on hover), and every turn has a waterfall of
its own figures on an axis of the turn's length (:mod:`lifecycle.report_waterfall`). Turn
labels are placed so that they never overlap (a turn too close to the previous one gets its
number only, or no label; its bracket and tooltip stay). Tooltips use one naming scheme: the
event's name as the API registers it (``on_bot_llm_started``), the client's call for its own
actions (``send_text()``), ``state``/``transition`` for the lifecycle, and the
:class:`~lifecycle.turns.Turn` field names for turn figures; times are ``+N ms`` from the
session's start, durations ``for N ms``. The page is as bounded as the trace it is drawn from,
and every string that came from the bot or the user is escaped. No I/O.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Final

from lifecycle.records import SessionRecord, TraceEntry
from lifecycle.report_waterfall import waterfalls_html
from lifecycle.states import State
from lifecycle.timeline import SEND_TEXT, USER_AUDIO, Mark
from lifecycle.turns import Turn

__all__ = ["LANE_TITLES", "render_html"]

LANE_TITLES: Final = (
    ("user", "User"),
    ("llm", "LLM"),
    ("tts", "TTS"),
    ("bot", "Bot speech"),
    ("function", "Function calls"),
    ("metrics", "Bot metrics"),
    ("transport", "Transport"),
)
"""The lanes of a session's timeline, top to bottom: (lane id, heading)."""

_NONE: Final = "-"  # a figure that did not happen
_LEFT: Final = 120  # px for the lane headings
_PLOT: Final = 1040  # px for the time axis
_ROW: Final = 30  # px per lane
_TOP: Final = 24  # px for the time axis labels
_STATE_COLOURS: Final = {
    State.IDLE: "#e0e0e0",
    State.AUTHENTICATING: "#ffe0b2",
    State.AUTHENTICATED: "#fff3c4",
    State.CONNECTING: "#d1c4e9",
    State.CONNECTED: "#bbdefb",
    State.READY: "#c8e6c9",
    State.DISCONNECTING: "#ffcdd2",
    State.DISCONNECTED: "#eeeeee",
}
_LANE_COLOURS: Final = {
    "user": "#1e88e5",
    "llm": "#8e24aa",
    "tts": "#f4511e",
    "bot": "#43a047",
    "function": "#6d4c41",
    "metrics": "#546e7a",
    "transport": "#37474f",
    "error": "#c62828",
}
_SPANS: Final = (  # (lane, opening event, closing event)
    ("user", "on_user_started_speaking", "on_user_stopped_speaking"),
    ("llm", "on_bot_llm_started", "on_bot_llm_stopped"),
    ("tts", "on_bot_tts_started", "on_bot_tts_stopped"),
    ("bot", "on_bot_started_speaking", "on_bot_stopped_speaking"),
    ("function", "on_llm_function_call_in_progress", "on_llm_function_call_stopped"),
)
_SPAN_EVENTS: Final = frozenset(name for _, start, stop in _SPANS for name in (start, stop))
_CLIENT_ACTIONS: Final = {SEND_TEXT: "send_text()", USER_AUDIO: "send_audio()"}
_LABEL_CHAR_PX: Final = 7.0  # at least the width of one character of a turn label (11 px, bold)
_LABEL_ROWS: Final = (30.0, 48.0)  # baselines of the turn labels below the turns row's top
_TURN_FIGURES: Final = (
    "answered_ms",
    "llm_first_ms",
    "tts_first_ms",
    "audio_first_ms",
    "bot_speaking_ms",
)


def _asset(name: str) -> str:
    return resources.files("lifecycle").joinpath("report_assets", name).read_text("utf-8")


def _e(text: object) -> str:
    """``text`` escaped for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def _iso(wall: float) -> str:
    stamp = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _ms(value: float | None) -> str:
    return _NONE if value is None else f"{value:.1f}"


class _Scale:
    """Monotonic seconds -> x pixels for one session."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.span = max(end - start, 1e-3)

    def x(self, at: float) -> float:
        return _LEFT + max(0.0, min(1.0, (at - self.start) / self.span)) * _PLOT

    def rel_ms(self, at: float) -> float:
        return (at - self.start) * 1000


def _session_end(record: SessionRecord) -> float:
    ends = [e.at for e in record.entries] + [m.end for m in record.marks]
    return max(ends, default=record.started_at)


def _rect(x1: float, x2: float, y: float, h: float, cls: str, colour: str, tip: str) -> str:
    width = max(x2 - x1, 2.0)
    return (
        f'<g class="{cls}"><rect x="{x1:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
        f'fill="{colour}" rx="2"/><title>{_e(tip)}</title></g>'
    )


def _dot(x: float, y: float, cls: str, colour: str, tip: str) -> str:
    return (
        f'<g class="{cls}"><path d="M{x:.1f} {y - 6:.1f} l5 6 l-5 6 l-5 -6 z" fill="{colour}"/>'
        f"<title>{_e(tip)}</title></g>"
    )


def _name(mark_name: str) -> str:
    """A mark's name in the tooltips' scheme: the event's API name, or the client's call."""
    return _CLIENT_ACTIONS.get(mark_name, mark_name)


def _mark_tip(mark: Mark, scale: _Scale) -> str:
    when = f"+{scale.rel_ms(mark.at):.1f} ms"
    if mark.end > mark.at:
        when += f" for {(mark.end - mark.at) * 1000:.1f} ms"
    tip = f"{_name(mark.name)} {when}"
    if mark.count > 1:
        tip += f" ({mark.count} events)"
    if mark.text:
        tip += f": {mark.text}"
    if mark.values:
        tip += ": " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in mark.values.items())
    return tip


def _spans(record: SessionRecord, scale: _Scale, end: float, lane_y: Mapping[str, float]) -> str:
    parts: list[str] = []
    for lane, opening, closing in _SPANS:
        opened: list[Mark] = []
        for mark in record.marks:
            if mark.name == opening:
                opened.append(mark)
            elif mark.name == closing and opened:
                start = opened.pop(0)
                parts.append(_span(lane, start, mark.at, scale, lane_y))
        parts += [_span(lane, start, end, scale, lane_y, open_=True) for start in opened]
    return "".join(parts)


def _span(
    lane: str,
    start: Mark,
    stop: float,
    scale: _Scale,
    lane_y: Mapping[str, float],
    open_: bool = False,
) -> str:
    tip = f"{_name(start.name)} +{scale.rel_ms(start.at):.1f} ms"
    tip += " (no end seen)" if open_ else f" for {(stop - start.at) * 1000:.1f} ms"
    if start.text:
        tip += f": {start.text}"
    y = lane_y[lane] + 5
    return _rect(scale.x(start.at), scale.x(stop), y, _ROW - 10, "span", "#00000018", tip)


def _marks(record: SessionRecord, scale: _Scale, lane_y: Mapping[str, float]) -> str:
    parts: list[str] = []
    for mark in record.marks:
        lane = "transport" if mark.lane == "error" else mark.lane
        y = lane_y[lane]
        colour = _LANE_COLOURS[mark.lane]
        tip = _mark_tip(mark, scale)
        if mark.end > mark.at or mark.count > 1:
            parts.append(
                _rect(
                    scale.x(mark.at), scale.x(mark.end), y + 9, _ROW - 18, "mark run", colour, tip
                )
            )
        elif mark.name not in _SPAN_EVENTS or mark.lane == "function":
            parts.append(_dot(scale.x(mark.at), y + _ROW / 2, "mark point", colour, tip))
    return "".join(parts)


def _transport(record: SessionRecord, scale: _Scale, y: float) -> str:
    parts: list[str] = []
    for entry in record.entries:
        if entry.is_transition:
            parts.append(_tick(entry, scale, y))
        elif entry.kind in ("close", "error"):
            tip = f"transport {entry.kind} +{scale.rel_ms(entry.at):.1f} ms: {entry.detail or ''}"
            parts.append(_dot(scale.x(entry.at), y + _ROW / 2, "mark point", "#c62828", tip))
    return "".join(parts)


def _tick(entry: TraceEntry, scale: _Scale, y: float) -> str:
    assert entry.source is not None and entry.dest is not None
    x = scale.x(entry.at)
    change = f"{entry.source.value} → {entry.dest.value}"
    tip = f"transition {entry.trigger} +{scale.rel_ms(entry.at):.1f} ms: {change}"
    if entry.reason:
        tip += f" ({entry.reason})"
    return (
        f'<g class="mark tick"><line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 6:.1f}" '
        f'y2="{y + _ROW - 6:.1f}" stroke="#37474f" stroke-width="2"/><title>{_e(tip)}</title></g>'
    )


def _states(record: SessionRecord, scale: _Scale, end: float, y: float) -> str:
    transitions = [e for e in record.entries if e.is_transition]
    parts: list[str] = []
    for i, entry in enumerate(transitions):
        assert entry.dest is not None
        stop = transitions[i + 1].at if i + 1 < len(transitions) else end
        x1, x2 = scale.x(entry.at), scale.x(stop)
        since = f"+{scale.rel_ms(entry.at):.1f} ms"
        tip = f"state {entry.dest.value} {since} for {(stop - entry.at) * 1000:.1f} ms"
        label = ""
        if x2 - x1 > 8 * len(entry.dest.value):
            label = (
                f'<text x="{(x1 + x2) / 2:.1f}" y="{y + _ROW / 2 + 4:.1f}" '
                f'class="state-label">{_e(entry.dest.value)}</text>'
            )
        parts.append(
            f'<g class="state" data-state="{_e(entry.dest.value)}"><rect x="{x1:.1f}" '
            f'y="{y + 3:.1f}" width="{max(x2 - x1, 1.0):.1f}" height="{_ROW - 6}" '
            f'fill="{_STATE_COLOURS[entry.dest]}"/>{label}<title>{_e(tip)}</title></g>'
        )
    return "".join(parts)


class _LabelRows:
    """Places turn labels left to right in a few rows so that no two overlap."""

    def __init__(self, right_edge: float) -> None:
        self.right_edge = right_edge
        self.ends = [float("-inf")] * len(_LABEL_ROWS)

    def place(self, x: float, texts: Sequence[str]) -> tuple[float, float, str] | None:
        """(x, row offset, text) for the first text that fits in a row, else None."""
        for text in texts:
            width = len(text) * _LABEL_CHAR_PX
            left = max(min(x, self.right_edge - width), _LEFT)
            for row, end in enumerate(self.ends):
                if left >= end + 4:
                    self.ends[row] = left + width
                    return left, _LABEL_ROWS[row], text
        return None


def _turns(turns: Sequence[Turn], scale: _Scale, origin: float, y: float, bottom: float) -> str:
    parts: list[str] = []
    labels = _LabelRows(_LEFT + _PLOT + 18)
    for turn in sorted(turns, key=lambda t: t.started_at):
        anchor = origin + turn.started_at
        x1 = scale.x(anchor)
        answered = turn.answered_ms
        label = (
            f"turn {turn.index}: {_ms(answered)} ms"
            if answered is not None
            else f"turn {turn.index}: no answer"
        )
        parts.append(
            f'<line class="turn-anchor" x1="{x1:.1f}" x2="{x1:.1f}" y1="{y:.1f}" '
            f'y2="{bottom:.1f}" stroke="#1e88e5" stroke-dasharray="3 3"/>'
        )
        x2 = scale.x(anchor + (answered or 0) / 1000)
        ticks = "".join(
            f'<line x1="{scale.x(anchor + ms / 1000):.1f}" x2="{scale.x(anchor + ms / 1000):.1f}" '
            f'y1="{y + 8:.1f}" y2="{y + 20:.1f}" stroke="{colour}" stroke-width="2"/>'
            for ms, colour in (
                (turn.llm_first_ms, _LANE_COLOURS["llm"]),
                (turn.tts_first_ms, _LANE_COLOURS["tts"]),
                (turn.audio_first_ms, _LANE_COLOURS["bot"]),
                (turn.bot_speaking_ms, _LANE_COLOURS["bot"]),
            )
            if ms is not None
        )
        placed = labels.place(x1 + 3, (label, str(turn.index)))
        text = (
            f'<text class="turn-label" x="{placed[0]:.1f}" y="{y + placed[1]:.1f}">'
            f"{_e(placed[2])}</text>"
            if placed is not None
            else ""
        )
        parts.append(_barge_in(turn, scale, origin, y))
        parts.append(
            f'<g class="turn" data-turn="{turn.index}"><path d="M{x1:.1f} {y + 8:.1f} v6 '
            f'H{max(x2, x1 + 2):.1f} v-6" fill="none" stroke="#0d47a1" stroke-width="2"/>{ticks}'
            f"{text}<title>{_e(_turn_tip(turn, scale.rel_ms(anchor)))}</title></g>"
        )
    return "".join(parts)


def _barge_in(turn: Turn, scale: _Scale, origin: float, y: float) -> str:
    """A red bracket from the start of input that talked over the bot to the bot's stop."""
    if turn.barge_in_at is None:
        return ""
    start = origin + turn.barge_in_at
    x1 = scale.x(start)
    stopped = turn.barge_in_to_bot_stopped_ms
    x2 = scale.x(start + (stopped or 0) / 1000)
    return (
        f'<g class="barge-in" data-turn="{turn.index}"><path d="M{x1:.1f} {y + 2:.1f} v-6 '
        f'H{max(x2, x1 + 2):.1f} v6" fill="none" stroke="#e53935" stroke-width="2"/>'
        f"<title>{_e(_barge_in_tip(turn))}</title></g>"
    )


def _barge_in_tip(turn: Turn) -> str:
    """The barge-in figures by their :class:`Turn` field names (the tooltips' scheme)."""
    audio = turn.bot_audio_after_barge_in_s
    return (
        f"turn {turn.index} ({turn.source}) barge-in: barge_in_to_interrupted_ms "
        f"{_ms(turn.barge_in_to_interrupted_ms)} · barge_in_to_bot_stopped_ms "
        f"{_ms(turn.barge_in_to_bot_stopped_ms)} · bot_audio_after_barge_in_s "
        f"{_NONE if audio is None else f'{audio:.2f}'}"
    )


def _barge_in_text(turn: Turn) -> str:
    if turn.barge_in_at is None:
        return _NONE
    audio = turn.bot_audio_after_barge_in_s
    return (
        f"interrupted {_ms(turn.barge_in_to_interrupted_ms)} · stopped "
        f"{_ms(turn.barge_in_to_bot_stopped_ms)} · audio after "
        f"{_NONE if audio is None else f'{audio:.2f} s'}"
    )


def _turn_tip(turn: Turn, at_ms: float) -> str:
    figures = " · ".join(f"{name} {_ms(getattr(turn, name))}" for name in _TURN_FIGURES)
    tip = f"turn {turn.index} ({turn.source}) +{at_ms:.1f} ms: {figures}"
    if turn.ttfb:
        tip += " · ttfb " + ", ".join(f"{k} {v:.1f}" for k, v in turn.ttfb.items())
    if turn.function_calls:
        tip += " · function_calls " + ", ".join(turn.function_calls)
    if turn.interrupted:
        tip += " · interrupted"
    if turn.user_text:
        tip += f"\nuser: {turn.user_text}"
    if turn.bot_text:
        tip += f"\nbot: {turn.bot_text}"
    return tip


def _axis(scale: _Scale, height: float) -> str:
    span_ms = scale.span * 1000
    step = 1.0
    while span_ms / step > 10:
        step *= 2 if str(step)[0] in "15" else 2.5
    parts: list[str] = []
    tick = 0.0
    while tick <= span_ms + 1e-9:
        x = _LEFT + tick / span_ms * _PLOT
        label = f"{tick / 1000:.2f} s" if span_ms >= 2000 else f"{tick:.0f} ms"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP - 4}" y2="{height:.1f}" class="grid"/>'
            f'<text x="{x:.1f}" y="{_TOP - 8}" class="axis">{label}</text>'
        )
        tick += step
    return "".join(parts)


def _session_svg(record: SessionRecord, turns: Sequence[Turn]) -> str:
    end = _session_end(record)
    scale = _Scale(record.started_at, end)
    rows = [("state", "State"), ("turns", "Turns"), *LANE_TITLES]
    lane_y: dict[str, float] = {lane: _TOP + i * _ROW for i, (lane, _) in enumerate(rows)}
    # The turns row is twice as tall (bracket and label).
    for lane in list(lane_y)[2:]:
        lane_y[lane] += _ROW
    height = lane_y["transport"] + _ROW + 6
    heads = "".join(
        f'<g class="lane" data-lane="{lane}"><rect x="0" y="{lane_y[lane]}" '
        f'width="{_LEFT + _PLOT + 10}" height="{2 * _ROW if lane == "turns" else _ROW}" '
        f'class="lane-bg{i % 2}"/><text x="8" y="{lane_y[lane] + _ROW / 2 + 4}" '
        f'class="lane-title">{title}</text></g>'
        for i, (lane, title) in enumerate(rows)
    )
    body = (
        _axis(scale, height)
        + _states(record, scale, end, lane_y["state"])
        + _spans(record, scale, end, lane_y)
        + _marks(record, scale, lane_y)
        + _transport(record, scale, lane_y["transport"])
        + _turns(turns, scale, record.started_at, lane_y["turns"], height)
    )
    return (
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{_LEFT + _PLOT + 20}" '
        f'height="{height:.0f}" viewBox="0 0 {_LEFT + _PLOT + 20} {height:.0f}" role="img" '
        f'aria-label="session {record.session_id} timeline">{heads}{body}</svg>'
    )


def _turn_table(turns: Sequence[Turn]) -> str:
    if not turns:
        return '<p class="no-turns">No turns in this session.</p>'
    rows = "".join(
        '<tr class="turn-row">'
        f"<td>{t.index}</td><td>{_e(t.source)}</td><td>{t.started_at * 1000:.1f}</td>"
        f"<td>{_ms(t.llm_first_ms)}</td><td>{_ms(t.tts_first_ms)}</td>"
        f"<td>{_ms(t.audio_first_ms)}</td><td>{_ms(t.bot_speaking_ms)}</td>"
        f"<td>{_e(', '.join(f'{k} {v:.1f}' for k, v in t.ttfb.items()) or _NONE)}</td>"
        f"<td>{_e(', '.join(t.function_calls) or _NONE)}{_cut(t)}</td>"
        f'<td class="barge-in">{_e(_barge_in_text(t))}</td>'
        f'<td class="text">{_e(t.user_text or "")}</td><td class="text">{_e(t.bot_text or "")}</td>'
        "</tr>"
        for t in turns
    )
    return (
        '<table class="turns"><thead><tr><th>turn</th><th>input</th><th>at ms</th>'
        "<th>LLM ms</th><th>TTS ms</th><th>audio ms</th><th>speaking ms</th>"
        "<th>bot ttfb ms</th><th>calls</th><th>barge-in ms</th><th>user</th><th>bot</th>"
        "</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _cut(turn: Turn) -> str:
    return " · interrupted" if turn.interrupted else ""


def _session_section(record: SessionRecord, turns: Sequence[Turn]) -> str:
    duration = (_session_end(record) - record.started_at) * 1000
    notes = f"{len(record.entries)} entries, {len(record.marks)} timeline marks"
    if record.dropped:
        notes += f", {record.dropped} older notes dropped"
    return (
        f'<section class="session" data-session="{record.session_id}">'
        f"<h2>Session {record.session_id}</h2>"
        f'<p class="meta">started {_e(_iso(record.started_wall))} · {duration:.1f} ms · '
        f"{len(turns)} turns · {_e(notes)}</p>"
        f'<div class="scroll">{_session_svg(record, turns)}</div>{_turn_table(turns)}'
        f"{waterfalls_html(turns)}</section>"
    )


def render_html(
    records: Sequence[SessionRecord],
    turns: Iterable[Turn],
    *,
    title: str = "pipecat-lifecycle session timeline",
) -> str:
    """The page for ``records`` (oldest first) and their ``turns``: one HTML string."""
    by_session: dict[int, list[Turn]] = {}
    for turn in turns:
        by_session.setdefault(turn.session_id, []).append(turn)
    sessions = "".join(_session_section(r, by_session.get(r.session_id, [])) for r in records)
    if not records:
        sessions = '<p class="empty">No sessions recorded.</p>'
    legend = "".join(
        f'<span class="key"><i style="background:{_LANE_COLOURS[lane]}"></i>{heading}</span>'
        for lane, heading in LANE_TITLES
    ) + "".join(
        f'<span class="key"><i style="background:{colour}"></i>{state.value}</span>'
        for state, colour in _STATE_COLOURS.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head>"
        f"<body><header><h1>{_e(title)}</h1>"
        f'<p class="meta">generated {_e(_iso(time.time()))} · {len(records)} sessions · '
        "times from each session's first traced moment; a turn's bracket runs from the end "
        "of the user's input to the bot's answer (speech, else audio, else text)</p>"
        f'<p class="legend">{legend}</p><p id="status" class="meta">static view</p>'
        f'<aside id="details" hidden></aside></header><main>{sessions}</main>'
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )
