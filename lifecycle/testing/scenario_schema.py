"""The keys and events of pipecat.evals 1.14's scenario files, and what this runner does with each.

One table per level of the file. A key outside its table is "unknown" with a "did you
mean" when a known key is close; a key pipecat.evals knows at another level, or only in
files this runner does not run (manifests), is named as such, never "unknown".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

__all__ = [
    "CALL_KEYS",
    "CHECK_FROM",
    "DTMF_KEYS",
    "EVAL_TRANSPORT_EVENTS",
    "EVENTS",
    "EXPECT_KEYS",
    "FILE_KEYS",
    "FUNCTION_CALL_EVENTS",
    "JUDGE_EVAL_KEYS",
    "JUDGE_KEYS",
    "MANIFEST_KEYS",
    "MARKER_KINDS",
    "SCENARIO_KEYS",
    "SEND_AFTER_KEYS",
    "SIMULATION_KEYS",
    "SPEECH_KEYS",
    "TRANSCRIPTION_KEYS",
    "TURN_KEYS",
    "USER_KEYS",
    "did_you_mean",
]

EVENTS: Final = frozenset(
    {
        "user_started_speaking",
        "user_stopped_speaking",
        "vad_user_started_speaking",
        "vad_user_stopped_speaking",
        "user_transcription",
        "bot_started_speaking",
        "bot_stopped_speaking",
        "bot_interrupted",
        "llm_started",
        "llm_response",
        "llm_marker",
        "tts_response",
        "response",
        "function_call",
        "function_call_stopped",
        "image",
        "bot_backchannel",
        "user_backchannel",
    }
)
"""Every scenario event pipecat.evals 1.14 names (its ``script.py`` docstring and ``events.py``)."""

EVAL_TRANSPORT_EVENTS: Final = frozenset({"image"})
"""Events only pipecat.evals' own eval transport produces (``eval-bot-image``)."""
FUNCTION_CALL_EVENTS: Final = frozenset({"function_call", "function_call_stopped"})
CHECK_FROM: Final = ("previous", "turn_start")
MARKER_KINDS: Final = ("complete", "short", "long", "incomplete")
DTMF_KEYS: Final = frozenset("0123456789*#")

# A scenario's keys; each may also sit at the top of a file as every scenario's default.
SCENARIO_KEYS: Final = frozenset(
    {"name", "turns", "context", "user", "judge", "stop_on_failure", "trigger_disconnect"}
    | {"runs", "metrics"}
)
SIMULATION_KEYS: Final = frozenset(
    {"persona", "goal", "success", "max_turns", "max_duration_s", "max_silence_s", "simulator"}
    | {"max_model_calls"}
)
FILE_KEYS: Final = SCENARIO_KEYS | SIMULATION_KEYS | {"scenarios"}
MANIFEST_KEYS: Final = frozenset(
    {"suite", "bots_dir", "scenarios_dir", "concurrency", "runs_dir", "record", "spawn"}
)
TURN_KEYS: Final = frozenset(
    {"user", "dtmf", "audio", "image", "expect", "send_after", "noise"}  # noise: this project's
)
EXPECT_KEYS: Final = frozenset(
    {"event", "within_ms", "text_contains", "text_excludes", "calls", "name", "args", "eval"}
    | {"marker", "marker_first", "markers", "text_after", "check_from", "absent"}
)
CALL_KEYS: Final = frozenset({"name", "args"})
SEND_AFTER_KEYS: Final = frozenset({"event", "delay_ms"})
USER_KEYS: Final = frozenset({"modality", "speech", "noise"})  # noise: this project's
SPEECH_KEYS: Final = frozenset(
    {"service", "voice", "language", "speed", "sample_rate", "model", "api_key", "factory"}
)
JUDGE_KEYS: Final = frozenset({"modality", "eval", "transcription"})
JUDGE_EVAL_KEYS: Final = frozenset(
    {"service", "model", "endpoint", "extra", "factory", "explainer", "explain_below"}
    | {"allow_continue", "api_key_env"}
)
TRANSCRIPTION_KEYS: Final = frozenset({"service", "model", "language", "padding_secs", "factory"})

_EVERY_KEY: Final = (
    FILE_KEYS
    | MANIFEST_KEYS
    | TURN_KEYS
    | EXPECT_KEYS
    | SEND_AFTER_KEYS
    | USER_KEYS
    | SPEECH_KEYS
    | JUDGE_KEYS
    | JUDGE_EVAL_KEYS
    | TRANSCRIPTION_KEYS
)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, where: str, allowed: Iterable[str]) -> str:
    """The problem of a key not allowed ``where``: elsewhere in the format, or unknown."""
    allowed = frozenset(allowed)
    if key in _EVERY_KEY:
        return f"not a key of {where} (pipecat.evals has it elsewhere){did_you_mean(key, allowed)}"
    return f"unknown key in {where}{did_you_mean(key, allowed)}"
