"""Every error the client raises; all derive from :class:`PipecatClientError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BotNotReadyError",
    "ConnectionTimeoutError",
    "InvalidStateError",
    "MessageError",
    "PipecatClientError",
    "RequestTimeoutError",
    "SessionCancelledError",
    "SessionClosedError",
    "StartBotError",
    "TransportError",
    "UnsupportedFeatureError",
]


class PipecatClientError(Exception):
    """Base class of every error raised by pipecat-lifecycle."""


class StartBotError(PipecatClientError):
    """start_bot failed: server unreachable, timed out, HTTP error or a body that is not JSON.

    ``status`` is the HTTP status (``None`` when no response arrived); ``body`` the
    response body (parsed JSON when it was JSON, else text), bounded in size and with
    secret-looking fields redacted.
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthenticationError(StartBotError):
    """The start endpoint refused the credentials (HTTP 401 or 403)."""


class TransportError(PipecatClientError):
    """The transport could not connect, or failed; the original error is ``__cause__``."""


class ConnectionTimeoutError(PipecatClientError):
    """bot-ready did not arrive within ``connect_timeout`` seconds of connect()."""


class InvalidStateError(PipecatClientError):
    """The call is not allowed in the current state (e.g. a second connect)."""


class BotNotReadyError(PipecatClientError):
    """A send was attempted while the session is not READY; nothing was sent."""


class SessionCancelledError(PipecatClientError):
    """disconnect() cancelled the start_bot/connect this caller was awaiting."""


class SessionClosedError(PipecatClientError):
    """The session ended while a request was waiting for its response."""


class MessageError(PipecatClientError):
    """The bot answered a request with ``error-response``; ``data`` is that message's data."""

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


class RequestTimeoutError(PipecatClientError):
    """No response to a request arrived within its timeout."""


class UnsupportedFeatureError(PipecatClientError):
    """The bot's RTVI version lacks what was asked (e.g. ``dtmf`` below RTVI 2.0); nothing sent.

    ``feature`` names what was asked, ``bot_version`` the RTVI version the bot announced.
    """

    def __init__(self, feature: str, bot_version: str, needs: str) -> None:
        super().__init__(
            f"{feature} needs a bot on RTVI {needs} or later; this bot speaks RTVI {bot_version}"
        )
        self.feature = feature
        self.bot_version = bot_version
