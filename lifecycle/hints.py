"""What to change when a session cannot start: the setting that fixes it, in the user's terms.

The commands name their flags (``--start``, ``-H``...), the pytest plugin its options
(``--pipecat-start``...): :func:`startup_hint` takes a ``flag`` function that spells a
setting (``"start"``, ``"start_data"``, ``"header"``, ``"transport"``, ``"connect_timeout"``)
the caller's way.
"""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.errors import (
    AuthenticationError,
    ConnectionTimeoutError,
    StartBotError,
    TransportError,
)

__all__ = ["cli_flag", "startup_hint"]


def cli_flag(setting: str) -> str:
    """The command line's spelling of a setting: ``"connect_timeout"`` -> ``--connect-timeout``."""
    return "-H NAME=VALUE" if setting == "header" else "--" + setting.replace("_", "-")


def startup_hint(error: BaseException, flag: Callable[[str], str] = cli_flag) -> str | None:
    """The setting to check for a session that could not start, or ``None`` for no hint."""
    if isinstance(error, AuthenticationError):
        return f"the start endpoint refused the credentials: check {flag('header')}"
    if isinstance(error, StartBotError):
        if error.status is None:
            return (
                f"check {flag('start')} (is the bot server running there?); a slow server "
                f"needs a longer {flag('connect_timeout')}"
            )
        if error.status == 404:
            return f"no start endpoint at that path: check {flag('start')}"
        return f"check {flag('start')} and the body it gets ({flag('start_data')})"
    if isinstance(error, ConnectionTimeoutError):
        return (
            f"the bot did not say bot-ready in time: a longer {flag('connect_timeout')}, or "
            f"check {flag('transport')} against the transport the bot serves"
        )
    if isinstance(error, TransportError):
        return f"check {flag('transport')} (ws or webrtc) against what the bot serves"
    return None
