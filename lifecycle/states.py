"""The eight states of a Pipecat session."""

from __future__ import annotations

import enum

__all__ = ["State"]


class State(enum.StrEnum):
    """Every state a session can be in, in lifecycle order."""

    IDLE = "idle"
    """No connection attempt has started (initial; never re-entered)."""
    AUTHENTICATING = "authenticating"
    """start_bot() called; waiting for the server to start the bot."""
    AUTHENTICATED = "authenticated"
    """The server responded; the bot is starting."""
    CONNECTING = "connecting"
    """The transport is establishing the WebRTC/WebSocket connection."""
    CONNECTED = "connected"
    """The transport is up; the bot pipeline is initializing."""
    READY = "ready"
    """The bot sent bot-ready: the gate for sending messages and audio."""
    DISCONNECTING = "disconnecting"
    """A disconnect is in progress."""
    DISCONNECTED = "disconnected"
    """The session has ended; a new session may start from here."""
