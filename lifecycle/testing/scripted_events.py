"""The bot's RTVI events as pipecat.evals' scenario events (its ``EvalEventStream``, over RTVI).

pipecat.evals' ``events.py`` table, on the messages a production transport carries:

* ``user_started_speaking`` / ``user_stopped_speaking``, ``vad_user_started_speaking`` /
  ``vad_user_stopped_speaking``, ``bot_started_speaking`` / ``bot_stopped_speaking``,
  ``bot_interrupted``: the RTVI messages of the same names;
* ``user_transcription``: a final ``user-input`` of type ``transcription``;
  ``user_backchannel``: a ``user-input`` of type ``backchannel``;
* ``llm_started``: ``bot-llm-started``; ``llm_response``: the ``bot-llm-text`` tokens
  joined at ``bot-llm-stopped`` (LLM text after a send or an interruption and before the
  next ``bot-llm-started`` belongs to the reply before and is dropped, as there);
* ``tts_response``: one ``bot-tts-text``; ``llm_marker``: ``bot-llm-marker``;
  ``bot_backchannel``: a ``bot-output`` of type ``backchannel`` once spoken to the end;
* ``function_call``: ``llm-function-call-in-progress`` or the deprecated
  ``llm-function-call`` (one call announced by both is one call: its ``tool_call_id``
  is claimed once); ``function_call_stopped``: ``llm-function-call-stopped`` with
  ``args`` ``{tool_call_id, cancelled}``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from lifecycle.dispatch import ClientEvent

__all__ = ["MAX_QUEUED", "WATCHED", "BotEndedError", "ScriptEvents", "TooManyEventsError"]

MAX_QUEUED: Final = 10_000  # events kept unread (past that the oldest go), and per turn

WATCHED: Final = (
    "on_user_started_speaking",
    "on_user_stopped_speaking",
    "on_vad_user_started_speaking",
    "on_vad_user_stopped_speaking",
    "on_user_input",
    "on_bot_started_speaking",
    "on_bot_stopped_speaking",
    "on_bot_interrupted",
    "on_bot_llm_started",
    "on_bot_llm_text",
    "on_bot_llm_stopped",
    "on_bot_llm_marker",
    "on_bot_tts_text",
    "on_bot_output",
    "on_llm_function_call_in_progress",
    "on_llm_function_call",
    "on_llm_function_call_stopped",
    "on_disconnected",
)
"""The client events the runner watches."""

_SIMPLE: Final = {
    "on_user_started_speaking": "user_started_speaking",
    "on_user_stopped_speaking": "user_stopped_speaking",
    "on_vad_user_started_speaking": "vad_user_started_speaking",
    "on_vad_user_stopped_speaking": "vad_user_stopped_speaking",
    "on_bot_started_speaking": "bot_started_speaking",
    "on_bot_stopped_speaking": "bot_stopped_speaking",
    "on_bot_interrupted": "bot_interrupted",
}
_INTERRUPTIONS: Final = frozenset({"user_started_speaking", "bot_interrupted"})
_USER_EVENTS: Final = frozenset(
    {"user_started_speaking", "user_stopped_speaking", "user_transcription"}
    | {"vad_user_started_speaking", "vad_user_stopped_speaking", "user_backchannel"}
)


class BotEndedError(Exception):
    """The session ended and no queued event is left."""


class TooManyEventsError(Exception):
    """The bot sent more than :data:`MAX_QUEUED` events in one turn."""


class ScriptEvents:
    """The scenario's event queue, fed from the client's event stream."""

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED)
        self.turn_log: list[dict[str, Any]] = []
        self.claimed: set[int] = set()
        self.claimed_calls: set[str] = set()
        self.latest: dict[str, float] = {}
        """When each event type last arrived in the run (for ``send_after``)."""
        self.ended = False
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._arrived = asyncio.Event()
        self._tick = asyncio.Event()
        self._awaiting_reply = False
        self._text: list[str] = []
        self._cutoff = 0.0
        self.hears = False
        """``response`` comes from :meth:`heard` (a client-side transcriber), not the LLM text."""

    # --- feeding ---------------------------------------------------------------------
    def feed(self, event: ClientEvent) -> None:
        """Translate one client event; queue what it maps to."""
        mapped = self._map(event)
        if mapped is not None:
            mapped["at"] = event.at
            self.latest[mapped["type"]] = max(self.latest.get(mapped["type"], 0.0), event.at)
            if event.at >= self._cutoff:
                self._queue(mapped)
        # Anything that changed: wake whoever waits for an event to have been seen.
        self._tick.set()
        self._tick = asyncio.Event()

    def _queue(self, mapped: dict[str, Any]) -> None:
        if mapped["type"] in _INTERRUPTIONS:
            # The bot's pending output is not the reply to what interrupted it; what the
            # user did stays (pipecat.evals pops events as they come, so never loses those).
            kept = [e for e in self.queue if e["type"] in _USER_EVENTS]
            self.queue.clear()
            self.queue.extend(kept)
            self._awaiting_reply = True
            self.quiet.set()
        self.queue.append(mapped)
        self._arrived.set()

    def _map(self, event: ClientEvent) -> dict[str, Any] | None:
        name, data = event.name, event.data
        if name in _SIMPLE:
            kind = _SIMPLE[name]
            if kind == "bot_started_speaking":
                self.quiet.clear()
            elif kind == "bot_stopped_speaking":
                self.quiet.set()
            return {"type": kind}
        if name == "on_user_input":
            if data.input_type == "transcription" and data.final:
                return {"type": "user_transcription", "transcript": data.text or ""}
            if data.input_type == "backchannel":
                return {"type": "user_backchannel", "text": data.text or ""}
            return None
        if name == "on_bot_output":
            spoken = data.spoken_status in (None, "completed")
            if data.output_type == "backchannel" and spoken:
                return {"type": "bot_backchannel", "text": data.text or ""}
            return None
        if name == "on_bot_llm_started":
            self._awaiting_reply, self._text = False, []
            return {"type": "llm_started"}
        if name == "on_bot_llm_text":
            if not self._awaiting_reply and data.text:
                self._text.append(data.text)
            return None
        if name == "on_bot_llm_stopped":
            text, self._text = "".join(self._text), []
            if self.hears or self._awaiting_reply:
                return None
            return {"type": "llm_response", "text": text}
        if name == "on_bot_llm_marker":
            return {
                "type": "llm_marker",
                "text": data.text or "",
                "kind": data.kind,
                "raw": data.response_text or "",
                "markers": list(data.markers),
            }
        if name == "on_bot_tts_text":
            return {"type": "tts_response", "text": data.text or ""}
        if name in ("on_llm_function_call_in_progress", "on_llm_function_call"):
            return {
                "type": "function_call",
                "name": data.function_name,
                "args": dict(data.arguments or {}),
                "has_args": "arguments" in data.raw or "args" in data.raw,
                "tool_call_id": data.tool_call_id,
            }
        if name == "on_llm_function_call_stopped":
            return {
                "type": "function_call_stopped",
                "name": data.function_name,
                "args": {"tool_call_id": data.tool_call_id, "cancelled": bool(data.cancelled)},
                "tool_call_id": data.tool_call_id,
                "has_args": True,
            }
        if name == "on_disconnected":
            self.ended = True
            self.quiet.set()
            self._arrived.set()
        return None

    def heard(self, text: str, started_at: float, at: float) -> None:
        """The transcriber's text of a bot utterance begun at ``started_at``: a ``response``
        (dropped when the utterance began before the turn's send)."""
        if started_at >= self._cutoff:
            self.latest["llm_response"] = max(self.latest.get("llm_response", 0.0), at)
            self._queue({"type": "llm_response", "text": text, "at": at})
        self._tick.set()
        self._tick = asyncio.Event()

    # --- turns -----------------------------------------------------------------------
    def begin_turn(self, *, sent: bool, keep: bool = False) -> None:
        """A new turn: forget the last one's log and (unless ``keep``) what arrived before."""
        # Tool call ids are unique within a turn at least (some LLMs number them per reply).
        self.turn_log, self.claimed, self.claimed_calls = [], set(), set()
        if not keep:
            self.queue.clear()
            self._cutoff = time.monotonic()
        if sent:
            self._awaiting_reply = True

    async def changed(self) -> None:
        """Return when the next client event arrives."""
        await self._tick.wait()

    async def seen(self, kind: str, deadline: float) -> float:
        """When ``kind`` last arrived in the run, waiting until ``deadline`` if never yet."""
        while True:
            if kind in self.latest:
                return self.latest[kind]
            if self.ended:
                raise BotEndedError
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            tick = self._tick
            async with asyncio.timeout(remaining):
                await tick.wait()

    def _claimable(self, item: dict[str, Any]) -> bool:
        call_id = item.get("tool_call_id")
        return (
            item["type"] != "function_call" or call_id is None or call_id not in self.claimed_calls
        )

    def _claim(self, index: int) -> dict[str, Any]:
        self.claimed.add(index)
        item = self.turn_log[index]
        if item["type"] == "function_call" and item.get("tool_call_id") is not None:
            self.claimed_calls.add(item["tool_call_id"])
        return item

    async def next_event(
        self,
        kind: str,
        deadline: float,
        *,
        since: int | None = None,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The next unclaimed ``kind`` event that arrived before ``deadline``.

        With ``since``, first the turn's events from that index no expectation claimed;
        then new ones as they come, passing over other events.
        """

        def wanted(item: dict[str, Any]) -> bool:
            return (
                item["type"] == kind and self._claimable(item) and (accept is None or accept(item))
            )

        if since is not None:
            for i in range(since, len(self.turn_log)):
                if i not in self.claimed and wanted(self.turn_log[i]):
                    return self._claim(i)
        while True:
            if not self.queue:
                if self.ended:
                    raise BotEndedError
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._arrived.clear()
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
                continue
            if self.queue[0]["at"] > deadline:
                raise TimeoutError
            if len(self.turn_log) >= MAX_QUEUED:
                raise TooManyEventsError
            self.turn_log.append(self.queue.popleft())
            if wanted(self.turn_log[-1]):
                return self._claim(len(self.turn_log) - 1)

    def unclaimed_since(self, since: int, kind: str) -> list[dict[str, Any]]:
        """The turn's ``kind`` events from ``since`` no expectation has claimed."""
        return [
            e
            for i, e in enumerate(self.turn_log)
            if i >= since and i not in self.claimed and e["type"] == kind and self._claimable(e)
        ]
