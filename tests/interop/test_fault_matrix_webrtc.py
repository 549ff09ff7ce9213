"""Fault matrix over SmallWebRTC against the real Pipecat 1.14 bot (its own bot process).

Same cells, engine (tests/support/fault_matrix_interop.py) and assertions as
tests/interop/test_fault_matrix_ws.py. WebRTC specifics:
session options travel in the ``/api/start`` body; a held offer (stopped bot, or the
:class:`Gate` stub) keeps the client in CONNECTING; SIGTERM makes the bot send ``peerLeft``
(the server closes the connection); a SIGKILLed bot is noticed only by ICE consent expiry
(~30 s), so a connect or request in flight then ends by its own timeout
(ConnectionTimeoutError / RequestTimeoutError) and ``disconnect()`` stays bounded.
"""

from __future__ import annotations

import pytest

pytest.importorskip("aiortc")

import aioice.ice

from lifecycle import State
from tests.support.fault_matrix import MATRIX
from tests.support.fault_matrix_interop import BotControl, Flavor, run_interop_cell
from transports.small_webrtc import SmallWebRTCTransport


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has only loopback: let aioice gather 127.0.0.1."""

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", host_addresses)


WEBRTC = Flavor(
    name="webrtc",
    start_path="/api/start",
    make_transport=lambda: SmallWebRTCTransport(ice_servers=[]),
    gate_params=lambda gate: {"webrtcUrl": gate.url("http", "/api/offer")},
    kill_detected=False,
    # No trailing silence: the bot sends peerLeft at once when it ends the session.
    end_options={"end_silence_secs": 0},
)


@pytest.mark.parametrize(("phase", "fault"), MATRIX)
async def test_fault_matrix_webrtc(control: BotControl, phase: State, fault: str) -> None:
    await run_interop_cell(WEBRTC, control, phase, fault)
