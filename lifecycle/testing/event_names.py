"""The event names ``Conversation`` takes: the client's, pipecat.evals', and RTVI types.

``Conversation.expect("on_bot_started_speaking")`` is the client's name;
pipecat.evals' scripted-scenario names (``"bot_started_speaking"``, ``"llm_started"``,
``"function_call"``...), the client's names without ``on_``, and RTVI message types
(``"bot-llm-text"``) are accepted too. :func:`resolve_event_name` maps them; any other name
is a ``ValueError`` with the closest known names ("did you mean").
"""

from __future__ import annotations

import difflib
from typing import Final

from lifecycle.events import EVENT_NAMES, event_for_type

__all__ = ["EVALS_EVENTS", "resolve_event_name"]

EVALS_EVENTS: Final = {
    "user_started_speaking": "on_user_started_speaking",
    "user_stopped_speaking": "on_user_stopped_speaking",
    "vad_user_started_speaking": "on_vad_user_started_speaking",
    "vad_user_stopped_speaking": "on_vad_user_stopped_speaking",
    "user_transcription": "on_user_transcript",
    "bot_started_speaking": "on_bot_started_speaking",
    "bot_stopped_speaking": "on_bot_stopped_speaking",
    "bot_interrupted": "on_bot_interrupted",
    "llm_started": "on_bot_llm_started",
    "llm_response": "on_bot_output",
    "response": "on_bot_output",
    "tts_response": "on_bot_tts_text",
    "llm_marker": "on_bot_llm_marker",
    "function_call": "on_llm_function_call_in_progress",
    "function_call_stopped": "on_llm_function_call_stopped",
}
"""pipecat.evals' event names (its ``events.py``, 1.14) -> the client's event names. Its
``llm_response``/``response`` (the reply's text) are the bot's spoken output here."""

_EVAL_TRANSPORT_ONLY: Final = frozenset({"image"})
"""pipecat.evals events that only its own eval transport produces."""
_BY_TYPE: Final = {
    "user_backchannel": ("on_user_input", "u.input_type"),
    "bot_backchannel": ("on_bot_output", "o.output_type"),
}
"""pipecat.evals events that are one kind of a client event (told apart by a predicate)."""


def resolve_event_name(name: str) -> str:
    """The client's event name for ``name`` (see the module docstring), else ``ValueError``.

    The error names the closest known names, or says when the event exists only in
    pipecat.evals' eval transport.
    """
    __tracebackhide__ = True  # pytest: a bad name is the caller's line, not this one
    if name in EVENT_NAMES:
        return name
    if not isinstance(name, str):
        raise TypeError(f"an event name is a string, not {type(name).__name__}")
    mapped = EVALS_EVENTS.get(name) or event_for_type(name)
    if mapped is None and f"on_{name}" in EVENT_NAMES:
        mapped = f"on_{name}"
    if mapped is not None:
        return mapped
    if name in _BY_TYPE:
        event, field = _BY_TYPE[name]
        var = field.split(".")[0]
        raise ValueError(
            f"{name!r} is a {event} of type backchannel: expect({event!r}, "
            f"predicate=lambda {var}: {field} == 'backchannel')"
        )
    if name in _EVAL_TRANSPORT_ONLY:
        raise ValueError(
            f"{name!r} is an event only pipecat.evals' own eval transport produces; a bot "
            "over its production transport sends no such RTVI message"
        )
    known = sorted(EVENT_NAMES | EVALS_EVENTS.keys())
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:  # nothing near: still the nearest few
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.0)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?"
    raise ValueError(
        f"unknown event {name!r}{hint} (the client's names, e.g. 'on_bot_output', as in "
        "lifecycle.EVENT_NAMES, or pipecat.evals' names, e.g. 'bot_started_speaking')"
    )
