"""WebSocketTransport against TestingBotServer and hand-made faulty WebSocket servers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from lifecycle import (
    AudioFrame,
    AuthenticationError,
    MessageError,
    PipecatClient,
    SessionCancelledError,
    StartBotError,
    State,
    TransportError,
)
from lifecycle.rtvi import make_message
from tests.support.recorder import WAIT, Recorder, within
from tests.support.tls import tls_pair
from transports._pb import frames_pb2 as pb
from transports.base import ConnectRequest
from transports.testing import TestingBotServer
from transports.websocket import (
    WebSocketTransport,
    decode_frame,
    encode_audio,
    encode_message,
)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLIENT_READY = make_message("client-ready", {"version": "2.2.0", "about": {}}, "ready-1")


class Events:
    """A TransportEvents sink that queues what happened."""

    def __init__(self) -> None:
        self.connected = 0
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def transport_connected(self) -> None:
        self.connected += 1

    def message_received(self, message: Any) -> None:
        self.queue.put_nowait(("message", message))

    def message_dropped(self, reason: str) -> None:
        self.queue.put_nowait(("dropped", reason))

    def audio_received(self, frame: AudioFrame) -> None:
        self.queue.put_nowait(("audio", frame))

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        self.queue.put_nowait(("closed", {"clean": clean, "error": error, "reason": reason}))

    async def next(self) -> tuple[str, Any]:
        return await within(self.queue.get())

    async def next_message(self) -> dict[str, Any]:
        kind, value = await self.next()
        assert kind == "message", (kind, value)
        return value if isinstance(value, dict) else json.loads(value)


@pytest.fixture
async def server() -> AsyncIterator[TestingBotServer]:
    async with TestingBotServer() as s:
        yield s


@contextlib.asynccontextmanager
async def ws_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: Any
) -> AsyncIterator[str]:
    """A one-off websockets server on 127.0.0.1; yields its ws:// URL."""
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"
        srv.close()
        await within(srv.wait_closed())


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None) -> AsyncIterator[int]:
    """A TCP server answering every connection with ``reply`` (None: never answers)."""
    conns: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if reply is not None:
            writer.write(reply)
            await writer.drain()
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        for w in conns:
            w.close()
        srv.close()
        await within(srv.wait_closed())


async def connect_ready(transport: WebSocketTransport, url: str) -> Events:
    events = Events()
    await within(transport.connect(ConnectRequest(params={"wsUrl": url}), events))
    return events


# --- wire format ---------------------------------------------------------------------------


def test_message_frame_wire_format() -> None:
    data = encode_message({"label": "rtvi-ai", "type": "x"})
    # Frame field 4 (message), length-delimited; MessageFrame field 1 (data), string.
    assert data[0] == 0x22
    inner = pb.MessageFrame.FromString(pb.Frame.FromString(data).message.SerializeToString())
    assert json.loads(inner.data) == {"label": "rtvi-ai", "type": "x"}
    assert decode_frame(data) == inner.data


def test_audio_frame_wire_format() -> None:
    frame = AudioFrame(b"\x01\x02\x03\x04", 16000, 1)
    data = encode_audio(frame)
    assert data[0] == 0x12  # Frame field 2 (audio)
    parsed = pb.Frame.FromString(data).audio
    assert (parsed.audio, parsed.sample_rate, parsed.num_channels) == (
        b"\x01\x02\x03\x04",
        16000,
        1,
    )
    assert decode_frame(data) == frame


def test_synthetic_messages_for_other_frames() -> None:
    t = pb.Frame(transcription=pb.TranscriptionFrame(text="hi", user_id="u", timestamp="t"))
    assert decode_frame(t.SerializeToString()) == {
        "label": "rtvi-ai",
        "type": "transport-transcription",
        "data": {"text": "hi", "user_id": "u", "timestamp": "t"},
    }
    text = pb.Frame(text=pb.TextFrame(text="yo")).SerializeToString()
    assert decode_frame(text) == {
        "label": "rtvi-ai",
        "type": "transport-text",
        "data": {"text": "yo"},
    }
    intr = pb.Frame(interruption=pb.InterruptionFrame()).SerializeToString()
    assert decode_frame(intr)["type"] == "transport-interruption"  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",  # not protobuf
        b"",  # an empty Frame: no oneof set
        pb.Frame(audio=pb.AudioRawFrame(audio=b"\x00\x00", num_channels=1)).SerializeToString(),
        pb.Frame(
            audio=pb.AudioRawFrame(audio=b"\x00", sample_rate=16000, num_channels=1)
        ).SerializeToString(),
    ],
)
def test_unusable_frames_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_frame(data)


