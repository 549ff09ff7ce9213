"""Prints what a client's session says, one event per line, and remembers how it ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lifecycle.cli.exits import EXIT_FATAL, EXIT_OK
from lifecycle.cli.output import Output, compact
from lifecycle.rtvi import BotReadyData, RTVIError

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient


class Watch:
    """Prints a client's events and remembers how its session ended."""

    def __init__(self, client: PipecatClient, out: Output) -> None:
        self.out = out
        self.ended = asyncio.Event()
        self.fatal: RTVIError | None = None
        self.bot_left = False
        handlers: Mapping[str, Callable[..., Any]] = {
            "on_transition": out.transition,
            "on_bot_ready": self._bot_ready,
            "on_server_message": self._server_message,
            "on_unhandled_message": self._unhandled,
            "on_message_error": self._message_error,
            "on_error": self._error,
            "on_bot_disconnected": self._bot_disconnected,
            "on_disconnected": self._disconnected,
        }
        for name, callback in handlers.items():
            client.add_event_handler(name, callback)

    def _bot_ready(self, data: BotReadyData) -> None:
        about = data.about
        who = " ".join(str(about[k]) for k in ("library", "library_version") if k in about)
        caps = f", capabilities {compact(data.capabilities)}" if data.capabilities else ""
        self.out.emit(
            "bot-ready",
            f"bot-ready: RTVI {data.version or '?'}" + (f", {who}" if who else "") + caps,
            data=dict(data.raw),
        )

    def _server_message(self, data: Any) -> None:
        self.out.emit("server-message", f"server-message {compact(data)}", data=data)

    def _unhandled(self, message: Mapping[str, Any]) -> None:
        msg_type = message.get("type")
        self.out.emit(
            "message",
            f"{msg_type} {compact(message.get('data'))}",
            type=msg_type,
            message=message,
        )

    def _message_error(self, message: Mapping[str, Any]) -> None:
        self.out.emit(
            "error-response", f"error-response {compact(message.get('data'))}", message=message
        )

    def _error(self, error: RTVIError) -> None:
        if error.fatal:
            self.fatal = error
        kind = "fatal error" if error.fatal else "error"
        self.out.emit("error", f"{kind}: {error.message}", message=error.message, fatal=error.fatal)

    def _bot_disconnected(self) -> None:
        self.bot_left = True
        self.out.emit("bot-disconnected", "the bot ended the session")

    def _disconnected(self) -> None:
        self.ended.set()

    def exit_code(self) -> int:
        """0 for a clean end, 4 when a fatal error ended the session."""
        return EXIT_FATAL if self.fatal is not None else EXIT_OK
