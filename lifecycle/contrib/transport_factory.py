"""Builds the transport (and the local testing bot) asked for by kind, importing only that.

The CLI, the pytest plugin and the locust user share it (so no library code imports the CLI).

Before importing anything from ``transports`` it checks that the ``transports`` package
Python finds is this project's: a user's own ``transports/`` folder, or the unrelated
distribution of that name on the package index, would otherwise shadow it and fail with a
confusing ``ModuleNotFoundError`` (:class:`ForeignTransportsError` names the clash).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from lifecycle.extras import require

if TYPE_CHECKING:
    from lifecycle.start import StartSettings
    from lifecycle.transport import Transport

__all__ = ["MARKER", "ForeignTransportsError", "check_transports", "make_transport", "testing_bot"]

MARKER: Final = "__pipecat_lifecycle__"
"""The attribute pipecat-lifecycle's ``transports/__init__.py`` sets (to ``True``)."""


class ForeignTransportsError(ImportError):
    """The importable ``transports`` package is not pipecat-lifecycle's (the message says
    where it was found and how to resolve the clash)."""


def check_transports() -> None:
    """Raise :class:`ForeignTransportsError` unless ``import transports`` is this project's."""
    try:
        package = importlib.import_module("transports")
    except ImportError as exc:
        raise ForeignTransportsError(
            "pipecat-lifecycle's 'transports' package cannot be imported "
            f"({type(exc).__name__}: {exc}); reinstall it: pip install --force-reinstall "
            "pipecat-lifecycle"
        ) from None
    if getattr(package, MARKER, False) is True:
        return
    where = getattr(package, "__file__", None) or ", ".join(getattr(package, "__path__", []))
    raise ForeignTransportsError(
        f"the 'transports' package Python imports ({where or 'unknown location'}) is not "
        "pipecat-lifecycle's: a folder named transports/ in your project (or on sys.path), "
        "or the unrelated 'transports' distribution from the package index, shadows it. "
        "Rename your folder, or run: pip uninstall transports && pip install "
        "--force-reinstall pipecat-lifecycle"
    )


def make_transport(settings: StartSettings, *, logger: Any = None) -> Transport:
    """The transport of ``settings.transport``, one fresh one per session (``logger``: its).

    The WebSocket transport gets ``settings.headers`` for its handshake only when there is
    no start URL (with one, they go to the start request). ``--transport webrtc`` without
    aiortc raises :class:`~lifecycle.extras.MissingExtraError`.
    """
    check_transports()
    if settings.transport == "webrtc":
        require("--transport webrtc", "webrtc", "aiortc", "av")
        from transports.small_webrtc import SmallWebRTCTransport

        return SmallWebRTCTransport(connect_timeout=settings.connect_timeout, logger=logger)
    from transports.websocket import WebSocketTransport

    headers = None if settings.start_url is not None else dict(settings.headers) or None
    return WebSocketTransport(headers=headers, open_timeout=settings.connect_timeout, logger=logger)


def testing_bot(kind: str) -> Any:
    """A local testing bot server for transport ``kind`` (not started: ``async with`` it)."""
    check_transports()
    if kind == "webrtc":
        require("the WebRTC testing bot", "webrtc", "aiortc", "av")
        from transports.testing.webrtc import TestingWebRTCBotServer

        return TestingWebRTCBotServer()
    from transports.testing import TestingBotServer

    return TestingBotServer(realtime_audio=True)  # its speaking events fall as a listener hears