# --- connect ---------------------------------------------------------------------------------


async def test_connect_with_start_response_and_bot_ready(server: TestingBotServer) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        response = (await within(http.post(server.start_url, json={}))).json()
    transport = WebSocketTransport()
    events = Events()
    await within(transport.connect(ConnectRequest(params=response), events))
    assert events.connected == 1 and transport.connected
    transport.send_message(CLIENT_READY)
    ready = await events.next_message()
    assert ready["type"] == "bot-ready" and ready["id"] == "ready-1"
    assert ready["data"]["about"]["library"] == "pipecat-lifecycle-testing"
    await within(transport.disconnect())
    assert not transport.connected


@pytest.mark.parametrize("how", ["ctor", "wsUrl", "ws_url"])
async def test_url_sources(server: TestingBotServer, how: str) -> None:
    transport = WebSocketTransport(server.ws_url if how == "ctor" else "ws://127.0.0.1:1/bad")
    params = None if how == "ctor" else {how: server.ws_url}
    events = Events()
    await within(transport.connect(ConnectRequest(params=params), events))
    transport.send_message(CLIENT_READY)
    assert (await events.next_message())["type"] == "bot-ready"
    await within(transport.disconnect())


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:1/ws", "not a url"])
async def test_bad_or_missing_url_raises(url: str | None) -> None:
    with pytest.raises(TransportError):
        await within(WebSocketTransport(url).connect(ConnectRequest(), Events()))


async def test_refused_port_raises() -> None:
    transport = WebSocketTransport("ws://127.0.0.1:1/ws")
    with pytest.raises(OSError):
        await within(transport.connect(ConnectRequest(), Events()))
    assert not transport.connected


async def test_html_answer_to_handshake_raises() -> None:
    body = b"<html><body>Internal Server Error</body></html>"
    reply = (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    async with raw_server(reply) as port:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws")
        with pytest.raises(Exception) as info:
            await within(transport.connect(ConnectRequest(), Events()))
        assert "500" in str(info.value)


async def test_silent_handshake_times_out() -> None:
    async with raw_server(None) as port:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws", open_timeout=0.3)
        with pytest.raises(TimeoutError):
            await within(transport.connect(ConnectRequest(), Events()))


async def test_headers_sent_and_token_never_logged() -> None:
    seen: list[Request] = []

    def record(connection: ServerConnection, request: Request) -> None:
        seen.append(request)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(handler, process_request=record) as url:
        transport = WebSocketTransport(headers={"Authorization": "Bearer s3cr3t-header"})
        with structlog.testing.capture_logs() as logs:
            params = {"wsUrl": url + "?token=s3cr3t-query", "token": "s3cr3t-token"}
            await within(transport.connect(ConnectRequest(params=params), Events()))
            await within(transport.disconnect())
        assert seen[0].headers["Authorization"] == "Bearer s3cr3t-header"
        assert "s3cr3t" not in repr(logs)


async def test_start_response_token_and_headers_go_on_the_handshake() -> None:
    seen: list[Request] = []

    def record(connection: ServerConnection, request: Request) -> None:
        seen.append(request)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with ws_server(handler, process_request=record) as url:
        transport = WebSocketTransport(headers={"X-App": "mine"})
        params = {"wsUrl": url, "token": "t0k", "headers": {"X-Session": "42", "x-app": "theirs"}}
        await within(transport.connect(ConnectRequest(params=params), Events()))
        await within(transport.disconnect())
        headers = seen[0].headers
        assert headers["Authorization"] == "Bearer t0k"
        assert headers["X-Session"] == "42"
        assert headers.get_all("X-App") == ["mine"]  # the constructor's own headers win


async def test_messages_are_binary_frames_in_order() -> None:
    got: list[str | bytes] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            got.append(data)
            if len(got) == 300:
                done.set()

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url)
        await connect_ready(transport, url)
        for i in range(300):
            transport.send_message(make_message("client-message", {"t": "n", "d": i}, str(i)))
        await within(done.wait())
        await within(transport.disconnect())
    assert all(isinstance(g, bytes) for g in got)
    order = [json.loads(pb.Frame.FromString(g).message.data)["data"]["d"] for g in got]  # type: ignore[arg-type]
    assert order == list(range(300))


