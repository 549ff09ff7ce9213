"""Bad input on the WebSocket path (and what the loopback tests do not cover yet).

Every case: a clear error or a logged drop (asserted on the structlog line), the session
otherwise unharmed (an echo request afterwards succeeds), never a hang (every await bounded).
The loopback versions of invalid JSON, non-object JSON, wrong label, missing type, responses
without/with an unknown id, duplicate bot-ready, oversize and other major versions live in
tests/test_client_loopback.py; /start HTML/empty bodies for start_bot alone in
tests/test_start_bot.py; transport-level frame drops in tests/test_websocket_transport.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import structlog
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from lifecycle import (
    PipecatClient,
    StartBotError,
    State,
    TransportError,
)
from lifecycle.logs import BOT_TEXT_LIMIT, FIELD_LIMIT, RateLimiter, bounded, get_logger
from lifecycle.rtvi import make_message
from transports._pb import frames_pb2 as pb
from transports.base import ConnectRequest, Transport, TransportSink
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.websocket import WebSocketTransport, encode_message

from .support.http_stub import Reply
from .support.recorder import Recorder, within

LIMIT = 4096
"""max_message_size of the clients here: small, so oversize frames are cheap."""

OTHER_MAJOR = "bot speaks another RTVI major version; continuing"


def bot_ready(version: str = "2.2.0", msg_id: Any = None) -> dict[str, Any]:
    data = {"version": version, "about": {"library": "hand-bot"}}
    return make_message("bot-ready", data, msg_id)


class HandBot:
    """A hand-made websockets bot: echoes ``client-message`` ``echo`` requests, answers
    ``client-ready`` with ``bot-ready`` (``ready_version``; ``None``: never), may send
    ``on_open`` frames the moment the socket opens, and lets a test push any frame."""

    def __init__(
        self, *, ready_version: str | None = "2.2.0", on_open: tuple[bytes | str, ...] = ()
    ) -> None:
        self.ready_version = ready_version
        self.on_open = on_open
        self.received: list[dict[str, Any]] = []
        self.conn: ServerConnection | None = None
        self.url = ""
        self._changed = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        self.conn = ws
        with contextlib.suppress(ConnectionClosed):
            for frame in self.on_open:
                await ws.send(frame)
            async for data in ws:
                if isinstance(data, str):
                    continue
                decoded = pb.Frame.FromString(data)
                if decoded.WhichOneof("frame") != "message":
                    continue
                message = json.loads(decoded.message.data)
                self.received.append(message)
                self._changed.set()
                if message["type"] == "client-ready" and self.ready_version is not None:
                    await ws.send(encode_message(bot_ready(self.ready_version, message["id"])))
                elif message["type"] == "client-message" and message["data"]["t"] == "echo":
                    reply = {"t": "echo", "d": message["data"].get("d")}
                    await ws.send(
                        encode_message(make_message("server-response", reply, message["id"]))
                    )

    async def send(self, frame: bytes | str) -> None:
        assert self.conn is not None
        await within(self.conn.send(frame))

    async def send_message(self, message: Mapping[str, Any]) -> None:
        await self.send(encode_message(message))

    async def send_json_text(self, text: str) -> None:
        """A protobuf message frame whose RTVI payload is ``text`` as is."""
        await self.send(pb.Frame(message=pb.MessageFrame(data=text)).SerializeToString())

    async def wait_for(self, msg_type: str, count: int = 1) -> dict[str, Any]:
        async def waiter() -> dict[str, Any]:
            while True:
                found = [m for m in self.received if m.get("type") == msg_type]
                if len(found) >= count:
                    return found[count - 1]
                self._changed.clear()
                await self._changed.wait()

        return await within(waiter())


@contextlib.asynccontextmanager
async def hand_bot(**kwargs: Any) -> AsyncIterator[HandBot]:
    bot = HandBot(**kwargs)
    async with serve(bot.handler, "127.0.0.1", 0, max_size=2**24) as srv:
        bot.url = f"ws://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/ws"
        yield bot
        srv.close()
        await within(srv.wait_closed())


def ws_client(url: str | None = None, *, connect_timeout: float = 3.0) -> PipecatClient:
    transport = WebSocketTransport(url, max_message_size=LIMIT)
    return PipecatClient(transport, connect_timeout=connect_timeout, request_timeout=3.0)


async def echo_ok(client: PipecatClient, value: Any = "still fine") -> None:
    assert await within(client.send_client_request("echo", value)) == value
    assert client.state is State.READY


def events_named(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


@pytest.fixture
def no_leaked_tasks() -> Any:
    """After the test body: nothing of the client or transport still runs."""

    def check() -> None:
        current = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        assert not left, left

    return check


# --------------------------------------------------------------- bad RTVI in message frames


@pytest.mark.parametrize(
    ("payload", "event", "reason"),
    [
        ("not json {", "inbound message dropped", "invalid JSON"),
        ("", "inbound message dropped", "invalid JSON"),
        ("[1, 2]", "inbound message dropped", "JSON list where an object belongs"),
        ("42", "inbound message dropped", "JSON int where an object belongs"),
        ('"text"', "inbound message dropped", "JSON str where an object belongs"),
        ("null", "inbound message dropped", "JSON NoneType where an object belongs"),
        ('{"label":"other","type":"server-message"}', "inbound message dropped", "label"),
        ('{"type":"server-message"}', "inbound message dropped", "label"),
        ('{"label":"rtvi-ai","type":7}', "inbound message dropped", "no type"),
        (
            '{"label":"rtvi-ai","type":"server-response","data":{"d":1}}',
            "response for no pending request dropped",
            None,
        ),
        (
            '{"label":"rtvi-ai","type":"server-response","id":"nope","data":{"d":1}}',
            "response for no pending request dropped",
            None,
        ),
        (
            '{"label":"rtvi-ai","type":"server-response","id":["x"],"data":{"d":1}}',
            "response for no pending request dropped",
            None,
        ),
        (json.dumps(bot_ready()), "bot-ready dropped", None),
        (json.dumps(bot_ready("1.0.0")), "bot-ready dropped", None),
    ],
)
async def test_ws_bad_rtvi_is_dropped_and_logged(
    payload: str, event: str, reason: str | None
) -> None:
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        with structlog.testing.capture_logs() as logs:
            await bot.send_json_text(payload)
            await echo_ok(client)
        (line,) = events_named(logs, event)
        assert line["log_level"] == "warning" and line["session_id"] == client.session_id
        if reason is not None:
            assert reason in line["reason"]
        if event == "bot-ready dropped":
            assert line["state"] == "ready"  # a duplicate bot-ready changes nothing
        assert rec.count("on_error") == rec.count("on_unhandled_message") == 0
        assert rec.count("on_message_error") == rec.count("on_bot_ready") - 1 == 0
        await within(client.disconnect())


async def test_ws_unknown_type_reaches_on_unhandled_message() -> None:
    message = {"label": "rtvi-ai", "type": "brand-new-thing", "id": "u1", "data": {"x": [1]}}
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        await bot.send_message(message)
        await echo_ok(client)
        assert rec.args("on_unhandled_message") == [(message,)]
        await within(client.disconnect())


@pytest.mark.parametrize("msg_id", [None, "unknown-id"])
async def test_ws_error_response_for_no_request_reaches_on_message_error(
    msg_id: str | None,
) -> None:
    message: dict[str, Any] = {"label": "rtvi-ai", "type": "error-response"}
    if msg_id is not None:
        message["id"] = msg_id
    message["data"] = {"error": "nobody asked"}
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        await bot.send_message(message)
        await echo_ok(client)
        assert rec.args("on_message_error") == [(message,)]
        assert rec.count("on_error") == 0
        await within(client.disconnect())


# ------------------------------------------------------------------ bad frames on the wire


def _truncated() -> bytes:
    whole = encode_message(make_message("server-message", {"text": "x" * 50}))
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"label": "rtvi-ai", "type": "server-message"}', "text WebSocket frame"),
        ("", "text WebSocket frame"),
        # A stable id: the frame holds a random message id (pytest-xdist workers must agree).
        pytest.param(_truncated(), "undecodable protobuf frame", id="truncated-protobuf"),
        (b"\xff\xfe\xfd\xfc garbage", "undecodable protobuf frame"),
        (b"", "protobuf frame with no known content"),
        (pb.Frame(message=pb.MessageFrame()).SerializeToString(), None),  # empty JSON
        (
            pb.Frame(
                audio=pb.AudioRawFrame(audio=b"\x00" * 3, sample_rate=16000, num_channels=1)
            ).SerializeToString(),
            "whole s16le samples",
        ),
        (
            pb.Frame(audio=pb.AudioRawFrame(audio=b"\x00\x00", num_channels=1)).SerializeToString(),
            "sample_rate",
        ),
    ],
)
async def test_ws_bad_frames_dropped_and_logged(frame: bytes | str, reason: str | None) -> None:
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        with structlog.testing.capture_logs() as logs:
            await bot.send(frame)
            await echo_ok(client)
        if reason is None:  # an empty MessageFrame: the client finds invalid JSON
            (line,) = events_named(logs, "inbound message dropped")
            assert "invalid JSON" in line["reason"]
        else:
            (line,) = events_named(logs, "inbound frame dropped")
            assert reason in line["reason"]
        assert line["log_level"] == "warning" and line["session_id"] == client.session_id
        assert rec.count("on_bot_audio") == rec.count("on_error") == 0
        await within(client.disconnect())


def _message_frame_of_size(size: int) -> bytes:
    """A server-message protobuf frame of exactly ``size`` bytes."""
    pad = size
    while True:
        frame = encode_message({"label": "rtvi-ai", "type": "server-message", "data": "x" * pad})
        if len(frame) == size:
            return frame
        pad -= len(frame) - size


async def test_ws_oversize_boundary_just_over_limit_dropped() -> None:
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        with structlog.testing.capture_logs() as logs:
            await bot.send(_message_frame_of_size(LIMIT))  # at the limit: delivered
            await bot.send(_message_frame_of_size(LIMIT + 1))  # one byte over: dropped
            await echo_ok(client)
        assert rec.count("on_server_message") == 1
        (line,) = events_named(logs, "inbound frame dropped")
        assert f"frame of {LIMIT + 1} bytes is over the {LIMIT} byte limit" == line["reason"]
        await within(client.disconnect())


async def test_ws_frame_beyond_hard_cap_after_ready_ends_session_as_lost(
    no_leaked_tasks: Any,
) -> None:
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        await within(client.connect())
        with structlog.testing.capture_logs() as logs:
            await bot.send(b"\x00" * (16 * LIMIT + 1))
            await rec.wait_for("on_disconnected")
        await within(client.disconnect())
        assert client.state is State.DISCONNECTED
        (error,) = rec.args("on_error")
        assert error[0].fatal and "1009 (message too big)" in error[0].message
        assert rec.count("on_bot_disconnected") == rec.count("on_disconnected") == 1
        assert any(e["event"] == "transport closed" and e["clean"] is False for e in logs)
        # The same client starts a clean session after.
        await within(client.connect())
        await echo_ok(client)
        await within(client.disconnect())
    no_leaked_tasks()


async def test_ws_frame_beyond_hard_cap_before_ready_is_transport_error() -> None:
    async with hand_bot(ready_version=None, on_open=(b"\x00" * (16 * LIMIT + 1),)) as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        with pytest.raises(TransportError, match="closed before the bot was ready"):
            await within(client.connect())
        assert client.state is State.DISCONNECTED and rec.count("on_disconnected") == 1


# ----------------------------------------------------------------------- bot-ready variants


async def test_ws_bot_ready_before_client_ready_is_accepted() -> None:
    """The bot sends bot-ready the moment the socket opens, before client-ready arrives.

    The transport reports connected before its reader runs, so the early bot-ready is read
    in CONNECTED and accepted: connect() resolves with it. The client still sends
    client-ready; the bot's answer to it (a second bot-ready) is dropped and logged.
    """
    early = bot_ready(msg_id="unsolicited")
    async with hand_bot(on_open=(encode_message(early),)) as bot:
        client = ws_client(bot.url)
        rec = Recorder(client)
        with structlog.testing.capture_logs() as logs:
            data = await within(client.connect())
            assert data.raw == early["data"] and client.state is State.READY
            await bot.wait_for("client-ready")  # still sent after the transport connected
            await echo_ok(client)  # the bot's reply to client-ready arrived before this
        (dropped,) = events_named(logs, "bot-ready dropped")
        assert dropped["state"] == "ready"
        assert rec.count("on_bot_ready") == 1
        await within(client.disconnect())


class _EagerTransport(Transport):
    """Delivers a bot-ready before reporting connected (a transport bug or a racy bot)."""

    carries_audio = False

    def __init__(self) -> None:
        self.events: TransportSink | None = None

    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        self.events = events
        events.message_received(json.dumps(bot_ready()))
        events.transport_connected()

    def send_message(self, message: Mapping[str, Any]) -> None:
        pass

    def send_audio(self, frame: Any) -> None:
        pass

    async def disconnect(self) -> None:
        self.events = None


async def test_bot_ready_while_connecting_is_dropped_then_timeout() -> None:
    """A bot-ready the client sees in CONNECTING is dropped (logged), not remembered: the
    client waits for one in CONNECTED and, without it, fails with the connect timeout."""
    from lifecycle import ConnectionTimeoutError

    client = PipecatClient(_EagerTransport(), connect_timeout=0.3)
    with structlog.testing.capture_logs() as logs, pytest.raises(ConnectionTimeoutError):
        await within(client.connect())
    (dropped,) = events_named(logs, "bot-ready dropped")
    assert dropped["state"] == "connecting"
    assert client.state is State.DISCONNECTED


@pytest.mark.parametrize("version", ["1.0.0", "3.0.0"])
async def test_ws_other_major_version_accepted_with_warning(version: str) -> None:
    async with hand_bot(ready_version=version) as bot:
        client = ws_client(bot.url)
        with structlog.testing.capture_logs() as logs:
            data = await within(client.connect())
        assert data.version == version and client.state is State.READY
        (line,) = events_named(logs, OTHER_MAJOR)
        assert line["log_level"] == "warning" and line["bot_version"] == version
        assert line["client_version"] == "2.2.0" and line["session_id"] == client.session_id
        await echo_ok(client)
        await within(client.disconnect())


@pytest.mark.parametrize("version", ["\u00b2.0.0", "9" * 5000])
async def test_unparsable_major_version_accepted_with_warning(version: str) -> None:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=1.0)
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    try:
        task = asyncio.create_task(client.connect())
        ready = await within(bot.wait_for_message("client-ready"))
        with structlog.testing.capture_logs() as logs:
            await within(bot.send(bot_ready(version, ready["id"])))
            data = await within(task)
        assert data.version == version and client.state is State.READY
        assert events_named(logs, OTHER_MAJOR)
        assert not errors
    finally:
        asyncio.get_running_loop().set_exception_handler(None)
        await within(client.disconnect())


async def test_ws_unparsable_major_version_accepted_with_warning() -> None:
    async with hand_bot(ready_version="\u00b2.0.0") as bot:
        client = ws_client(bot.url, connect_timeout=1.0)
        try:
            await within(client.connect())
            assert client.state is State.READY
        finally:
            await within(client.disconnect())


# ------------------------------------------------------------------------- /start responses


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"<html><body>Welcome</body></html>", "text/html"),
        (200, b"", "application/json"),
        (500, b"<html><body>Internal Server Error</body></html>", "text/html"),
        (500, b"", "text/plain"),
    ],
)
async def test_start_html_or_empty_body_then_clean_session(
    status: int, body: bytes, content_type: str, http: Any, no_leaked_tasks: Any
) -> None:
    async with hand_bot() as bot:
        http.reply = Reply(status, body, content_type)
        client = ws_client()
        rec = Recorder(client)
        with pytest.raises(StartBotError) as info:
            await within(client.start_bot_and_connect(http.url()))
        assert info.value.status == status and info.value.body == body.decode()
        assert f"HTTP {status}" in str(info.value)
        assert client.state is State.DISCONNECTED and rec.count("on_disconnected") == 1
        assert "authenticated" not in rec.states()
        # The client is unharmed: the next session works.
        http.json_reply({"wsUrl": bot.url})
        await within(client.start_bot_and_connect(http.url()))
        await echo_ok(client)
        await within(client.disconnect())
    no_leaked_tasks()


@pytest.mark.parametrize(
    ("response", "match"),
    [
        ({}, "no WebSocket URL: pass wsUrl/ws_url params or ws_url="),
        ({"sessionId": "abc", "token": "t"}, "no WebSocket URL"),
        ([], "no WebSocket URL"),
        (["ws://127.0.0.1:1/ws"], "no WebSocket URL"),
        ("ws://127.0.0.1:1/ws", "no WebSocket URL"),
        (None, "no WebSocket URL"),
        (42, "no WebSocket URL"),
        ({"wsUrl": 42}, "the WebSocket URL is not a string"),
        ({"wsUrl": ""}, "no WebSocket URL"),
        ({"wsUrl": "http://127.0.0.1:1/ws"}, "not a ws:// or wss:// URL"),
        ({"ws_url": "ftp://x/?token=hidden"}, "not a ws:// or wss:// URL"),
    ],
)
async def test_start_response_without_usable_url_is_transport_error(
    response: Any, match: str, http: Any
) -> None:
    async with hand_bot() as bot:
        http.json_reply(response)
        client = ws_client()
        rec = Recorder(client)
        with pytest.raises(TransportError, match=match) as info:
            await within(client.start_bot_and_connect(http.url()))
        assert "hidden" not in str(info.value)
        assert client.state is State.DISCONNECTED and rec.count("on_disconnected") == 1
        assert rec.states()[-3:] == ["connecting", "disconnecting", "disconnected"]
        http.json_reply({"wsUrl": bot.url})
        await within(client.start_bot_and_connect(http.url()))
        await echo_ok(client)
        await within(client.disconnect())


async def test_start_response_not_an_object_falls_back_to_constructor_url(http: Any) -> None:
    """A list/str/null start response gives no connect params: the transport uses its own
    ``ws_url`` (documented: params default to what the transport was built with)."""
    async with hand_bot() as bot:
        client = ws_client(bot.url)
        for response in ([1, 2], "text", None):
            http.json_reply(response)
            await within(client.start_bot_and_connect(http.url()))
            await echo_ok(client)
            await within(client.disconnect())


# ------------------------------------------- floods and huge strings in log lines (12.7)


async def test_junk_flood_makes_a_handful_of_warnings_not_one_per_frame() -> None:
    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot))
    rec = Recorder(client)
    await within(client.connect())
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        for _ in range(5000):
            await bot.send_raw("junk, not JSON")
        await bot.send_server_message("marker")
        await rec.wait_for("on_server_message")  # delivered in order: every junk frame handled
        elapsed = time.monotonic() - started
    lines = events_named(logs, "inbound message dropped")
    # The first 10 go out, then at most one per second, each with the count held back.
    assert 10 <= len(lines) <= 10 + int(elapsed) + 1
    assert all(line["session_id"] == client.session_id for line in lines)
    assert sum(line.get("suppressed", 0) for line in lines) <= 5000 - len(lines)
    await within(client.disconnect())


def test_rate_limiter_lets_a_burst_through_then_one_per_interval() -> None:
    now = [100.0]
    limiter = RateLimiter(burst=3, interval=1.0, clock=lambda: now[0])
    assert [limiter.allow("k") for _ in range(3)] == [0, 0, 0]
    assert [limiter.allow("k") for _ in range(50)] == [None] * 50
    assert limiter.allow("other") == 0  # keys have their own buckets
    now[0] += 1.0
    assert limiter.allow("k") == 50  # one line, carrying what was held back
    assert limiter.allow("k") is None
    now[0] += 0.5
    assert limiter.allow("k") is None
    assert limiter.take_held() == {"k": 2}
    assert limiter.take_held() == {}
    now[0] += 60.0  # a quiet minute refills the burst, no more
    assert [limiter.allow("k") for _ in range(4)] == [0, 0, 0, None]


def test_rate_limiter_tracks_a_bounded_number_of_keys() -> None:
    limiter = RateLimiter(burst=1, max_keys=4, clock=lambda: 0.0)
    for i in range(1000):
        assert limiter.allow(f"key-{i}") == 0
    assert len(limiter._buckets) == 4
    for bad in ({"burst": 0}, {"interval": 0.0}, {"max_keys": 0}):
        with pytest.raises(ValueError):
            RateLimiter(**bad)


def test_warning_limited_counts_every_line_and_flush_reports_the_rest() -> None:
    with structlog.testing.capture_logs() as logs:
        log = get_logger().bind(session_id=1)
        started = time.monotonic()
        for i in range(25):
            log.warning_limited("inbound message dropped", reason=f"bad {i}")
        elapsed = time.monotonic() - started
        log.flush_limited()
    dropped = events_named(logs, "inbound message dropped")
    flushed = events_named(logs, "repeated warnings suppressed")
    assert 10 <= len(dropped) <= 10 + int(elapsed) + 1
    held = sum(line.get("suppressed", 0) for line in dropped + flushed)
    assert len(dropped) + held == 25  # every line is either logged or counted
    assert all(line["session_id"] == 1 and line["log_level"] == "warning" for line in logs)
    if flushed:
        assert flushed[0]["warning"] == "inbound message dropped"


def test_bounded_keeps_a_prefix_of_any_bot_value() -> None:
    assert bounded("short") == "short"
    assert bounded("x" * 1_000_000) == "x" * BOT_TEXT_LIMIT + "… (1000000 chars)"
    assert bounded("abcdef", 3) == "abc… (6 chars)"
    assert bounded(None) is None and bounded(True) is True and bounded(1.5) == 1.5
    assert bounded(12345) == 12345
    assert bounded(10**5000) == "<int of 16610 bits>"  # str() of it would raise
    nested: Any = "leaf"
    for _ in range(10_000):
        nested = [nested]
    text = bounded(nested)
    assert isinstance(text, str) and len(text) <= BOT_TEXT_LIMIT + 1
    assert len(str(bounded({"k" * 10_000: ["v" * 10_000] * 10_000}))) <= BOT_TEXT_LIMIT + 1


def test_a_huge_string_field_is_cut_before_it_is_logged() -> None:
    with structlog.testing.capture_logs() as logs:
        get_logger().warning("response for no pending request dropped", msg_id="i" * 1_000_000)
    (line,) = logs
    assert len(line["msg_id"]) < FIELD_LIMIT + 30 and line["msg_id"].endswith("(1000000 chars)")


def test_an_unprintable_integer_field_is_described_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with structlog.testing.capture_logs() as logs:
        get_logger().warning("response for no pending request dropped", msg_id=10**5000)
    assert logs[0]["msg_id"] == "<int of 16610 bits>"
    structlog.reset_defaults()  # unconfigured: the stdlib key=value line renders it too
    caplog.set_level(logging.WARNING, logger="lifecycle")
    get_logger().warning("response for no pending request dropped", msg_id=10**5000)
    assert "msg_id='<int of 16610 bits>'" in caplog.text
