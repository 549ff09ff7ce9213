"""Checks of the interop bot server itself (routes, RTVI basics, fixture restart).

These use only httpx/websockets and a hand-rolled protobuf codec, so they do not depend on the
client library being written alongside.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.processes import BotServer, protobuf_check

CLIENT_READY = {
    "label": "rtvi-ai",
    "type": "client-ready",
    "id": "1",
    "data": {
        "version": "2.2.0",
        "about": {"library": "interop-test", "library_version": "0", "platform": "linux"},
    },
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def encode_message(msg: dict[str, Any]) -> bytes:
    """Frame{message=MessageFrame{data=json}} exactly as Pipecat writes it (json.dumps)."""
    data = json.dumps(msg).encode()
    inner = b"\x0a" + _varint(len(data)) + data
    return b"\x22" + _varint(len(inner)) + inner


def decode(raw: bytes) -> tuple[str, Any]:
    """('message', dict) | ('audio', n_bytes) | ('other', field_no)."""
    tag, i = _read_varint(raw, 0)
    length, i = _read_varint(raw, i)
    body = raw[i : i + length]
    field = tag >> 3
    if field == 4:
        _, j = _read_varint(body, 0)
        n, j = _read_varint(body, j)
        return "message", json.loads(body[j : j + n])
    if field == 2:
        j, audio = 0, 0
        while j < len(body):
            t, j = _read_varint(body, j)
            if t & 7 == 2:
                n, j = _read_varint(body, j)
                if t >> 3 == 3:
                    audio = n
                j += n
            else:
                _, j = _read_varint(body, j)
        return "audio", audio
    return "other", field


async def start_session(base_url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base_url}/start", json=options or {})
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data


async def recv_message(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, bytes)
            kind, body = decode(raw)
            if kind == "message":
                msg: dict[str, Any] = body
                return msg


async def connect_ready(base_url: str, options: dict[str, Any] | None = None) -> ClientConnection:
    info = await start_session(base_url, options)
    ws = await websockets.connect(info["wsUrl"])
    await ws.send(encode_message(CLIENT_READY))
    msg = await recv_message(ws)
    assert msg["type"] == "bot-ready"
    assert msg["id"] == "1"
    return ws


async def wait_closed(ws: ClientConnection, within: float = 10.0) -> tuple[int | None, float]:
    t0 = time.perf_counter()
    async with asyncio.timeout(within):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            return code, time.perf_counter() - t0


async def test_http_routes(bot_server: BotServer) -> None:
    async with httpx.AsyncClient(base_url=bot_server.base_url) as http:
        r = await http.post("/start", json={"ready_delay": 0})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"wsUrl", "sessionId", "token"}
        assert body["wsUrl"] == f"ws://127.0.0.1:{bot_server.port}/ws/{body['sessionId']}"

        r = await http.post("/unauthorized")
        assert r.status_code == 401
        assert r.json() == {"detail": "unauthorized"}

        r = await http.post("/broken")
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")

        r = await http.post("/api/start", json={})
        assert set(r.json()) == {"sessionId"}

        t0 = time.perf_counter()
        r = await http.post("/start?delay=0.3", json={})
        assert r.status_code == 200
        assert time.perf_counter() - t0 >= 0.3


async def test_ws_messages_and_end(bot_server: BotServer) -> None:
    ws = await connect_ready(bot_server.base_url)
    req = {"label": "rtvi-ai", "type": "client-message", "id": "m1", "data": {"t": "echo"}}
    req["data"] = {"t": "echo", "d": {"x": [1, 2]}}
    await ws.send(encode_message(req))
    resp = await recv_message(ws)
    assert resp == {
        "label": "rtvi-ai",
        "type": "server-response",
        "id": "m1",
        "data": {"t": "echo", "d": {"x": [1, 2]}},
    }
    req = {"label": "rtvi-ai", "type": "client-message", "id": "m2", "data": {"t": "error"}}
    await ws.send(encode_message(req))
    resp = await recv_message(ws)
    assert resp["type"] == "error-response"
    assert resp["data"] == {"error": "requested error"}

    req = {"label": "rtvi-ai", "type": "client-message", "id": "m3", "data": {"t": "end"}}
    await ws.send(encode_message(req))
    code, _ = await wait_closed(ws)
    assert code == 1000


async def test_never_ready(bot_server: BotServer) -> None:
    info = await start_session(bot_server.base_url, {"never_ready": True})
    async with websockets.connect(info["wsUrl"]) as ws:
        await ws.send(encode_message(CLIENT_READY))
        with pytest.raises(TimeoutError):
            await recv_message(ws, within=1.0)


async def test_protobuf_bytes_match_pipecat(
    bot_server: BotServer, interop_python_path: Any
) -> None:
    msg = {"label": "rtvi-ai", "type": "client-message", "id": "7", "data": {"t": "é", "d": 1}}
    ours = encode_message(msg)
    theirs = await asyncio.to_thread(
        protobuf_check, interop_python_path, "--encode-message", json.dumps(msg)
    )
    assert theirs == ours.hex()
    decoded = json.loads(await asyncio.to_thread(protobuf_check, interop_python_path, ours.hex()))
    assert decoded == {"kind": "InputTransportMessageFrame", "message": msg}


async def test_sigterm_then_restart(bot_server: BotServer) -> None:
    await asyncio.to_thread(bot_server.ensure_running)
    ws = await connect_ready(bot_server.base_url)
    port = bot_server.port
    closed = asyncio.create_task(wait_closed(ws))
    rc = await asyncio.to_thread(bot_server.stop)
    code, _ = await closed
    assert code == 1012  # uvicorn's "service restart" at shutdown
    assert rc == -15  # uvicorn re-raises the SIGTERM after its graceful shutdown
    await asyncio.to_thread(bot_server.restart)
    assert bot_server.port == port
    ws = await connect_ready(bot_server.base_url)
    await ws.close()


async def test_sigkill_then_restart(bot_server: BotServer) -> None:
    await asyncio.to_thread(bot_server.ensure_running)
    ws = await connect_ready(bot_server.base_url)
    closed = asyncio.create_task(wait_closed(ws))
    await asyncio.to_thread(bot_server.kill)
    code, _ = await closed
    assert code is None  # no close frame: the TCP connection just drops
    await asyncio.to_thread(bot_server.restart)
    ws = await connect_ready(bot_server.base_url)
    await ws.close()