async def test_send_when_not_connected_raises() -> None:
    transport = WebSocketTransport("ws://127.0.0.1:1/ws")
    with pytest.raises(TransportError):
        transport.send_message(CLIENT_READY)
    with pytest.raises(TransportError):
        transport.send_audio(AudioFrame(b"\x00\x00", 16000, 1))
    await within(transport.disconnect())  # never connected: a no-op


# --- inbound faults ---------------------------------------------------------------------------


async def test_bad_frames_are_dropped_and_session_goes_on() -> None:
    after = encode_message({"label": "rtvi-ai", "type": "after"})

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"label": "rtvi-ai", "type": "text-frame"}')  # text frame
        await ws.send(b"\xff\xfe\xfd garbage")  # undecodable protobuf
        await ws.send(encode_message({"label": "rtvi-ai", "type": "big", "pad": "x" * 5000}))
        await ws.send(after)
        await ws.wait_closed()

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url, max_message_size=4096)
        events = await connect_ready(transport, url)
        kinds = [await events.next() for _ in range(3)]
        assert [k for k, _ in kinds] == ["dropped", "dropped", "dropped"]
        assert "text" in kinds[0][1] and "protobuf" in kinds[1][1] and "4096" in kinds[2][1]
        assert (await events.next_message())["type"] == "after"
        assert transport.connected
        await within(transport.disconnect())


async def test_frame_beyond_hard_cap_closes_connection() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00" * (16 * 1024 + 1))
        await ws.wait_closed()

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url, max_message_size=1024)
        events = await connect_ready(transport, url)
        kind, info = await events.next()
        assert kind == "closed" and info["clean"] is False
        await within(transport.disconnect())


@pytest.mark.parametrize(
    ("code", "clean"), [(1000, True), (1011, False), (1012, False), (None, False)]
)
async def test_bot_side_close(code: int | None, clean: bool) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        if code is None:
            ws.transport.abort()  # lost without a close frame
        else:
            await ws.close(code)

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url)
        events = await connect_ready(transport, url)
        transport.send_message(CLIENT_READY)
        kind, info = await events.next()
        assert kind == "closed"
        assert info["clean"] is clean
        assert info["reason"] == f"close {code or 1006}"
        assert not transport.connected
        with pytest.raises(TransportError):
            transport.send_message(CLIENT_READY)
        await within(transport.disconnect())


async def test_client_disconnect_closes_with_1000_and_reports_nothing() -> None:
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url)
        events = await connect_ready(transport, url)
        before = len(asyncio.all_tasks())
        await within(transport.disconnect())
        await within(transport.disconnect())  # idempotent
        assert len(asyncio.all_tasks()) <= before - 2  # reader and writer are gone
        assert events.queue.empty()
    assert codes == [1000]


async def test_disconnect_of_unresponsive_peer_is_bounded() -> None:
    # A peer that completes the handshake, then never reads again: the close handshake
    # cannot finish, and disconnect() still returns within its bound.
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        held.append(writer)

    held: list[asyncio.StreamWriter] = []
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws")
        events = await connect_ready(transport, f"ws://127.0.0.1:{port}/ws")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await within(transport.disconnect(), 6.0)
        assert loop.time() - started < 4.0
        assert not transport.connected and events.queue.empty()
    finally:
        for w in held:
            w.close()
        srv.close()
        await within(srv.wait_closed())


