"""Local RTVI bots for tests and demos, no Pipecat needed.

* :class:`TestingBotServer` (:mod:`transports.testing.websocket`): a ``/start`` endpoint and a
  WebSocket bot speaking Pipecat's protobuf frames.
* ``TestingWebRTCBotServer`` (:mod:`transports.testing.webrtc`, needs aiortc): a SmallWebRTC
  bot with its offer endpoint.
* ``transports.loopback.LoopbackBot``: the same bot in process, no network.

All three play one sans-I/O script, :class:`~transports.testing.script.BotScript`, so they say
the same things; only the wire differs. :class:`~transports.testing.dialogue.Dialogue` sets
how they talk.
"""

from transports.testing.dialogue import DEFAULT_DIALOGUE, Dialogue, FunctionTrigger
from transports.testing.script import BotScript
from transports.testing.websocket import TestingBotServer

__all__ = ["DEFAULT_DIALOGUE", "BotScript", "Dialogue", "FunctionTrigger", "TestingBotServer"]
