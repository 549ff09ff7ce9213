"""Turns a client's events into printed lines: the conversation, readably, or JSON lines.

Text mode shows what a person wants to follow: transitions, bot-ready, what the user said
(final transcripts), what the bot answered (its LLM reply, or its spoken output when it
has no LLM text), function calls with their results, interruptions and errors. JSON mode
prints one object per event (``{"event", "ms", ...fields}``), the typed events with their
fields. Audio frames and audio levels are never printed: they are not conversation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from lifecycle.cli.output import Output, compact
from lifecycle.dispatch import ClientEvent
from lifecycle.events import (
    BotOutput,
    BotText,
    FunctionCall,
    FunctionCallStopped,
    UserInput,
    UserTranscript,
)
from lifecycle.rtvi import BotReadyData, RTVIError

SILENT: Final = frozenset(
    {
        "on_bot_audio",
        "on_bot_tts_audio",
        "on_user_audio_level",
        "on_bot_audio_level",
        "on_transport_state_changed",
        "on_connected",
        "on_bot_started",
        "on_disconnected",
    }
)
"""Events never printed (media, levels, and duplicates of a transition)."""

_TEXT_LIMIT: Final = 2000
"""Characters of one bot or user text printed (the rest is cut: a line stays readable)."""
_OPEN_CALLS_LIMIT: Final = 256
"""Function calls remembered until their result, so a bot can't grow the printer's memory."""

_CALL_EVENTS: Final = frozenset({"on_llm_function_call_in_progress", "on_llm_function_call"})
_LEGACY_NAMES: Final = {
    "on_server_message": "server-message",
    "on_unhandled_message": "message",
    "on_message_error": "error-response",
    "on_bot_disconnected": "bot-disconnected",
}
"""JSON event names kept from before the typed events (scripts rely on them)."""


def clip(text: str) -> str:
    """``text`` cut to a readable length (bot text is bot-controlled and unbounded)."""
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def json_name(name: str) -> str:
    """``on_bot_llm_text`` -> ``bot-llm-text`` (the JSON ``event`` of a typed event)."""
    return _LEGACY_NAMES.get(name) or name.removeprefix("on_").replace("_", "-")


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings to dicts, tuples to lists (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def fields_of(data: Any) -> dict[str, Any]:
    """The JSON fields of an event's argument: a typed event's fields (``raw`` left out)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return {
            f.name: _plain(getattr(data, f.name))
            for f in dataclasses.fields(data)
            if f.name != "raw"
        }
    if data is None:
        return {}
    return {"data": _plain(data)}


