"""The SmallWebRTC testing bot's old import path: see :mod:`transports.testing.webrtc`."""

from transports.testing.webrtc import TestingWebRTCBotServer

__all__ = ["TestingWebRTCBotServer"]
