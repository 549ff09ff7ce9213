"""A scripted conversation with a talking bot, for tests of turns and reports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from lifecycle import PipecatClient
from lifecycle.transport import Transport

TURN_TIMEOUT = 10.0
"""Upper bound of one turn: from send_text to the bot's metrics of it."""


async def talk(
    transport: Transport,
    texts: Sequence[str],
    *,
    start_url: str | None = None,
    connect_params: dict[str, Any] | None = None,
    functions: dict[str, Any] | None = None,
) -> PipecatClient:
    """Connect, send each text and wait for its turn's ``metrics``, disconnect; the client.

    The testing bots send a turn's ``metrics`` last, so each turn is complete before the
    next is sent. ``functions``: name -> result the client answers the bot's calls with.
    """
    client = PipecatClient(transport)
    for name, result in (functions or {}).items():
        client.register_function_call_handler(name, lambda _call, value=result: value)
    async with asyncio.timeout(TURN_TIMEOUT * (len(texts) + 1)):
        if start_url is not None:
            await client.start_bot_and_connect(start_url)
        else:
            await client.connect(connect_params)
        async with client.events("on_metrics") as metrics:
            for text in texts:
                await client.send_text(text)
                async with asyncio.timeout(TURN_TIMEOUT):
                    await anext(metrics)
        await client.disconnect()
    return client
