"""WebSocketTransport against TestingBotServer and hand-made faulty WebSocket servers."""

from __future__ import annotations

import asyncio
import json
import logging
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
from tests.support.threaded import in_thread
from tests.support.tls import tls_pair
from tests.support.ws_servers import raw_server, raw_ws_server, ws_server
from transports._pb import frames_pb2 as pb
from transports.base import ConnectRequest
from transports.testing import TestingBotServer
from transports.websocket import (
    WebSocketTransport,
    decode_frame,
    encode_audio,
    encode_message,
)

CLIENT_READY = make_message("client-ready", {"version": "2.2.0", "about": {}}, "ready-1")


class Events:
    """A TransportSink sink that queues what happened."""

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


async def test_refused_port_raises_naming_the_url() -> None:
    transport = WebSocketTransport("ws://127.0.0.1:1/ws?token=s3cr3t")
    with pytest.raises(TransportError) as info:
        await within(transport.connect(ConnectRequest(), Events()))
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert "ws://127.0.0.1:1/ws?token=***" in str(info.value)
    assert "refused" in str(info.value) and "s3cr3t" not in str(info.value)
    assert not transport.connected


async def test_the_runners_telephony_route_points_to_ws_client() -> None:
    # Runners up to 1.0 refuse an RTVI client's handshake at /ws (403): the old hint said
    # "credentials refused; a runner token is single-use".
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    async with raw_server(reply) as port:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws")
        with pytest.raises(TransportError) as info:
            await within(transport.connect(ConnectRequest(), Events()))
    assert "telephony route" in str(info.value) and "/ws-client" in str(info.value)
    assert "single-use" not in str(info.value)

    # Runners 1.4+ take the handshake, then drop the connection (1006): say why.
    async def drops(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    async with raw_ws_server(drops) as url:
        client = PipecatClient(WebSocketTransport(url), connect_timeout=5.0)
        with pytest.raises(TransportError) as dropped:
            await within(client.connect())
    assert "1006" in str(dropped.value) and "/ws-client" in str(dropped.value)


async def test_html_answer_to_handshake_raises() -> None:
    body = b"<html><body>Internal Server Error</body></html>"
    reply = (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    async with raw_server(reply) as port:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws")
        with pytest.raises(TransportError) as info:
            await within(transport.connect(ConnectRequest(), Events()))
        assert "HTTP 500" in str(info.value) and f"ws://127.0.0.1:{port}/ws" in str(info.value)


async def test_silent_handshake_times_out() -> None:
    async with raw_server(None) as port:
        transport = WebSocketTransport(f"ws://127.0.0.1:{port}/ws", open_timeout=0.3)
        with pytest.raises(TransportError) as info:
            await within(transport.connect(ConnectRequest(), Events()))
        assert isinstance(info.value.__cause__, TimeoutError)
        assert "opening handshake" in str(info.value)


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


async def test_order_holds_when_the_peer_stops_reading() -> None:
    # 16 MiB while the peer reads nothing: the socket's buffer fills, later frames wait in
    # the transport's queue, and every frame still arrives once, in the order sent.
    reading = asyncio.Event()
    got: list[int] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await reading.wait()
        async for data in ws:
            assert isinstance(data, bytes)
            got.append(int.from_bytes(pb.Frame.FromString(data).audio.audio[:4], "big"))
            if len(got) == 256:
                done.set()

    async with ws_server(handler) as url:
        transport = WebSocketTransport(url)
        await connect_ready(transport, url)
        for i in range(256):
            pcm = i.to_bytes(4, "big") + bytes(64 * 1024 - 4)
            transport.send_audio(AudioFrame(pcm=pcm, sample_rate=16000, num_channels=1))
        reading.set()
        await within(done.wait())
        await within(transport.disconnect())
    assert got == list(range(256))


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
    async with raw_ws_server() as url:
        transport = WebSocketTransport(url)
        events = await connect_ready(transport, url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await within(transport.disconnect(), 6.0)
        assert loop.time() - started < 4.0
        assert not transport.connected and events.queue.empty()


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
    assert (kind, info["clean"]) == ("closed", True)
    assert info["reason"] == "server closed the connection: code 1000 (OK)"
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
        with pytest.raises(TransportError) as info:
            await within(WebSocketTransport(url).connect(ConnectRequest(), Events()))
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert "certificate" in str(info.value)
        transport = WebSocketTransport(url, ssl=client_ctx)
        events = Events()
        await within(transport.connect(ConnectRequest(), events))
        assert events.connected == 1
        await within(transport.disconnect())
        srv.close()
        await within(srv.wait_closed())


# --- errors that say what to do (issue 12.3) and keep secrets (issue 12.10) -----------------


async def test_start_response_without_ws_url_names_its_keys_and_the_runner_body() -> None:
    response = {"sessionId": "s3cr3t-session", "iceConfig": {"iceServers": ["stun:s3cr3t"]}}
    with pytest.raises(TransportError) as info:
        await within(WebSocketTransport().connect(ConnectRequest(params=response), Events()))
    text = str(info.value)
    assert "'sessionId'" in text and "'iceConfig'" in text and "no WebSocket URL" in text
    assert '{"transport": "websocket"}' in text and "request_data" in text
    assert "s3cr3t" not in text


async def test_start_response_without_ws_url_through_the_client(http: Any) -> None:
    http.json_reply({"sessionId": "s3cr3t-id", "token": "s3cr3t-token"})
    client = make_client()
    with structlog.testing.capture_logs() as logs, pytest.raises(TransportError) as info:
        await within(client.start_bot_and_connect(http.url("/start")))
    assert "'sessionId', 'token'" in str(info.value)
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in repr(logs)
    assert client.state is State.DISCONNECTED


async def test_wss_to_a_plain_http_server_says_so() -> None:
    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # a TLS ClientHello: not HTTP, answered as uvicorn does
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(plain_http, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        url = f"wss://127.0.0.1:{port}/ws-client?token=s3cr3t"
        client = PipecatClient(WebSocketTransport(url), connect_timeout=3.0)
        with pytest.raises(TransportError) as info:
            await within(client.connect())
    finally:
        srv.close()
        await within(srv.wait_closed())
    text = str(info.value)
    assert f"wss://127.0.0.1:{port}/ws-client?token=***" in text
    assert "TLS" in text and "ws://" in text and "s3cr3t" not in text


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


async def test_cause_of_an_invalid_uri_keeps_no_token() -> None:
    import traceback

    secret = "s3" + "cr3t"  # built here, so that the traceback's source lines do not show it
    client = PipecatClient(WebSocketTransport(), connect_timeout=3.0)
    with pytest.raises(TransportError) as info:
        await within(client.connect({"wsUrl": "ws:///ws?token=" + secret}))
    err = info.value
    assert "?token=***" in str(err)
    assert err.__cause__ is not None and err.__context__ is None
    for exc in _chain(err):
        assert "s3cr3t" not in str(exc) and "s3cr3t" not in repr(exc.args)
    assert "s3cr3t" not in "".join(traceback.format_exception(err))


@pytest.mark.parametrize("where", ["headers", "token"])
async def test_header_value_with_crlf_never_shown(where: str, caplog: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    caplog.set_level(logging.DEBUG)
    async with ws_server(handler) as url:
        params: dict[str, Any] = {"wsUrl": url}
        if where == "headers":
            params["headers"] = {"X-Api-Key": "s3cr3t\r\nX-Evil: 1"}
        else:
            params["token"] = "s3cr3t\r\n"
        client = PipecatClient(WebSocketTransport(), connect_timeout=3.0)
        with structlog.testing.capture_logs() as logs, pytest.raises(TransportError) as info:
            await within(client.connect(params))
    name = "X-Api-Key" if where == "headers" else "Authorization"
    assert name in str(info.value) and "not shown" in str(info.value)
    for exc in _chain(info.value):
        assert "s3cr3t" not in str(exc) and "s3cr3t" not in repr(exc)
    assert "s3cr3t" not in repr(logs) and "s3cr3t" not in caplog.text


def test_constructor_refuses_a_crlf_header_without_quoting_it() -> None:
    with pytest.raises(ValueError) as info:
        WebSocketTransport(headers={"Authorization": "Bearer s3cr3t\r\n"})
    assert "Authorization" in str(info.value) and "s3cr3t" not in str(info.value)


async def test_websockets_debug_lines_show_no_message_payload(caplog: Any) -> None:
    got = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            await ws.send(data)  # echoed: the inbound frame is logged too
            got.set()

    caplog.set_level(logging.DEBUG)  # every logger, websockets' included
    async with ws_server(handler) as url:
        transport = WebSocketTransport(url)
        events = await connect_ready(transport, url)
        secret = make_message("client-message", {"t": "login", "d": {"password": "hunter2-pw"}})
        transport.send_message(secret)
        await within(got.wait())
        await events.next_message()
        await within(transport.disconnect())
    client_lines = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    assert any("BINARY [" in line and "payload not logged" in line for line in client_lines)
    assert "hunter2" not in "\n".join(client_lines)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"dead_peer_timeout": 0}, "dead_peer_timeout"),
        ({"dead_peer_timeout": float("nan")}, "dead_peer_timeout"),
        ({"dead_peer_timeout": float("inf")}, "dead_peer_timeout"),
        ({"dead_peer_timeout": "5"}, "dead_peer_timeout"),
        ({"open_timeout": -1.0}, "open_timeout"),
        ({"open_timeout": None}, "open_timeout"),
    ],
)
def test_timeouts_are_validated(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        WebSocketTransport(**kwargs)


# --- a client may move to a new event loop between sessions (issue 12.9) --------------------


def test_transport_survives_the_event_loop_ending_while_connected() -> None:
    with in_thread(TestingBotServer()) as server:
        transport = WebSocketTransport(server.ws_url)

        async def session() -> None:
            events = Events()
            await within(transport.connect(ConnectRequest(), events))
            transport.send_message(CLIENT_READY)
            assert (await events.next_message())["type"] == "bot-ready"
            # no disconnect(): asyncio.run() ends with the session up

        asyncio.run(session())
        asyncio.run(session())  # a new loop: the old connection is dropped, not awaited

        async def last() -> None:
            await session()
            await within(transport.disconnect())

        asyncio.run(last())
        assert not transport.connected


def test_client_and_transport_on_two_event_loops_in_a_row() -> None:
    with in_thread(TestingBotServer()) as server:
        client = PipecatClient(WebSocketTransport(), connect_timeout=3.0, request_timeout=3.0)

        async def session() -> None:
            # The last loop ended with the session READY, without disconnect().
            await within(client.start_bot_and_connect(server.start_url))
            assert await within(client.send_client_request("echo", {"n": 1})) == {"n": 1}

        asyncio.run(session())
        asyncio.run(session())

        async def end() -> None:
            await within(client.disconnect())

        asyncio.run(end())
        assert client.state is State.DISCONNECTED


async def test_ws_to_a_tls_server_suggests_wss(tmp_path: Any) -> None:
    server_ctx, _ = tls_pair(tmp_path)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as srv:
        url = f"ws://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/ws"
        with pytest.raises(TransportError) as info:
            await within(WebSocketTransport(url).connect(ConnectRequest(), Events()))
        srv.close()
        await within(srv.wait_closed())
    assert "use wss://" in str(info.value) and url in str(info.value)