async def test_reconnect_same_instance_and_no_task_growth(server: TestingBotServer) -> None:
    transport = WebSocketTransport(server.ws_url)
    baseline = set(asyncio.all_tasks())
    for _ in range(10):
        events = await connect_ready(transport, server.ws_url)
        transport.send_message(CLIENT_READY)
        assert (await events.next_message())["type"] == "bot-ready"
        await within(transport.disconnect())
    # The test server's side of the last connection (websockets' protocol_handler, its
    # keepalive) may end a loop turn after disconnect() returned (Python 3.12+); a task the
    # transport leaked would never end.
    extra = [t for t in asyncio.all_tasks() if t not in baseline]
    if extra:
        await asyncio.wait(extra, timeout=WAIT)
    assert [t for t in extra if not t.done()] == []


async def test_connect_again_after_bot_left(server: TestingBotServer) -> None:
    transport = WebSocketTransport(server.ws_url)
    events = await connect_ready(transport, server.ws_url)
    transport.send_message(make_message("disconnect-bot"))
    kind, info = await events.next()
    assert (kind, info["clean"], info["reason"]) == ("closed", True, "close 1000")
    events = await connect_ready(transport, server.ws_url)  # no disconnect() in between
    transport.send_message(CLIENT_READY)
    assert (await events.next_message())["type"] == "bot-ready"
    await within(transport.disconnect())


async def test_second_connect_while_connected_raises(server: TestingBotServer) -> None:
    transport = WebSocketTransport(server.ws_url)
    await connect_ready(transport, server.ws_url)
    with pytest.raises(TransportError):
        await within(transport.connect(ConnectRequest(), Events()))
    await within(transport.disconnect())


async def test_audio_both_ways(server: TestingBotServer) -> None:
    transport = WebSocketTransport(server.ws_url)
    events = await connect_ready(transport, server.ws_url)
    transport.send_audio(AudioFrame(b"\x01\x00" * 160, 16000, 1))
    transport.send_message(make_message("client-message", {"t": "audio", "d": {"ms": 80}}, "a"))
    frames = [await events.next() for _ in range(2)]
    assert [k for k, _ in frames] == ["audio", "audio"]
    assert all(f.sample_rate == 16000 and len(f.pcm) == 1280 for _, f in frames)
    assert (await events.next_message())["type"] == "server-response"
    assert server.received_audio == [AudioFrame(b"\x01\x00" * 160, 16000, 1)]
    await within(transport.disconnect())


async def test_cancelled_connect_leaves_nothing() -> None:
    handshake_sent = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        handshake_sent.set()  # the client now waits for an answer that never comes

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws")
        before = len(asyncio.all_tasks())
        task = asyncio.create_task(transport.connect(ConnectRequest(), Events()))
        await within(handshake_sent.wait())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await within(task)
        assert len(asyncio.all_tasks()) <= before
        assert not transport.connected
    finally:
        for writer in writers:
            writer.close()
        srv.close()
        await within(srv.wait_closed())


# --- through PipecatClient ------------------------------------------------------------------


def make_client(**kwargs: Any) -> PipecatClient:
    return PipecatClient(WebSocketTransport(), connect_timeout=3.0, request_timeout=3.0, **kwargs)


async def test_client_full_session(server: TestingBotServer) -> None:
    client = make_client()
    rec = Recorder(client)
    ready = await within(client.start_bot_and_connect(server.start_url))
    assert client.state is State.READY and ready.version == "2.2.0"
    assert await within(client.send_client_request("echo", {"x": 1})) == {"x": 1}
    with pytest.raises(MessageError):
        await within(client.send_client_request("error", {"message": "nope"}))
    assert await within(client.send_client_request("push", {"p": 2})) == {"pushed": True}
    assert (await rec.wait_for("on_server_message"))[0] == {"p": 2}
    assert await within(client.send_client_request("audio", {"ms": 120})) == {"sent": True}
    assert rec.count("on_bot_audio") == 3
    await within(client.send_audio(AudioFrame(b"\x00\x00" * 320, 16000, 1)))
    await within(client.disconnect())
    assert client.state is State.DISCONNECTED
    assert rec.count("on_bot_disconnected") == 0 and rec.count("on_disconnected") == 1


async def test_every_log_line_of_a_session_carries_session_id(server: TestingBotServer) -> None:
    client = make_client()
    with structlog.testing.capture_logs() as logs:
        await within(client.start_bot_and_connect(server.start_url))
        await within(client.send_client_request("echo", 1))
        await within(client.disconnect())
    assert any(e.get("transport") == "websocket" for e in logs)
    assert all(e.get("session_id") == 1 for e in logs), [e for e in logs if "session_id" not in e]


