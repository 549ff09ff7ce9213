"""Fault matrix over the loopback transport: every fault at every phase settles cleanly.

Phase: the state the client is in when the fault strikes. Fault: what goes wrong. Each cell
asserts that the awaited call settles with the documented error within its timeout + 1 s,
that the state ends DISCONNECTED with ``on_disconnected`` fired exactly once, that no task,
file descriptor or pending request is left, and that the same client then runs a clean
session. The cells and the helpers (:class:`Gate`, :class:`StateWatch`, :func:`snapshot`,
:func:`assert_no_leaks`, :data:`MATRIX`) live in tests/support/fault_matrix.py, shared with the
WebSocket and SmallWebRTC matrices in ``tests/interop``.

Loopback mapping: "bot process killed" is ``bot.crash()`` once a link exists (a refused
connect before that, a connection reset under a start request); "server closes the
connection" is ``bot.leave()`` (a FIN under a start request); "server stops answering" is a
hanging handler, a bot that never answers client-ready, a connect that never completes, or
a start endpoint that never replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lifecycle import (
    APIRequest,
    ConnectionTimeoutError,
    PipecatClient,
    RequestTimeoutError,
    SessionCancelledError,
    SessionClosedError,
    StartBotError,
    State,
    TransportError,
)
from transports.loopback import LoopbackBot, LoopbackTransport

from .support.fault_matrix import (
    MATRIX,
    Gate,
    StateWatch,
    assert_no_leaks,
    cancel_on_entering,
    expect,
    pending_requests,
    snapshot,
)
from .support.recorder import Recorder, within

# Short timeouts keep the matrix fast; every bound below is "timeout + 1 s".
CONNECT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 1.0
START_TIMEOUT = 1.0
SLACK = 1.0


# --------------------------------------------------------------------------- the loopback cells

EXPECTED: dict[tuple[State, str], type[BaseException] | None] = {
    (State.AUTHENTICATING, "disconnect"): SessionCancelledError,
    (State.AUTHENTICATING, "cancel"): asyncio.CancelledError,
    (State.AUTHENTICATING, "kill"): StartBotError,
    (State.AUTHENTICATING, "close"): StartBotError,
    (State.AUTHENTICATING, "stop"): StartBotError,
    (State.AUTHENTICATED, "disconnect"): None,
    (State.AUTHENTICATED, "cancel"): asyncio.CancelledError,
    (State.AUTHENTICATED, "kill"): TransportError,
    (State.AUTHENTICATED, "close"): TransportError,
    (State.AUTHENTICATED, "stop"): ConnectionTimeoutError,
    (State.AUTHENTICATED, "never_ready"): ConnectionTimeoutError,
    (State.CONNECTING, "disconnect"): SessionCancelledError,
    (State.CONNECTING, "cancel"): asyncio.CancelledError,
    (State.CONNECTING, "kill"): TransportError,
    (State.CONNECTING, "close"): TransportError,
    (State.CONNECTING, "stop"): ConnectionTimeoutError,
    (State.CONNECTED, "disconnect"): SessionCancelledError,
    (State.CONNECTED, "cancel"): asyncio.CancelledError,
    (State.CONNECTED, "kill"): TransportError,
    (State.CONNECTED, "close"): TransportError,
    (State.CONNECTED, "stop"): ConnectionTimeoutError,
    (State.CONNECTED, "never_ready"): ConnectionTimeoutError,
    (State.READY, "disconnect"): SessionClosedError,
    (State.READY, "cancel"): asyncio.CancelledError,
    (State.READY, "kill"): SessionClosedError,
    (State.READY, "close"): SessionClosedError,
    (State.READY, "stop"): RequestTimeoutError,
}
"""The documented error of the awaited call in each loopback cell (None: no error)."""


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    async with Gate() as g:
        yield g


async def loopback_cell(
    client: PipecatClient,
    bot: LoopbackBot,
    watch: StateWatch,
    phase: State,
    fault: str,
    http: Any,
    gate: Gate,
) -> tuple[asyncio.Task[Any] | None, float]:
    """Reach ``phase``, strike with ``fault``; return the awaited call and its bound."""
    connect_bound = CONNECT_TIMEOUT + SLACK
    if phase is State.AUTHENTICATING:
        # The start endpoint holds the request until the fault (or forever: "stop").
        task = asyncio.create_task(
            client.start_bot_and_connect(APIRequest(gate.url(), timeout=START_TIMEOUT))
        )
        await watch.reached(State.AUTHENTICATING)
        if fault in ("kill", "close"):
            await within(gate.arrived.wait())
            gate.release("reset" if fault == "kill" else "close")
        elif fault == "disconnect":
            await within(client.disconnect())
        elif fault == "cancel":
            task.cancel()
        # "stop": the endpoint never answers; APIRequest.timeout ends it.
        return task, START_TIMEOUT + SLACK

    if phase is State.AUTHENTICATED:
        http.json_reply({"sessionId": "s"})
        if fault == "cancel":
            ref: list[asyncio.Task[Any]] = []
            cancel_on_entering(client, State.AUTHENTICATED, ref)
            task = asyncio.create_task(client.start_bot(http.url()))
            ref.append(task)
            return task, START_TIMEOUT + SLACK
        await within(client.start_bot(http.url()))
        assert client.state is State.AUTHENTICATED
        if fault == "disconnect":
            return asyncio.create_task(client.disconnect()), SLACK
        if fault == "kill":
            bot.fail_connect = ConnectionRefusedError("the bot process is gone")
        elif fault == "close":
            bot.fail_connect = ConnectionResetError("the server closed the connection")
        elif fault == "stop":
            bot.connect_delay = 60.0
        elif fault == "never_ready":
            bot.send_bot_ready = False
        return asyncio.create_task(client.connect()), connect_bound

    if phase is State.CONNECTING:
        # The handshake is slow; a kill/close strikes while it is in flight.
        bot.connect_delay = 60.0 if fault in ("disconnect", "cancel", "stop") else 0.3
        task = asyncio.create_task(client.connect())
        await watch.reached(State.CONNECTING)
        if fault == "disconnect":
            await within(client.disconnect())
        elif fault == "cancel":
            task.cancel()
        elif fault == "kill":
            bot.fail_connect = ConnectionRefusedError("the bot process is gone")
        elif fault == "close":
            bot.fail_connect = ConnectionResetError("the server closed the connection")
        return task, connect_bound

    if phase is State.CONNECTED:
        if fault == "stop":
            bot.ready_delay = 60.0  # the bot goes silent after the transport came up
        else:
            bot.send_bot_ready = False  # hold the client in CONNECTED
        task = asyncio.create_task(client.connect())
        await watch.reached(State.CONNECTED)
        await within(bot.wait_for_message("client-ready", bot.connections))
        if fault == "disconnect":
            await within(client.disconnect())
        elif fault == "cancel":
            task.cancel()
        elif fault == "kill":
            await bot.crash()
        elif fault == "close":
            await bot.leave()
        return task, connect_bound

    assert phase is State.READY
    await within(client.connect())
    task = asyncio.create_task(client.send_client_request("hang", None))
    await within(bot.wait_for_message("client-message", bot.connections))
    if fault == "disconnect":
        await within(client.disconnect())
    elif fault == "cancel":
        task.cancel()
    elif fault == "kill":
        await bot.crash()
    elif fault == "close":
        await bot.leave()
    # "stop": the handler hangs; request_timeout ends the request.
    return task, REQUEST_TIMEOUT + SLACK


@pytest.mark.parametrize(("phase", "fault"), MATRIX)
async def test_fault_matrix_loopback(phase: State, fault: str, http: Any, gate: Gate) -> None:
    base = snapshot()
    release = asyncio.Event()

    async def hang(_data: Any) -> Any:
        await release.wait()  # a handler that never answers

    bot = LoopbackBot(handlers={"echo": lambda d: d, "hang": hang})
    client = PipecatClient(
        LoopbackTransport(bot), connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT
    )
    rec = Recorder(client)
    watch = StateWatch(client)
    try:
        task, bound = await loopback_cell(client, bot, watch, phase, fault, http, gate)
        assert task is not None
        await expect(task, EXPECTED[(phase, fault)], bound)
        if phase is State.READY and fault in ("cancel", "stop"):
            # Only the request is forgotten; the session goes on until the client ends it.
            assert client.state is State.READY and pending_requests(client) == 0
        await within(client.disconnect())
        assert client.state is State.DISCONNECTED
        assert rec.count("on_disconnected") == 1
        assert pending_requests(client) == 0
        release.set()
        await gate.drain()  # the server side of a held start request is not the client's
        await assert_no_leaks(base)

        # The same client then runs a clean session.
        bot.fail_connect, bot.connect_delay = None, 0.0
        bot.send_bot_ready, bot.ready_delay = True, 0.0
        await within(client.connect(), CONNECT_TIMEOUT + SLACK)
        assert client.state is State.READY
        assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}
        await within(client.disconnect())
        assert client.state is State.DISCONNECTED
        assert rec.count("on_disconnected") == 2
        await assert_no_leaks(base)
    finally:
        release.set()
        await within(client.disconnect())
