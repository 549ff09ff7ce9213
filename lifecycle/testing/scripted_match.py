"""pipecat.evals' matcher checks on one event (``matcher.py``): text, calls, markers.

Also what a production bot sends only when asked (opt-in events and their settings), and
the messages naming those settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lifecycle.testing.scenario_model import Call, Expectation
from lifecycle.testing.scenario_schema import FUNCTION_CALL_EVENTS

SHOWN: Final = 120

OPT_IN: Final = {
    # event: (what shows the bot would have sent it by now, the setting that turns it on)
    "vad_user_started_speaking": (
        "user_started_speaking",
        "RTVIObserverParams(vad_user_speaking_enabled=True)",
    ),
    "vad_user_stopped_speaking": (
        "user_stopped_speaking",
        "RTVIObserverParams(vad_user_speaking_enabled=True)",
    ),
    "llm_marker": ("llm_response", "RTVIObserverParams(bot_llm_marker_enabled=True)"),
}
NAMES_SETTING: Final = (
    "the bot reports function calls without names (Pipecat's default "
    "function_call_report_level); set RTVIObserverParams(function_call_report_level="
    "{'*': RTVIFunctionCallReportLevel.NAME}) on the bot (FULL to check args:)"
)
ARGS_SETTING: Final = (
    "the bot reports function calls without arguments; set RTVIObserverParams("
    "function_call_report_level={'*': RTVIFunctionCallReportLevel.FULL}) on the bot"
)


class Failed(Exception):
    """An expectation failed; the message says why."""


def squash(text: str) -> str:
    return " ".join(text.split())


def contains(text: str, needle: str) -> bool:
    return squash(needle) in squash(text)


def event_text(item: Mapping[str, Any]) -> str:
    return str(item.get("text") or item.get("transcript") or "")


def call_matches(item: Mapping[str, Any], call: Call) -> bool:
    if call.name is not None and item.get("name") is None:
        raise Failed(NAMES_SETTING)
    if call.name is not None and item.get("name") != call.name:
        return False
    if call.args and not item.get("has_args"):
        raise Failed(ARGS_SETTING)
    actual = item.get("args") or {}
    return all(actual.get(k) == v for k, v in (call.args or {}).items())


def summary(item: Mapping[str, Any]) -> str:
    if item["type"] in FUNCTION_CALL_EVENTS:
        args = ", ".join(f"{k}={v}" for k, v in (item.get("args") or {}).items())
        return f"{item.get('name') or '?'}({args})"
    if item["type"] == "llm_marker":
        return f"{item.get('text')!r} ({item.get('kind') or 'no kind'})"
    return event_text(item)[:SHOWN]


def marker_format(item: Mapping[str, Any], exp: Expectation) -> str | None:
    """pipecat.evals' checks of the raw text an ``llm_marker`` carries."""
    if exp.marker_first is None and exp.markers is None and exp.text_after is None:
        return None
    raw: str = item.get("raw") or ""
    known: list[str] = item.get("markers") or []
    found = sorted((raw.find(m), m) for m in known if m in raw)
    count = sum(raw.count(m) for m in known)
    first_at, first = found[0] if found else (-1, None)
    excerpt = repr(raw[:80])
    if exp.markers is not None and count != exp.markers:
        return f"raw text holds {count} marker(s), expected {exp.markers}: {excerpt}"
    if exp.marker_first is not None:
        is_first = first is not None and not raw[:first_at].strip()
        if is_first != exp.marker_first:
            return f"raw text {'starts' if is_first else 'does not start'} with a marker: {excerpt}"
    if exp.text_after is not None:
        if first is None:
            return f"raw text holds no marker to check text after: {excerpt}"
        has_after = bool(raw[first_at + len(first) :].strip())
        if has_after != exp.text_after:
            return f"raw text has {'text' if has_after else 'nothing'} after the marker: {excerpt}"
    return None
