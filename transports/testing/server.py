"""What the WebSocket and WebRTC testing servers share (one job: a bot server's housekeeping).

Their settings (``ready_delay``, ``send_bot_ready``, ``dialogue``), what their bots received,
the sessions announced by the start endpoint and the options they carry, one script per
session, the HTTP listener, and ``async with``. Each subclass adds its wire.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, Self

from transports.testing._http import JSONHTTPServer, Route
from transports.testing.dialogue import DEFAULT_DIALOGUE, Dialogue
from transports.testing.script import BotScript

__all__ = ["HOST", "BotServer"]

HOST: Final = "127.0.0.1"
"""Where the testing servers listen (ports picked by the OS)."""
STOP_TIMEOUT: Final = 3.0


class BotServer:
    """The base of the testing servers; subclasses implement :meth:`start` and :meth:`stop`.

    ``ready_delay`` delays every ``bot-ready`` by that many seconds; ``send_bot_ready=False``
    never sends it (a bot that stays silent). A session started through the start endpoint
    may override both with ``ready_delay`` / ``never_ready`` in the request body.
    ``dialogue``: how the bot talks (``None``: it never does).
    """

    __test__ = False  # not a pytest test class despite its subclasses' names
    library: ClassVar[str] = "pipecat-lifecycle-testing"
    """The ``about.library`` of the bot's bot-ready."""
    http_path: ClassVar[str] = ""
    """The path of the HTTP routes under the listener's root (``/start`` is below it)."""

    def __init__(
        self,
        *,
        ready_delay: float = 0.0,
        send_bot_ready: bool = True,
        dialogue: Dialogue | None = DEFAULT_DIALOGUE,
    ) -> None:
        """Configure; nothing listens until :meth:`start`."""
        self.ready_delay = ready_delay
        self.send_bot_ready = send_bot_ready
        self.dialogue = dialogue
        self.received: list[dict[str, Any]] = []
        """Every RTVI message the bot received, in order (all sessions)."""
        self.sessions_started = 0
        """How many sessions the bot has accepted."""
        self._sessions: dict[str, dict[str, Any]] = {}
        self._http: JSONHTTPServer | None = None
        self._http_port = 0
        self._init_wire()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<http port>`` and :attr:`http_path`."""
        return f"http://{HOST}:{self._http_port}{self.http_path}"

    @property
    def start_url(self) -> str:
        """The URL to POST to (``start_bot``)."""
        return f"{self.base_url}/start"

    def _init_wire(self) -> None:
        """Set up the subclass's own state (called at the end of ``__init__``)."""

    async def start(self) -> None:
        """Start listening."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close every session and listener; leaves no task behind."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Start; returns the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()

    def _announce(self, options: Any) -> str:
        """A new session id for the start endpoint, remembering the request's options."""
        sid = uuid.uuid4().hex
        self._sessions[sid] = options if isinstance(options, dict) else {}
        return sid

    def _script(self, options: Mapping[str, Any]) -> BotScript:
        """A session's script: the server's settings, overridden by the session's options."""
        self.sessions_started += 1
        never_ready = bool(options.get("never_ready", not self.send_bot_ready))
        return BotScript(
            library=self.library,
            send_bot_ready=not never_ready,
            ready_delay=float(options.get("ready_delay", self.ready_delay) or 0),
            builtins=True,
            dialogue=self.dialogue,
        )

    async def _listen_http(self, route: Route, *, max_body: int, timeout: float) -> None:
        """Start the HTTP listener on :data:`HOST`."""
        http = JSONHTTPServer(route, max_body=max_body, timeout=timeout)
        await http.start(HOST)
        self._http, self._http_port = http, http.port

    async def _close_http(self) -> bool:
        """Stop the HTTP listener; False when none was running."""
        http, self._http = self._http, None
        if http is None:
            return False
        await http.stop(STOP_TIMEOUT)
        return True
