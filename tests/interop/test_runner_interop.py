"""The client against Pipecat's development runner (``pipecat.runner`` 1.14, what ``python bot.py``
serves), with tests/interop/runner_bot.py as the ``bot.py``.

Two runners, started once for the module: one plain, one with ``--ws-auth token``, both with
``--host localhost`` (any other host makes the runner answer ``wss://`` URLs for its plain-HTTP
server). Every start style a user has:

* WebSocket: ``POST /start {"transport": "websocket"}`` through ``start_bot_and_connect``;
  ``start_bot`` then ``connect`` with the answer's ``wsUrl`` (and ``token``); a WebSocket
  straight to ``ws://localhost:PORT/ws-client``.
* SmallWebRTC: ``POST /start`` (webrtc is the runner's default) then the offer to
  ``/sessions/{sessionId}/api/offer``; the direct ``/api/offer``.

Each session reaches READY, makes a round trip (``send_text`` -> ``user-input`` with its id:
the runner's bot answers no client-message) and ends cleanly.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lifecycle import (
    APIRequest,
    PipecatClient,
    PipecatClientError,
    State,
    TransportError,
)
from tests.support.interop_bots import BotProcess, EventLog
from transports.websocket import WebSocketTransport

T = 15.0
AUTH_MODES = ["none", "token"]
REPO = Path(__file__).resolve().parent.parent.parent


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


@pytest.fixture(autouse=True)
def _loopback_ice(loopback_ice: None) -> None:
    """Every test here may open a WebRTC peer on this loopback-only host."""


@pytest.fixture(scope="module")
def runners(interop_python_path: Path) -> Iterator[dict[str, BotProcess]]:
    """The two runners by ``--ws-auth`` mode, started side by side."""
    log_dir = Path(tempfile.mkdtemp(prefix="pipecat-runner-"))
    bots = {
        mode: BotProcess(
            interop_python_path,
            "runner_bot.py",
            ["--host", "localhost", "--port", "{port}", "--ws-auth", mode],
            log_dir,
            host="localhost",
            name=f"runner-{mode}",
        )
        for mode in AUTH_MODES
    }
    try:
        for bot in bots.values():
            bot.launch()
        for bot in bots.values():
            bot.wait_ready()
        yield bots
    finally:
        for bot in bots.values():
            bot.stop()
        starts = ", ".join(f"{m} {b.start_seconds:.2f}s" for m, b in bots.items())
        print(f"\nrunners started in {starts}; logs in {log_dir}")


@pytest.fixture(params=AUTH_MODES)
def runner(request: pytest.FixtureRequest, runners: dict[str, BotProcess]) -> BotProcess:
    return runners[request.param]


@pytest.fixture
def plain_runner(runners: dict[str, BotProcess]) -> BotProcess:
    return runners["none"]


@pytest.fixture
async def clients() -> AsyncIterator[list[PipecatClient]]:
    """Clients a test makes; each is disconnected at the end."""
    made: list[PipecatClient] = []
    yield made
    for client in made:
        await within(client.disconnect())


def ws_start(runner: BotProcess) -> APIRequest:
    return APIRequest(f"{runner.base_url}/start", request_data={"transport": "websocket"})


async def round_trip_and_end(client: PipecatClient, log: EventLog) -> None:
    """READY, a send_text answered by user-input with its id, then a clean client end."""
    assert client.state is State.READY
    (ready,) = log.of("on_bot_ready")
    assert ready.version.startswith("2.") and ready.about.get("library") == "pipecat-ai"
    msg_id = await within(client.send_text("hello runner", audio_response=False))
    _, user_input = await log.wait_for("on_user_input", lambda u: u.msg_id == msg_id)
    assert (user_input.text, user_input.input_type) == ("hello runner", "chat")
    await within(client.disconnect())
    assert client.state is State.DISCONNECTED
    assert len(log.of("on_disconnected")) == 1
    assert log.of("on_error") == [] and log.of("on_bot_disconnected") == []


# ------------------------------------------------------------------------------ WebSocket


async def test_ws_start_bot_and_connect(runner: BotProcess, clients: list[PipecatClient]) -> None:
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    await within(client.start_bot_and_connect(ws_start(runner)))
    (response,) = log.of("on_bot_started")
    assert response["wsUrl"] == f"ws://localhost:{runner.port}/ws-client"
    await round_trip_and_end(client, log)


async def test_ws_start_bot_then_connect(runner: BotProcess, clients: list[PipecatClient]) -> None:
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    response = await within(client.start_bot(ws_start(runner)))
    assert set(response) >= {"wsUrl", "sessionId", "token"}
    assert (response["token"] is not None) == (runner.args[-1] == "token")
    assert client.state is State.AUTHENTICATED
    await within(client.connect())
    await round_trip_and_end(client, log)
    if response["token"] is not None:
        # The runner's tokens are single-use: the same answer cannot open a second session.
        with pytest.raises(TransportError):
            await within(client.connect(response))
        assert client.state is State.DISCONNECTED


async def test_ws_url_from_the_answer(runner: BotProcess, clients: list[PipecatClient]) -> None:
    """The user POSTs /start themselves and builds the transport from wsUrl (and token)."""
    async with httpx.AsyncClient() as http:
        answer = await within(
            http.post(f"{runner.base_url}/start", json={"transport": "websocket"})
        )
    body = answer.json()
    headers = {"Authorization": f"Bearer {body['token']}"} if body.get("token") else None
    client = PipecatClient(WebSocketTransport(body["wsUrl"], headers=headers), connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    await within(client.connect())
    await round_trip_and_end(client, log)


async def test_ws_direct_to_ws_client(runner: BotProcess, clients: list[PipecatClient]) -> None:
    """No /start at all: the runner serves /ws-client as is, unless it requires a token."""
    url = f"ws://localhost:{runner.port}/ws-client"
    client = PipecatClient(WebSocketTransport(url), connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    if runner.args[-1] == "none":
        await within(client.connect())
        await round_trip_and_end(client, log)
        return
    # --ws-auth token: the runner refuses the handshake (close 4003 before accept: HTTP 403).
    with pytest.raises(TransportError) as info:
        await within(client.connect())
    print(f"\nws-auth token, no token: {info.value}")
    assert "ws://localhost" in str(info.value), "the error names the URL it dialled"
    assert client.state is State.DISCONNECTED and log.of("on_bot_ready") == []


async def test_ws_bot_initiated_end(plain_runner: BotProcess, clients: list[PipecatClient]) -> None:
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    await within(client.start_bot_and_connect(ws_start(plain_runner)))
    await within(client.disconnect_bot())
    await log.wait_for("on_disconnected")
    assert log.of("on_bot_disconnected") == [None] and log.of("on_error") == []
    assert client.state is State.DISCONNECTED


async def test_ws_transport_given_the_webrtc_answer(
    plain_runner: BotProcess, clients: list[PipecatClient]
) -> None:
    """``/start`` without a body answers for WebRTC (``{"sessionId"}``): the error says so."""
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    clients.append(client)
    with pytest.raises(PipecatClientError) as info:
        await within(client.start_bot_and_connect(f"{plain_runner.base_url}/start"))
    message = str(info.value)
    print(f"\nWebSocket transport, WebRTC answer: {message}")
    assert "wsUrl" in message and "sessionId" in message and "transport" in message
    assert client.state is State.DISCONNECTED


# ---------------------------------------------------------------------------- SmallWebRTC


def webrtc_client() -> PipecatClient:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport

    return PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=T)


@pytest.mark.parametrize("body", [None, {"transport": "webrtc"}], ids=["default", "webrtc"])
async def test_webrtc_start_then_session_offer(
    plain_runner: BotProcess, clients: list[PipecatClient], body: dict[str, str] | None
) -> None:
    client = webrtc_client()
    clients.append(client)
    log = EventLog(client)
    await within(
        client.start_bot_and_connect(
            APIRequest(f"{plain_runner.base_url}/start", request_data=body)
        )
    )
    (response,) = log.of("on_bot_started")
    assert set(response) == {"sessionId"}  # the offer went to /sessions/{sessionId}/api/offer
    await round_trip_and_end(client, log)


async def test_webrtc_direct_offer(plain_runner: BotProcess, clients: list[PipecatClient]) -> None:
    pytest.importorskip("aiortc")
    from transports.small_webrtc import SmallWebRTCTransport

    transport = SmallWebRTCTransport(f"{plain_runner.base_url}/api/offer", ice_servers=[])
    client = PipecatClient(transport, connect_timeout=T)
    clients.append(client)
    log = EventLog(client)
    await within(client.connect())
    await round_trip_and_end(client, log)


async def test_webrtc_bot_initiated_end(
    plain_runner: BotProcess, clients: list[PipecatClient]
) -> None:
    client = webrtc_client()
    clients.append(client)
    log = EventLog(client)
    await within(client.start_bot_and_connect(f"{plain_runner.base_url}/start"))
    await within(client.disconnect_bot())
    await log.wait_for("on_disconnected")
    assert log.of("on_bot_disconnected") == [None] and log.of("on_error") == []
    assert client.state is State.DISCONNECTED


# ----------------------------------------------------------------------------------- README


def readme_runner_example() -> str:
    """The README's real-bot example (the "Example" section's block that POSTs /start)."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Example") : readme.index("## The session lifecycle")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    (block,) = [b for b in blocks if "http://localhost:7860/start" in b]
    return str(block)


async def test_readme_runner_example_runs_as_written(runner: BotProcess) -> None:
    """12.2: the README's example reaches a runner's bot as written, port aside."""
    code = readme_runner_example().replace("localhost:7860", f"localhost:{runner.port}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    out, err = await within(proc.communicate(), 60.0)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert "bot ready, RTVI 2." in out.decode()


def test_readme_names_the_runner_endpoints() -> None:
    """The README's real-bot section names only routes the runner serves."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("Against a real bot") : readme.index("## The session lifecycle")]
    assert "/api/start" not in section
    for route in ("/start", "/ws-client", "/sessions/{sessionId}/api/offer", "/api/offer"):
        assert route in section