class ConversationPrinter:
    """Prints each :class:`~lifecycle.dispatch.ClientEvent` of a session on ``out``."""

    def __init__(self, out: Output, *, answers_calls: bool = True) -> None:
        """``answers_calls=False``: no function call handler here; each call says so."""
        self.out = out
        self.answers_calls = answers_calls
        self._unanswered_said = False
        self._llm_text: list[str] = []
        self._llm_chars = 0
        self._bot_spoke_this_turn = False
        self._user_input_seen = False
        self._llm_text_seen = False
        self._calls: dict[str | None, str] = {}
        self._text: Mapping[str, Callable[[Any], str | None]] = {
            "on_bot_ready": self._bot_ready,
            "on_server_message": lambda data: f"server-message {compact(data)}",
            "on_unhandled_message": self._unhandled,
            "on_message_error": lambda msg: f"error-response {compact(msg.get('data'))}",
            "on_error": self._error,
            "on_bot_disconnected": lambda _: "the bot ended the session",
            "on_user_input": self._user_input,
            "on_user_transcript": self._user_transcript,
            "on_bot_llm_started": self._llm_started,
            "on_bot_llm_text": self._llm_token,
            "on_llm_raw_text": self._raw_token,
            "on_bot_llm_stopped": self._llm_stopped,
            "on_bot_output": self._bot_output,
            "on_bot_interrupted": lambda _: "bot interrupted",
            "on_llm_function_call_in_progress": self._call,
            "on_llm_function_call": self._call,
            "on_llm_function_call_stopped": self._call_stopped,
        }

    def show(self, event: ClientEvent) -> None:
        """Print one event (text mode may print nothing for it)."""
        if event.name == "on_transition":
            self.out.transition(event.data)
            return
        if event.name in SILENT:
            return
        text = self._describe(event)
        if self.out.json_mode:
            self.out.emit(json_name(event.name), "", at=event.at, **self._json_fields(event))
        elif text is not None:
            self.out.emit(json_name(event.name), text, at=event.at)

    def _describe(self, event: ClientEvent) -> str | None:
        describe = self._text.get(event.name)
        return describe(event.data) if describe is not None else None

    def _json_fields(self, event: ClientEvent) -> dict[str, Any]:
        data = event.data
        if isinstance(data, BotReadyData):
            return {"data": dict(data.raw)}
        if isinstance(data, RTVIError):
            return {"message": data.message, "fatal": data.fatal}
        if event.name == "on_unhandled_message":
            return {"type": data.get("type"), "message": _plain(data)}
        if event.name in _CALL_EVENTS and not self.answers_calls:
            return {**fields_of(data), "answered": False}
        if event.name == "on_message_error":
            return {"message": _plain(data)}
        return fields_of(data)

    # ---------------------------------------------------------------- text of each event

    def _bot_ready(self, data: BotReadyData) -> str:
        about = data.about
        who = " ".join(str(about[k]) for k in ("library", "library_version") if k in about)
        caps = f", capabilities {compact(data.capabilities)}" if data.capabilities else ""
        return f"bot-ready: RTVI {data.version or '?'}" + (f", {who}" if who else "") + caps

    def _unhandled(self, message: Mapping[str, Any]) -> str:
        return f"{message.get('type')} {compact(message.get('data'))}"

    def _error(self, error: RTVIError) -> str:
        return f"{'fatal error' if error.fatal else 'error'}: {error.message}"

    def _new_turn(self) -> None:
        self._bot_spoke_this_turn = False

    def _user_input(self, data: UserInput) -> str | None:
        self._user_input_seen = True
        if data.final is False or not data.text:
            return None
        self._new_turn()
        if data.input_type == "chat":
            return None  # the bot echoes our send-text: the "sent text" line said it already
        return f"user: {clip(data.text)}"

    def _user_transcript(self, data: UserTranscript) -> str | None:
        # A 2.2 bot sends user-input too, for the same words: print those once.
        if self._user_input_seen or data.final is False or not data.text:
            return None
        self._new_turn()
        return f"user: {clip(data.text)}"

    def _llm_started(self, _: Any) -> None:
        self._llm_text.clear()
        self._llm_chars = 0

    def _llm_token(self, data: BotText) -> None:
        self._llm_text_seen = True
        self._add_token(data.text)

    def _raw_token(self, data: BotText) -> None:
        # llm-raw-text carries the same tokens as bot-llm-text: use it only without those.
        if not self._llm_text_seen:
            self._add_token(data.text)

    def _add_token(self, text: str | None) -> None:
        # Past the printable length the rest of the reply is not kept (no stop may ever come).
        if text and self._llm_chars <= _TEXT_LIMIT:
            self._llm_text.append(text)
            self._llm_chars += len(text)

    def _llm_stopped(self, _: Any) -> str | None:
        text = "".join(self._llm_text).strip()
        self._llm_text.clear()
        self._llm_chars = 0
        if not text:
            return None
        self._bot_spoke_this_turn = True
        return f"bot: {clip(text)}"

    def _bot_output(self, data: BotOutput) -> str | None:
        # The LLM reply of this turn was printed already; bot-output repeats it as spoken.
        if self._bot_spoke_this_turn or not data.text or data.output_type == "word":
            return None
        return f"bot: {clip(data.text)}"

    def _call(self, data: FunctionCall) -> str | None:
        if data.tool_call_id in self._calls:
            return None  # the deprecated llm-function-call repeats an in-progress one
        name = data.function_name or "(name not reported)"
        if len(self._calls) >= _OPEN_CALLS_LIMIT:
            del self._calls[next(iter(self._calls))]  # the oldest call that never stopped
        self._calls[data.tool_call_id] = name
        line = f"function call {name}({compact(_plain(data.arguments))})"
        if self.answers_calls:
            return line
        if self._unanswered_said:
            return f"{line} (not answered here)"
        self._unanswered_said = True
        return (
            f"{line}: not answered here (connect has no function call handlers; a bot "
            "waiting for the client's result gets none, a server-side function runs as usual)"
        )

    def _call_stopped(self, data: FunctionCallStopped) -> str:
        known = self._calls.pop(data.tool_call_id, None)
        name = data.function_name or known or "(unnamed)"
        if data.cancelled:
            return f"function call {name} cancelled"
        return f"function result {name} -> {compact(_plain(data.result))}"
