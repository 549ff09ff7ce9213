"""One rule for a zero timeout (lifecycle/timeouts.py): refused by every timeout, in the client,
the start request and the transports; a grace period (``drain_timeout``) may be 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifecycle import APIRequest, PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.websocket import WebSocketTransport


def client(**options: Any) -> PipecatClient:
    return PipecatClient(LoopbackTransport(LoopbackBot()), **options)


TIMEOUTS: dict[str, Callable[[float], object]] = {
    "connect_timeout": lambda s: client(connect_timeout=s),
    "request_timeout": lambda s: client(request_timeout=s),
    "APIRequest timeout": lambda s: APIRequest("http://127.0.0.1:9/start", timeout=s),
    "open_timeout": lambda s: WebSocketTransport("ws://127.0.0.1:9/ws", open_timeout=s),
    "dead_peer_timeout": lambda s: WebSocketTransport("ws://127.0.0.1:9/ws", dead_peer_timeout=s),
}


@pytest.mark.parametrize("build", TIMEOUTS.values(), ids=TIMEOUTS.keys())
@pytest.mark.parametrize("seconds", [0, 0.0, -1, float("nan"), float("inf")])
def test_a_timeout_of_zero_or_less_is_refused_where_it_is_given(
    build: Callable[[float], object], seconds: float
) -> None:
    with pytest.raises(ValueError):
        build(seconds)


async def test_the_waits_of_a_running_client_refuse_zero_too() -> None:
    with pytest.raises(ValueError):
        await client().wait_for("on_bot_ready", timeout=0)
    with pytest.raises(ValueError):
        await client().send_client_request("x", timeout=0)


def test_a_grace_period_of_zero_is_allowed() -> None:
    assert client(drain_timeout=0).state.value == "idle"
