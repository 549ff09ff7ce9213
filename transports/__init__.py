"""Transports for pipecat-lifecycle: ``base`` (the interface), ``loopback``, ``websocket``,
``small_webrtc``. Import the one you need from its module; this package imports none of
them, so ``aiortc`` is only loaded by ``transports.small_webrtc``.
"""

from lifecycle.deprecation import renamed
from lifecycle.transport import ConnectRequest, Transport, TransportSink

__all__ = ["ConnectRequest", "Transport", "TransportSink"]

__pipecat_lifecycle__ = True
"""Marks this package as pipecat-lifecycle's (other ``transports`` packages exist)."""


__getattr__ = renamed(__name__, {"TransportEvents": ("TransportSink", TransportSink)})
