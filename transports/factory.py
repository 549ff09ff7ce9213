"""A transport by kind (``ws`` or ``webrtc``), importing only that one transport's module.

The CLI, the pytest plugin and the locust user all build their transports here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lifecycle.errors import TransportError

if TYPE_CHECKING:
    from lifecycle.transport import Transport

__all__ = ["make_transport"]


def make_transport(kind: str, url: str | None, headers: Mapping[str, str]) -> Transport:
    """A ``ws`` or ``webrtc`` transport; WebRTC without aiortc is a ``TransportError``."""
    if kind == "webrtc":
        try:
            from transports.small_webrtc import SmallWebRTCTransport
        except ImportError as exc:
            raise TransportError(
                f'WebRTC needs aiortc: pip install "pipecat-lifecycle[webrtc]" ({exc})'
            ) from exc
        return SmallWebRTCTransport(url)
    from transports.websocket import WebSocketTransport

    return WebSocketTransport(url, headers=headers or None)
