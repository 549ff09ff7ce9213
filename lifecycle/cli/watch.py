"""Follows a client's session through its event stream: prints it, remembers how it ended."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

from lifecycle.cli.answer import AnswerWatch
from lifecycle.cli.conversation import ConversationPrinter
from lifecycle.cli.exits import EXIT_FATAL, EXIT_OK
from lifecycle.cli.output import Output
from lifecycle.rtvi import RTVIError

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import ClientEvent, EventStream

_CATCH_UP: Final = 5.0
"""How long the end of a command waits for the stream's last events to be printed."""


class Watch:
    """Prints a client's events (from ``client.events()``) and how its session ended.

    Build it before the session starts; :meth:`caught_up` waits until the session's last
    event (``on_disconnected``) was printed, so the command's own last lines come after.
    """

    def __init__(self, client: PipecatClient, out: Output, *, answers_calls: bool = True) -> None:
        """``answers_calls=False``: the command has no function call handler (a call says so)."""
        self.out = out
        self.ended = asyncio.Event()
        self.fatal: RTVIError | None = None
        self.bot_left = False
        self.answer = AnswerWatch()
        """Whether the bot answered the last input (see :mod:`lifecycle.cli.answer`)."""
        self._printer = ConversationPrinter(out, answers_calls=answers_calls)
        self._stream: EventStream = client.events()
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        async for event in self._stream:
            self._note(event)
            self.answer.note(event)
            self._printer.show(event)
            if event.name == "on_disconnected":
                self.ended.set()

    def _note(self, event: ClientEvent) -> None:
        if event.name == "on_error" and isinstance(event.data, RTVIError) and event.data.fatal:
            self.fatal = event.data
        elif event.name == "on_bot_disconnected":
            self.bot_left = True

    async def caught_up(self) -> None:
        """Wait (bounded) until the session's end was printed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), _CATCH_UP)

    async def close(self) -> None:
        """Stop following (what was not printed yet is dropped)."""
        self._stream.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def exit_code(self) -> int:
        """0 for a clean end, 4 when a fatal error ended the session."""
        return EXIT_FATAL if self.fatal is not None else EXIT_OK
