"""Whether the bot has answered the user's last input and gone quiet (``connect``'s pipe mode).

Reading from a pipe, ``connect`` sends each text line once the bot answered the one before,
and at end of input waits for the last answer before it disconnects, so ``echo hi |
pipecat-lifecycle connect ...`` prints the bot's reply. An answer is any of the bot's reply
events after the input; the bot is quiet when nothing it started (LLM, TTS,
speech) is still open and no reply event came for :data:`QUIET` seconds. A function call is
not waited for: ``connect`` answers none, and a server-side one opens the LLM again.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from lifecycle.dispatch import ClientEvent

QUIET: Final = 1.0
"""Seconds without a reply event after which an answered bot counts as done."""
_OPENS: Final = {
    "on_bot_llm_started": "llm",
    "on_bot_tts_started": "tts",
    "on_bot_started_speaking": "speaking",
}
_CLOSES: Final = {
    "on_bot_llm_stopped": "llm",
    "on_bot_tts_stopped": "tts",
    "on_bot_stopped_speaking": "speaking",
}
_REPLIES: Final = frozenset(
    {
        *_OPENS,
        *_CLOSES,
        "on_bot_output",
        "on_bot_llm_text",
        "on_bot_tts_text",
        "on_llm_raw_text",
        "on_tts_raw_text",
        "on_llm_function_call_in_progress",
        "on_llm_function_call_stopped",
        "on_server_message",
    }
)


class AnswerWatch:
    """Follows the bot's reply events; :meth:`settled` waits for the answer to the input."""

    def __init__(self) -> None:
        self.waiting = False
        """An input was sent and its answer has not arrived yet."""
        self.sent_any = False
        """An input was sent in this session."""
        self._open: set[str] = set()
        self._last = time.monotonic()
        self._changed = asyncio.Event()

    def sent(self) -> None:
        """The user sent an input: its answer is awaited from now on."""
        self.waiting = self.sent_any = True
        self._last = time.monotonic()
        self._changed.set()

    def note(self, event: ClientEvent) -> None:
        """One event of the session (everything but reply events is ignored)."""
        name = event.name
        if name not in _REPLIES:
            return
        if name in _OPENS:
            self._open.add(_OPENS[name])
        elif name in _CLOSES:
            self._open.discard(_CLOSES[name])
        self.waiting = False
        self._last = time.monotonic()
        self._changed.set()

    def _quiet_for(self) -> float:
        """Seconds the bot has been done (negative: still answering or not yet)."""
        if self.waiting or self._open:
            return -1.0
        return time.monotonic() - self._last

    async def settled(self, limit: float, ended: asyncio.Event) -> bool:
        """Wait until the bot answered and was quiet :data:`QUIET` s (at most ``limit`` s,
        or until ``ended`` is set); whether it did."""
        deadline = time.monotonic() + limit
        while not ended.is_set():
            quiet = self._quiet_for()
            if quiet >= QUIET:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            wait = remaining if quiet < 0 else min(remaining, QUIET - quiet)
            changed = asyncio.ensure_future(self._changed.wait())
            end = asyncio.ensure_future(ended.wait())
            try:
                await asyncio.wait({changed, end}, timeout=wait, return_when="FIRST_COMPLETED")
            finally:
                changed.cancel()
                end.cancel()
        return False
