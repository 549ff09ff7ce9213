"""Transports for pipecat-lifecycle: ``base`` (the interface), ``loopback``, ``websocket``,
``small_webrtc``. Import the one you need from its module; this package imports none of
them, so ``aiortc`` is only loaded by ``transports.small_webrtc``.
"""

from lifecycle.transport import ConnectRequest, Transport, TransportEvents

__all__ = ["ConnectRequest", "Transport", "TransportEvents"]

__pipecat_lifecycle__ = True
"""Marks this package as pipecat-lifecycle's (other ``transports`` packages exist)."""
