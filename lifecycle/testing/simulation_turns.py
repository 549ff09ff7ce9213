"""What a simulated caller hears of the bot, and the conversation record it keeps.

:class:`Heard` turns the client's RTVI events into the bot's turns as pipecat.evals' persona
hears them (``persona.py``'s ``hear``): LLM text joined at ``bot-llm-stopped``, a response
given while a function call runs held and joined with the one after it. :class:`Transcript`
is pipecat.evals' conversation file (``conversation.py``), each message with its time.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from lifecycle.dispatch import ClientEvent

__all__ = ["Heard", "Transcript"]

MAX_TURN_TEXT: Final = 20_000  # characters of one bot turn kept (a flooding bot is cut)
MAX_MESSAGES: Final = 2_000  # conversation messages kept


class Heard:
    """The bot's side, as the persona hears it; :meth:`feed` each event in order."""

    WATCHED: Final = (
        "on_bot_llm_started",
        "on_bot_llm_text",
        "on_bot_llm_stopped",
        "on_bot_started_speaking",
        "on_bot_stopped_speaking",
        "on_user_stopped_speaking",
        "on_llm_function_call_in_progress",
        "on_llm_function_call",
        "on_llm_function_call_stopped",
        "on_disconnected",
        "on_bot_disconnected",
    )

    def __init__(self, *, audio: bool = False) -> None:
        self.audio = audio
        self._text: list[str] = []
        self._text_len = 0
        self._segments: list[str] = []
        self._calls = 0
        self._call_ids: deque[Any] = deque(maxlen=256)
        self._awaiting = False  # sent; text before the next bot-llm-started is stale
        self._first_pending = False
        self._speaking = False
        self._spoken = False  # audio: the bot has spoken since its turn began
        self._ready = False

    def feed(self, event: ClientEvent) -> tuple[str, dict[str, Any]] | None:
        """One event in; what happened that the run records, if anything.

        ``("ended", {})``, ``("first_token", {})`` (the first sign of the reply to the last
        send: its first LLM token in text, the bot starting to speak in audio),
        ``("heard_end", {})`` (audio: the bot noticed the caller stop, the latency's anchor),
        ``("call", {name, args})`` or ``("cancelled", {name})``.
        """
        name, data = event.name, event.data
        if name in ("on_disconnected", "on_bot_disconnected"):
            return "ended", {}
        if name == "on_bot_llm_started":
            self._awaiting, self._text, self._text_len = False, [], 0
        elif name == "on_bot_llm_text":
            text = getattr(data, "text", None)
            if not self._awaiting and isinstance(text, str) and text:
                if self._text_len < MAX_TURN_TEXT:
                    self._text.append(text)
                    self._text_len += len(text)
                if self._first_pending and not self.audio:
                    self._first_pending = False
                    return "first_token", {}
        elif name == "on_bot_llm_stopped":
            if not self._awaiting:
                self._segment_done()
        elif name == "on_bot_started_speaking":
            self._speaking = self._spoken = True
            if self._first_pending and self.audio:
                self._first_pending = False
                return "first_token", {}
        elif name == "on_bot_stopped_speaking":
            self._speaking = False
        elif name == "on_user_stopped_speaking":
            if self._first_pending and self.audio:
                return "heard_end", {}
        elif name in ("on_llm_function_call_in_progress", "on_llm_function_call"):
            call_id = getattr(data, "tool_call_id", None)
            if call_id is not None and call_id in self._call_ids:
                return None  # a bot may send both messages for one call
            self._call_ids.append(call_id)
            self._calls += 1
            arguments = getattr(data, "arguments", None)
            args = dict(arguments) if isinstance(arguments, dict) else {}
            return "call", {"name": str(getattr(data, "function_name", None) or "?"), "args": args}
        elif name == "on_llm_function_call_stopped":
            self._calls = max(0, self._calls - 1)
            if getattr(data, "cancelled", False):
                return "cancelled", {"name": str(getattr(data, "function_name", None) or "?")}
        return None

    def _segment_done(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text, self._text_len = [], 0
        if text:
            self._segments.append(text)
        # Answered only once no call is running: the reply after the call comes next.
        self._ready = bool(self._segments) and self._calls == 0

    def bot_turn_ready(self) -> bool:
        """Whether the bot's turn is complete (with audio: it spoke, and stopped speaking)."""
        if self.audio:
            return self._ready and self._spoken and not self._speaking
        return self._ready

    def take_turn(self) -> str:
        """The bot's whole turn, joined; the next turn starts empty."""
        text = " ".join(self._segments)[:MAX_TURN_TEXT]
        self._segments, self._ready, self._spoken = [], False, False
        return text

    def sent(self) -> None:
        """The persona spoke: what the bot still says of its last reply is not the answer."""
        self._awaiting = True
        self._first_pending = True


class Transcript:
    """pipecat.evals' conversation messages, with ``at`` (seconds since ``started``)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._messages: list[dict[str, Any]] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages so far (copies)."""
        return [dict(m) for m in self._messages]

    def _add(self, message: dict[str, Any], at: float) -> None:
        if len(self._messages) < MAX_MESSAGES:
            message["at"] = round(at, 3)
            self._messages.append(message)

    def user(self, text: str, at: float) -> None:
        """A persona turn."""
        self._add({"role": "user", "content": text}, at)

    def bot(self, text: str) -> None:
        """A bot turn (joined with the previous one when no user turn came between)."""
        last = self._messages[-1] if self._messages else None
        if last is not None and last["role"] == "assistant":
            last["content"] = f"{last['content']} {text}"[:MAX_TURN_TEXT]
            return
        self._add({"role": "assistant", "content": text}, time.monotonic() - self.started)

    def call(self, name: str, arguments: dict[str, Any]) -> None:
        """A function the bot called (placed before the bot turn it was made in)."""
        message = {"role": "tool_call", "name": name, "arguments": arguments, "cancelled": False}
        self._add(message, time.monotonic() - self.started)

    def cancel(self, name: str) -> None:
        """The bot's latest call to ``name`` not yet cancelled was cancelled."""
        for message in reversed(self._messages):
            if message["role"] == "tool_call" and message["name"] == name:
                if message["cancelled"]:
                    continue
                message["cancelled"] = True
                return

    def calls_since(self, at: float) -> list[str]:
        """The names of the calls made at or after ``at``."""
        return [
            m["name"] for m in self._messages if m["role"] == "tool_call" and m["at"] >= at - 1e-3
        ]
