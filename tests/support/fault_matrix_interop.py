"""The fault matrix engine against the real Pipecat bot, shared by the WebSocket and WebRTC cells.

What differs between them is a :class:`Flavor`; the bot process a module owns is driven by
:class:`BotControl` (fixtures ``own_bot`` and ``control`` in tests/interop/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from transports.base import Transport

from .fault_matrix import (
    Gate,
    StateWatch,
    assert_no_leaks,
    cancel_on_entering,
    expect,
    pending_requests,
    snapshot,
)
from .processes import BotServer
from .recorder import Recorder, within

CONNECT_TIMEOUT = 3.0
REQUEST_TIMEOUT = 1.5
START_TIMEOUT = 1.5
SLACK = 1.0
END_BOUND = 8.0  # disconnect() against a stopped server: close handshake timeout, then abort


class BotControl:
    """A bot server this module owns: signals, and recovery between cells."""

    def __init__(self, server: BotServer) -> None:
        self.server = server
        self.stopped = False

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:N``."""
        return self.server.base_url

    def sigstop(self) -> None:
        """The server stops answering (the kernel still accepts TCP connections)."""
        os.kill(self.server.pid, signal.SIGSTOP)
        self.stopped = True

    async def kill(self) -> None:
        """SIGKILL: a crash."""
        self.sigcont()  # a stopped process dies on SIGKILL as well; keep the flag right
        await asyncio.to_thread(self.server.kill)

    async def terminate(self) -> None:
        """SIGTERM: the server closes every connection (WS 1012, WebRTC peerLeft) and exits."""
        await asyncio.to_thread(self.server.stop)

    def sigcont(self) -> None:
        """Undo :meth:`sigstop`."""
        if self.stopped:
            proc = self.server.process
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            self.stopped = False

    async def recover(self) -> None:
        """SIGCONT if stopped; restart if killed or terminated."""
        self.sigcont()
        await asyncio.to_thread(self.server.ensure_running)


@dataclass(frozen=True)
class Flavor:
    """What differs between the WebSocket and the SmallWebRTC matrix."""

    name: str
    start_path: str
    make_transport: Callable[[], Transport]
    gate_params: Callable[[Gate], dict[str, Any]]
    # WebRTC notices a killed peer only by ICE consent expiry (~30 s): a connect or request in
    # flight then ends by its own timeout, and disconnect() stays bounded.
    kill_detected: bool
    end_options: dict[str, Any]


def expected_error(flavor: Flavor, phase: State, fault: str) -> type[BaseException] | None:
    """The documented error of the awaited call in a cell (None: it returns normally)."""
    if fault == "cancel":
        return asyncio.CancelledError
    if phase is State.AUTHENTICATING:
        return SessionCancelledError if fault == "disconnect" else StartBotError
    if phase is State.AUTHENTICATED:
        return {
            "disconnect": None,
            "kill": TransportError,
            "close": TransportError,
            "stop": ConnectionTimeoutError,
            "never_ready": ConnectionTimeoutError,
        }[fault]
    if phase in (State.CONNECTING, State.CONNECTED):
        if fault == "disconnect":
            return SessionCancelledError
        if fault == "kill":
            return (
                TransportError
                if flavor.kill_detected or phase is State.CONNECTING
                else (ConnectionTimeoutError)
            )
        return TransportError if fault == "close" else ConnectionTimeoutError
    assert phase is State.READY
    if fault == "kill":
        return SessionClosedError if flavor.kill_detected else RequestTimeoutError
    return RequestTimeoutError if fault == "stop" else SessionClosedError


def start_request(
    flavor: Flavor, ctl: BotControl, options: dict[str, Any] | None = None, query: str = ""
) -> APIRequest:
    """The start request of a session with ``options`` (never_ready, ready_delay, ...)."""
    return APIRequest(
        f"{ctl.base_url}{flavor.start_path}{query}",
        request_data=dict(options or {}),
        timeout=START_TIMEOUT,
    )


async def strike_or_return(
    client: PipecatClient, ctl: BotControl, task: asyncio.Task[Any], fault: str
) -> None:
    """The faults that act the same way in every phase with a call in flight."""
    if fault == "disconnect":
        await within(client.disconnect(), END_BOUND)
    elif fault == "cancel":
        task.cancel()
    elif fault == "kill":
        await ctl.kill()
    elif fault == "stop":
        ctl.sigstop()


