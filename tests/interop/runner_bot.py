"""The voice bot (voice_bot.py) as a Pipecat developer ships it: a ``bot.py`` served by the runner.

Run with the interop venv's python, as ``python bot.py`` is run (``--ws-auth token`` optional)::

    .venv-interop/bin/python tests/interop/runner_bot.py --host localhost --port 7860

``pipecat.runner.run.main()`` parses the command line and serves every transport it has the
dependencies for: ``POST /start``, ``WS /ws-client`` (plain RTVI WebSocket), ``WS /ws``
(telephony), ``POST|PATCH /api/offer`` and ``/sessions/{id}/api/offer`` (SmallWebRTC),
``GET /status``. For each session it calls :func:`bot` with the runner's arguments; the
transport comes from ``pipecat.runner.utils.create_transport``.
"""

from __future__ import annotations

from typing import Any

# voice_bot imports bot_serving, which makes ICE loopback-only before the runner's aiortc runs.
import voice_bot
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

TRANSPORT_PARAMS: dict[str, Any] = {
    "webrtc": lambda: TransportParams(**voice_bot.transport_params()),
    "websocket": lambda: FastAPIWebsocketParams(
        serializer=ProtobufFrameSerializer(), **voice_bot.transport_params()
    ),
}


async def bot(runner_args: RunnerArguments) -> None:
    """The runner's entry point: one session of the voice bot."""
    transport = await create_transport(runner_args, TRANSPORT_PARAMS)
    await voice_bot.run_bot(transport, f"runner:{runner_args.session_id}")


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
