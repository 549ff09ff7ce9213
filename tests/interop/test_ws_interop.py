"""PipecatClient + WebSocketTransport against the real Pipecat 1.14 bot (bot_server fixture)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lifecycle import (
    APIRequest,
    AudioFrame,
    AuthenticationError,
    MessageError,
    PipecatClient,
    SessionCancelledError,
    StartBotError,
    State,
    TransportError,
)
from tests.support.processes import BotServer, protobuf_check
from tests.support.recorder import Recorder, within
from transports.websocket import WebSocketTransport, decode_frame, encode_audio, encode_message

WAIT = 10.0


@pytest.fixture
def bot(bot_server: BotServer) -> BotServer:
    bot_server.ensure_running()
    return bot_server


@pytest.fixture
async def client() -> AsyncIterator[PipecatClient]:
    c = PipecatClient(WebSocketTransport(), connect_timeout=10.0, request_timeout=10.0)
    yield c
    await within(c.disconnect(), WAIT)


def start_url(bot: BotServer, query: str = "") -> str:
    return f"{bot.base_url}/start{query}"


# --- reaching READY --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["start_bot_and_connect", "start_bot_then_connect", "ws_url"])
async def test_start_styles_reach_ready(bot: BotServer, style: str) -> None:
    transport = WebSocketTransport()
    client = PipecatClient(transport, connect_timeout=10.0)
    if style == "start_bot_and_connect":
        ready = await within(client.start_bot_and_connect(start_url(bot)), WAIT)
    elif style == "start_bot_then_connect":
        response = await within(client.start_bot(start_url(bot)), WAIT)
        assert set(response) >= {"wsUrl", "sessionId", "token"}
        assert client.state is State.AUTHENTICATED
        ready = await within(client.connect(), WAIT)
    else:
        async with httpx.AsyncClient() as http:
            response = (await within(http.post(start_url(bot), json={}))).json()
        client = PipecatClient(WebSocketTransport(response["wsUrl"]), connect_timeout=10.0)
        ready = await within(client.connect(), WAIT)
    assert client.state is State.READY
    assert ready.version.startswith("2.") and ready.about.get("library") == "pipecat-ai"
    await within(client.disconnect(), WAIT)
    assert client.state is State.DISCONNECTED


# --- messages --------------------------------------------------------------------------------


async def test_requests_and_server_message(bot: BotServer, client: PipecatClient) -> None:
    rec = Recorder(client)
    await within(client.start_bot_and_connect(start_url(bot)), WAIT)
    payload = {"x": 1, "text": "héllo", "nested": {"list": [1, 2, 3]}}
    assert await within(client.send_client_request("echo", payload), WAIT) == payload
    with pytest.raises(MessageError) as info:
        await within(client.send_client_request("error", {"message": "bad thing"}), WAIT)
    assert "bad thing" in str(info.value.data)
    assert await within(client.send_client_request("push", {"p": 7}), WAIT) == {"pushed": True}
    assert (await rec.wait_for("on_server_message"))[0] == {"p": 7}
    assert await within(client.send_client_request("nonfatal", {"n": 1}), WAIT) == {"n": 1}
    (error,) = await rec.wait_for("on_error")
    assert error.fatal is False and client.state is State.READY


async def test_bot_initiated_end(bot: BotServer, client: PipecatClient) -> None:
    rec = Recorder(client)
    await within(client.start_bot_and_connect(start_url(bot)), WAIT)
    client.send_client_message("end")
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED
    assert rec.count("on_bot_disconnected") == 1
    assert rec.count("on_error") == 0


async def test_fatal_error(bot: BotServer, client: PipecatClient) -> None:
    rec = Recorder(client)
    await within(client.start_bot_and_connect(start_url(bot)), WAIT)
    client.send_client_message("fatal")
    (error,) = await rec.wait_for("on_error")
    assert error.fatal is True and error.message == "requested fatal"
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED


async def test_audio_from_and_to_the_bot(bot: BotServer, client: PipecatClient) -> None:
    rec = Recorder(client)
    await within(client.start_bot_and_connect(start_url(bot)), WAIT)
    await within(client.send_audio(AudioFrame(b"\x00\x00" * 320, 16000, 1)), WAIT)
    assert await within(client.send_client_request("audio", {"ms": 200}), WAIT) == {"sent": True}
    await within(client.send_client_request("echo", 1), WAIT)  # callbacks of before have run
    frames: list[AudioFrame] = [a[0] for a in rec.args("on_bot_audio")]
    assert frames and all(f.sample_rate == 16000 and f.num_channels == 1 for f in frames)
    assert sum(len(f.pcm) for f in frames) >= 200 * 16 * 2
    assert any(f.pcm.strip(b"\x00") for f in frames)  # the sine, not silence


# --- failures at start -----------------------------------------------------------------------


async def test_start_errors(bot: BotServer, client: PipecatClient) -> None:
    with pytest.raises(AuthenticationError) as auth:
        await within(client.start_bot_and_connect(f"{bot.base_url}/unauthorized"), WAIT)
    assert auth.value.status == 401
    with pytest.raises(StartBotError) as broken:
        await within(client.start_bot_and_connect(f"{bot.base_url}/broken"), WAIT)
    assert broken.value.status == 500 and "Internal Server Error" in str(broken.value.body)
    assert client.state is State.DISCONNECTED


async def test_server_unreachable(client: PipecatClient) -> None:
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot_and_connect("http://127.0.0.1:1/start"), WAIT)
    assert info.value.status is None
    with pytest.raises(TransportError):
        await within(client.connect({"wsUrl": "ws://127.0.0.1:1/ws/x"}), WAIT)
    assert client.state is State.DISCONNECTED


# --- disconnect at each phase ----------------------------------------------------------------


async def _disconnect_when(client: PipecatClient, rec: Recorder, target: State, task: Any) -> None:
    async def reached() -> None:
        while client.state is not target:
            await rec.wait_for("on_transport_state_changed", len(rec.states()) + 1)

    await within(reached(), WAIT)
    await within(client.disconnect(), WAIT)
    with pytest.raises(SessionCancelledError):
        await within(task, WAIT)
    assert client.state is State.DISCONNECTED


async def test_disconnect_while_authenticating(bot: BotServer, client: PipecatClient) -> None:
    rec = Recorder(client)
    task = asyncio.create_task(client.start_bot_and_connect(start_url(bot, "?delay=3")))
    await _disconnect_when(client, rec, State.AUTHENTICATING, task)


async def test_disconnect_while_connecting(client: PipecatClient) -> None:
    # A server that accepts TCP and never answers the handshake keeps us in CONNECTING.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    held: list[asyncio.StreamWriter] = []
    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        rec = Recorder(client)
        task = asyncio.create_task(client.connect({"wsUrl": f"ws://127.0.0.1:{port}/ws"}))
        await _disconnect_when(client, rec, State.CONNECTING, task)
    finally:
        for w in held:
            w.close()
        srv.close()
        await within(srv.wait_closed())


async def test_disconnect_while_connected_never_ready(
    bot: BotServer, client: PipecatClient
) -> None:
    rec = Recorder(client)
    request = APIRequest(start_url(bot), request_data={"never_ready": True})
    task = asyncio.create_task(client.start_bot_and_connect(request))
    await _disconnect_when(client, rec, State.CONNECTED, task)


# --- many sessions, resources and timings ----------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_twenty_sessions_no_growth(bot: BotServer, client: PipecatClient) -> None:
    connect_ms: list[float] = []
    echo_ms: list[float] = []

    async def session(n_echo: int) -> None:
        t0 = time.perf_counter()
        await within(client.start_bot_and_connect(start_url(bot)), WAIT)
        connect_ms.append((time.perf_counter() - t0) * 1000)
        for i in range(n_echo):
            t1 = time.perf_counter()
            assert await within(client.send_client_request("echo", i), WAIT) == i
            echo_ms.append((time.perf_counter() - t1) * 1000)
        await within(client.disconnect(), WAIT)

    for _ in range(2):  # warm up: imports, caches, the bot's first sessions
        await session(5)
    gc.collect()
    tasks0, fds0 = len(asyncio.all_tasks()), _fds()
    tracemalloc.start()
    try:
        mem0 = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            await session(10)
        gc.collect()
        mem1 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(asyncio.all_tasks()) <= tasks0
    assert _fds() <= fds0 + 1
    assert mem1 - mem0 < 1024 * 1024, f"memory grew by {mem1 - mem0} bytes over 20 sessions"
    stats = {
        "connect_ready_ms": _summary(connect_ms[2:]),
        "echo_rtt_ms": _summary(echo_ms[10:]),
        "memory_growth_bytes": mem1 - mem0,
    }
    out = Path(os.environ.get("WS_INTEROP_STATS", "/tmp/ws_interop_stats.json"))
    await asyncio.to_thread(out.write_text, json.dumps(stats, indent=2))
    print("\nws interop timings:", json.dumps(stats))


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"n": len(values), "median": statistics.median(values), "p99": p99}


# --- byte level against Pipecat's own ProtobufFrameSerializer --------------------------------


def test_our_frames_decode_in_pipecat(interop_python_path: Path) -> None:
    message = {"label": "rtvi-ai", "type": "client-message", "id": "1", "data": {"t": "é", "d": 1}}
    out = json.loads(protobuf_check(interop_python_path, encode_message(message).hex()))
    assert out == {"kind": "InputTransportMessageFrame", "message": message}
    pcm = bytes([0, 1, 2, 3, 0xFC, 0xFD, 0xFE, 0xFF])
    out = json.loads(
        protobuf_check(interop_python_path, encode_audio(AudioFrame(pcm, 24000, 2)).hex())
    )
    assert out["kind"] == "InputAudioRawFrame"
    assert (out["audio_hex"], out["sample_rate"], out["num_channels"]) == (pcm.hex(), 24000, 2)


def test_pipecat_frames_decode_in_ours(interop_python_path: Path) -> None:
    message = {"label": "rtvi-ai", "type": "server-message", "data": {"ü": [1, None, True]}}
    raw = bytes.fromhex(
        protobuf_check(interop_python_path, "--encode-message", json.dumps(message))
    )
    assert json.loads(decode_frame(raw)) == message  # type: ignore[arg-type]
    raw = bytes.fromhex(protobuf_check(interop_python_path, "--encode-audio", "--channels", "1"))
    assert decode_frame(raw) == AudioFrame(bytes([0, 1, 2, 3, 0xFC, 0xFD, 0xFE, 0xFF]), 16000, 1)
    raw = bytes.fromhex(protobuf_check(interop_python_path, "--encode-text", "hello"))
    assert decode_frame(raw) == {
        "label": "rtvi-ai",
        "type": "transport-text",
        "data": {"text": "hello"},
    }


def _definitions(proto_text: str) -> list[str]:
    """The proto's statements without comments or blank lines."""
    lines = (line.split("//", 1)[0].strip() for line in proto_text.splitlines())
    return [line for line in lines if line]


def test_our_proto_matches_the_installed_pipecat(interop_python_path: Path) -> None:
    # Pipecat's own copy, from the interop venv: our frames.proto must not drift from it.
    where = subprocess.run(
        [str(interop_python_path), "-c",
         "import pathlib, pipecat.frames as f; "
         "print(pathlib.Path(f.__file__).with_name('frames.proto'))"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    theirs = Path(where).read_text()
    ours = (Path(__file__).parents[2] / "transports" / "_pb" / "frames.proto").read_text()
    assert _definitions(ours) == _definitions(theirs)