async def interop_cell(
    flavor: Flavor,
    client: PipecatClient,
    ctl: BotControl,
    watch: StateWatch,
    gate: Gate,
    phase: State,
    fault: str,
) -> tuple[asyncio.Task[Any], float]:
    """Reach ``phase``, strike with ``fault``; return the awaited call and its bound."""
    connect_bound = CONNECT_TIMEOUT + SLACK
    if phase is State.AUTHENTICATING:
        if fault == "close":
            request = APIRequest(gate.url(), timeout=START_TIMEOUT)
        else:
            # ?delay= holds the request in the bot server; "stop" freezes it instead.
            request = start_request(flavor, ctl, query="" if fault == "stop" else "?delay=30")
        task = asyncio.create_task(client.start_bot_and_connect(request))
        await watch.reached(State.AUTHENTICATING)
        if fault == "close":
            await within(gate.arrived.wait())
            gate.release("close")
        else:
            await strike_or_return(client, ctl, task, fault)
        return task, START_TIMEOUT + SLACK

    if phase is State.AUTHENTICATED:
        options = {"never_ready": True} if fault == "never_ready" else {}
        if fault == "cancel":
            ref: list[asyncio.Task[Any]] = []
            cancel_on_entering(client, State.AUTHENTICATED, ref)
            task = asyncio.create_task(client.start_bot(start_request(flavor, ctl)))
            ref.append(task)
            return task, START_TIMEOUT + SLACK
        await within(client.start_bot(start_request(flavor, ctl, options)))
        assert client.state is State.AUTHENTICATED
        if fault == "disconnect":
            return asyncio.create_task(client.disconnect()), END_BOUND
        if fault == "kill":
            await ctl.kill()
        elif fault == "close":
            await ctl.terminate()
        elif fault == "stop":
            ctl.sigstop()
        return asyncio.create_task(client.connect()), connect_bound

    if phase is State.CONNECTING:
        if fault == "close":
            task = asyncio.create_task(client.connect(flavor.gate_params(gate)))
            await watch.reached(State.CONNECTING)
            await within(gate.arrived.wait())
            gate.release("close")
            return task, connect_bound
        # A stopped bot holds the handshake: the kernel accepts, nobody answers.
        await within(client.start_bot(start_request(flavor, ctl)))
        ctl.sigstop()
        task = asyncio.create_task(client.connect())
        await watch.reached(State.CONNECTING)
        if fault != "stop":
            await strike_or_return(client, ctl, task, fault)
        return task, connect_bound

    if phase is State.CONNECTED:
        # "stop": bot-ready would come after 1.5 s, but the bot is frozen before that.
        options = {"ready_delay": 1.5} if fault == "stop" else {"never_ready": True}
        task = asyncio.create_task(
            client.start_bot_and_connect(start_request(flavor, ctl, options))
        )
        await watch.reached(State.CONNECTED)
        if fault == "close":
            await ctl.terminate()
        elif fault != "never_ready":
            await strike_or_return(client, ctl, task, fault)
        return task, connect_bound

    assert phase is State.READY
    await within(
        client.start_bot_and_connect(start_request(flavor, ctl, flavor.end_options)),
        connect_bound,
    )
    task = asyncio.create_task(client.send_client_request("delay", {"seconds": 30}))
    # One loop turn lets the request task send its message (a yield, not a timed wait).
    await asyncio.sleep(0)
    if fault == "close":
        client.send_client_message("end")  # the bot ends the session (WS 1000 / peerLeft)
    else:
        await strike_or_return(client, ctl, task, fault)
    return task, REQUEST_TIMEOUT + SLACK


async def run_interop_cell(
    flavor: Flavor, ctl: BotControl, phase: State, fault: str, fd_slack: int = 0
) -> None:
    """One cell of the matrix, its checks, and the clean session after it."""
    base = snapshot()
    client = PipecatClient(
        flavor.make_transport(), connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT
    )
    rec = Recorder(client)
    watch = StateWatch(client)
    try:
        async with Gate() as gate:
            task, bound = await interop_cell(flavor, client, ctl, watch, gate, phase, fault)
            await expect(task, expected_error(flavor, phase, fault), bound)
            if phase is State.READY and (
                fault in ("cancel", "stop") or (fault == "kill" and not flavor.kill_detected)
            ):
                # Only the request is forgotten; the session goes on until the client ends it.
                assert client.state is State.READY and pending_requests(client) == 0
            await within(client.disconnect(), END_BOUND)
            assert client.state is State.DISCONNECTED
            assert rec.count("on_disconnected") == 1
            assert pending_requests(client) == 0
            await gate.drain()
        await ctl.recover()
        await assert_no_leaks(base, fd_slack=fd_slack)

        # The same client then runs a clean session.
        watch.reset()
        await within(
            client.start_bot_and_connect(start_request(flavor, ctl)), CONNECT_TIMEOUT + SLACK
        )
        assert client.state is State.READY
        assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}
        await within(client.disconnect(), END_BOUND)
        assert client.state is State.DISCONNECTED
        assert rec.count("on_disconnected") == 2
        await assert_no_leaks(base, fd_slack=fd_slack)
    finally:
        ctl.sigcont()
        await within(client.disconnect(), END_BOUND)
