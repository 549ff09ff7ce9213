"""Transports for pipecat-lifecycle: ``base`` (the interface), ``loopback``, ``websocket``,
``small_webrtc``. Import the one you need from its module; this package imports none of
them, so ``aiortc`` is only loaded by ``transports.small_webrtc``.
"""

import warnings
from typing import Any

from lifecycle.transport import ConnectRequest, Transport, TransportSink

__all__ = ["ConnectRequest", "Transport", "TransportSink"]

__pipecat_lifecycle__ = True
"""Marks this package as pipecat-lifecycle's (other ``transports`` packages exist)."""


def __getattr__(name: str) -> Any:
    # The old name, kept for one release (CHANGELOG: Deprecated).
    if name == "TransportEvents":
        warnings.warn(
            f"{__name__}.TransportEvents is deprecated: use TransportSink",
            DeprecationWarning,
            stacklevel=2,
        )
        return TransportSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
