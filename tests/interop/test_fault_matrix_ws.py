"""Fault matrix over WebSocket against the real Pipecat 1.14 bot (its own bot process).

Same cells and assertions as tests/test_fault_matrix_loopback.py. The faults are real: the
bot process is SIGKILLed, SIGTERMed (the server closes its connections: WS 1012), SIGSTOPped
(the server stops answering; SIGCONT afterwards), or started with ``never_ready``. A start
request or a handshake is held in flight by ``/start?delay=`` or by a stopped bot (the kernel
still accepts the TCP connection); where the real server cannot close a connection
mid-request (authenticating, connecting) a :class:`Gate` stub server closes it.

The engine (:func:`run_interop_cell`, tests/support/fault_matrix_interop.py) is shared with the
SmallWebRTC matrix through :class:`Flavor`; the bot fixtures are in tests/interop/conftest.py.
"""

from __future__ import annotations

import pytest

from lifecycle import State
from tests.support.fault_matrix import MATRIX
from tests.support.fault_matrix_interop import BotControl, Flavor, run_interop_cell
from transports.websocket import WebSocketTransport

WS = Flavor(
    name="ws",
    start_path="/start",
    make_transport=WebSocketTransport,
    gate_params=lambda gate: {"wsUrl": gate.url("ws", "/ws/held")},
    kill_detected=True,
    end_options={},
)


@pytest.mark.parametrize(("phase", "fault"), MATRIX)
async def test_fault_matrix_ws(control: BotControl, phase: State, fault: str) -> None:
    await run_interop_cell(WS, control, phase, fault)