async def test_client_bot_ends_session(server: TestingBotServer) -> None:
    client = make_client()
    rec = Recorder(client)
    await within(client.start_bot_and_connect(server.start_url))
    client.send_client_message("end")
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED
    assert rec.count("on_bot_disconnected") == 1 and rec.count("on_error") == 0
    await within(client.disconnect())


async def test_client_disconnect_bot(server: TestingBotServer) -> None:
    client = make_client()
    rec = Recorder(client)
    await within(client.start_bot_and_connect(server.start_url))
    await within(client.disconnect_bot())
    await rec.wait_for("on_disconnected")
    assert rec.count("on_bot_disconnected") == 1


async def test_client_fatal_error(server: TestingBotServer) -> None:
    client = make_client()
    rec = Recorder(client)
    await within(client.start_bot_and_connect(server.start_url))
    client.send_client_message("fatal")
    (error,) = await rec.wait_for("on_error")
    assert error.fatal is True and error.message == "requested fatal"
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED


async def test_client_transport_lost_after_ready() -> None:
    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            msg = json.loads(pb.Frame.FromString(data).message.data)  # type: ignore[arg-type]
            if msg["type"] == "client-ready":
                ready = make_message("bot-ready", {"version": "2.2.0"}, msg["id"])
                await ws.send(encode_message(ready))
            else:
                await ws.close(1011)

    async with ws_server(handler) as url:
        client = PipecatClient(WebSocketTransport(url), connect_timeout=3.0)
        rec = Recorder(client)
        await within(client.connect())
        client.send_client_message("anything")
        (error,) = await rec.wait_for("on_error")
        assert error.fatal is True
        await rec.wait_for("on_disconnected")
        assert rec.count("on_bot_disconnected") == 1


async def test_client_start_errors(server: TestingBotServer) -> None:
    client = make_client()
    with pytest.raises(AuthenticationError):
        await within(client.start_bot_and_connect(server.base_url + "/unauthorized"))
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot_and_connect(server.base_url + "/broken"))
    assert info.value.status == 500
    assert client.state is State.DISCONNECTED


async def test_client_connect_refused_is_transport_error() -> None:
    client = PipecatClient(WebSocketTransport("ws://127.0.0.1:1/ws"), connect_timeout=3.0)
    with pytest.raises(TransportError) as info:
        await within(client.connect())
    assert isinstance(info.value.__cause__, OSError)
    assert client.state is State.DISCONNECTED


@pytest.mark.parametrize("phase", ["authenticating", "connected"])
async def test_client_disconnect_during_startup(server: TestingBotServer, phase: str) -> None:
    client = make_client()
    rec = Recorder(client)
    if phase == "authenticating":
        url = server.start_url + "?delay=5"
        task = asyncio.create_task(client.start_bot_and_connect(url))
    else:
        task = asyncio.create_task(
            client.connect({"wsUrl": server.ws_url + "/x"})  # then hold bot-ready back
        )
        server.send_bot_ready = False
    target = State.AUTHENTICATING if phase == "authenticating" else State.CONNECTED

    async def reached() -> None:
        while client.state is not target:
            await rec.wait_for("on_transport_state_changed", len(rec.states()) + 1)

    await within(reached())
    await within(client.disconnect())
    with pytest.raises(SessionCancelledError):
        await within(task)
    assert client.state is State.DISCONNECTED
    server.send_bot_ready = True


# --- TLS -----------------------------------------------------------------------------------


async def test_wss_verifies_by_default_and_accepts_given_context(tmp_path: Any) -> None:
    import ssl

    server_ctx, client_ctx = tls_pair(tmp_path)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
        url = f"wss://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/ws"
        with pytest.raises(ssl.SSLCertVerificationError):
            await within(WebSocketTransport(url).connect(ConnectRequest(), Events()))
        transport = WebSocketTransport(url, ssl=client_ctx)
        events = Events()
        await within(transport.connect(ConnectRequest(), events))
        assert events.connected == 1
        await within(transport.disconnect())
        srv.close()
        await within(srv.wait_closed())
