"""Security: secrets never reach a log line or an exception message; TLS verifies by default.

Secrets used: an ``Authorization`` header, an ``X-Api-Key`` header, ``?token=`` in start and
WebSocket URLs, userinfo passwords, ``token`` fields of start responses, and
``password``/``secret``/``api_key`` fields of request data. Every path is checked against
``structlog.testing.capture_logs`` and a real structlog configuration rendering to a
StringIO; exceptions through ``str``, ``repr`` and their whole ``__cause__``/``__context__``
chain; plus ``client.trace.to_jsonl()`` and the CLI's ``connect --json`` output.

Transport-level wss verification is tested in tests/test_websocket_transport.py
(test_wss_verifies_by_default_and_accepts_given_context); here: https start_bot and wss
through the client, by default and with the caller's own context.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import structlog
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from lifecycle import (
    APIRequest,
    AuthenticationError,
    ConnectionTimeoutError,
    PipecatClient,
    StartBotError,
    State,
    TransportError,
)
from lifecycle.redact import (
    check_header_values,
    redact_body,
    redact_query,
    redact_text,
    redact_url,
)
from tests.support.cli_process import run_cli as run_cli_process
from tests.support.raw_http import raw_http, response
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

from .support.http_stub import Reply
from .support.recorder import Recorder, within
from .support.tls import tls_pair

SECRET = "Zq9-s3cr3t-Vx7"
"""Every secret below contains this; it must appear nowhere."""

HEADERS = {"Authorization": f"Bearer {SECRET}-auth", "X-Api-Key": f"{SECRET}-apikey"}
REQUEST_DATA = {
    "password": f"{SECRET}-pw",
    "client_secret": f"{SECRET}-cs",
    "api_key": f"{SECRET}-ak",
    "nested": [{"access_token": f"{SECRET}-at"}],
    "room": "public-value",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exception_texts(exc: BaseException) -> list[str]:
    """str and repr of ``exc``, and the message (str) of every exception chained to it.

    Not the chained exceptions' repr: e.g. websockets' ``InvalidStatus`` repr shows the
    server's response body, which is the server's text (it may echo anything).
    """
    texts = [str(exc), repr(exc)]
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return texts


def assert_no_secret(*texts: Any) -> None:
    for text in texts:
        dumped = text if isinstance(text, str) else json.dumps(text, default=repr)
        assert SECRET not in dumped, dumped


class Rendered:
    """What the library logged in this test: event dicts and the rendered JSON lines."""

    def __init__(self) -> None:
        self.captured: list[MutableMapping[str, Any]] = []
        self.out = io.StringIO()


_RENDERED: list[Rendered] = []


@pytest.fixture(autouse=True)
def rendered_logs() -> Iterator[Rendered]:
    """A real structlog configuration (every level, JSON lines) rendering to a StringIO.

    Configured before the test body builds any client or transport (a transport binds its
    logger when it is built), and reset after.
    """
    rendered = Rendered()

    def keep(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        rendered.captured.append(dict(event))
        return event

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            keep,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(default=repr),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(rendered.out),
        cache_logger_on_first_use=False,
    )
    _RENDERED.append(rendered)
    try:
        yield rendered
    finally:
        _RENDERED.remove(rendered)
        structlog.reset_defaults()


@contextlib.contextmanager
def all_logs() -> Iterator[tuple[list[MutableMapping[str, Any]], io.StringIO]]:
    """This test's log lines so far and after the block: (event dicts, rendered text)."""
    rendered = _RENDERED[-1]
    yield rendered.captured, rendered.out


# ------------------------------------------------------------------------------ servers


class TokenBot:
    """The TestingBotServer's bot on a listener that records (or refuses) handshakes."""

    def __init__(self, ws_url: str, seen: list[Request]) -> None:
        self.ws_url = ws_url
        self.seen = seen
        self.server: Any = None

    async def stop(self) -> None:
        """Close the listener and every connection (going away, 1001)."""
        self.server.close()
        await within(self.server.wait_closed())


@contextlib.asynccontextmanager
async def token_bot(
    *, handshake_status: int | None = None
) -> AsyncIterator[tuple[TokenBot, list[Request]]]:
    """A WebSocket bot recording handshakes; ``handshake_status`` refuses them."""
    seen: list[Request] = []

    def route(connection: ServerConnection, request: Request) -> Response | None:
        seen.append(request)
        if handshake_status is None:
            return None
        body = f"refused, your token was {SECRET}".encode()
        headers = Headers([("Content-Length", str(len(body)))])
        return Response(handshake_status, "Refused", headers, body)

    async with (
        TestingBotServer() as testing,
        serve(testing._ws_session, "127.0.0.1", 0, process_request=route) as srv,
    ):
        bot = TokenBot(f"ws://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/ws", seen)
        bot.server = srv
        yield bot, seen
        srv.close()
        await within(srv.wait_closed())


def ws_with_token(url: str) -> str:
    return f"{url}?token={SECRET}-q&room=r1"


# ------------------------------------------------------------------------- start_bot paths


async def test_start_success_then_ws_session_with_token_url(http: Any) -> None:
    async with token_bot() as (server, seen):
        http.json_reply(
            {"wsUrl": ws_with_token(server.ws_url), "token": f"{SECRET}-tok", "sessionId": "s"}
        )
        client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
        request = APIRequest(f"{http.url()}?token={SECRET}-startq", HEADERS, REQUEST_DATA)
        with all_logs() as (captured, out):
            await within(client.start_bot_and_connect(request))
            assert await within(client.send_client_request("echo", "x")) == "x"
            await within(client.disconnect())
        assert client.state is State.DISCONNECTED
        # The secrets did travel where they belong.
        assert http.requests[0].headers["authorization"] == HEADERS["Authorization"]
        assert http.requests[0].json() == REQUEST_DATA
        assert seen[0].headers["Authorization"] == HEADERS["Authorization"]
        assert f"token={SECRET}-q" in seen[0].path
        # ...and nowhere else.
        assert captured and all("session_id" in e for e in captured if "transport" not in e)
        assert_no_secret(captured, out.getvalue(), client.trace.to_jsonl(), repr(request))
        assert "***" in out.getvalue()  # the redaction did happen (URLs were logged)


async def test_start_success_under_capture_logs(http: Any) -> None:
    async with token_bot() as (server, _):
        http.json_reply({"wsUrl": ws_with_token(server.ws_url), "token": f"{SECRET}-tok"})
        with structlog.testing.capture_logs() as captured:
            client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
            request = APIRequest(f"{http.url()}?token={SECRET}", HEADERS, REQUEST_DATA)
            await within(client.start_bot_and_connect(request))
            await within(client.disconnect())
        assert len(captured) > 5
        assert_no_secret(captured, client.trace.to_jsonl())


@pytest.mark.parametrize("status", [401, 403, 500])
async def test_start_http_errors(status: int, http: Any) -> None:
    body = {"detail": "no", "token": f"{SECRET}-tok", "hint": f"Bearer {SECRET}"}
    http.json_reply(body, status=status)
    client = PipecatClient(WebSocketTransport())
    request = APIRequest(f"{http.url()}?token={SECRET}", HEADERS, REQUEST_DATA)
    with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
        await within(client.start_bot_and_connect(request))
    assert isinstance(info.value, AuthenticationError) is (status != 500)
    assert info.value.status == status
    assert_no_secret(
        *exception_texts(info.value), info.value.body, captured, out.getvalue(),
        client.trace.to_jsonl(),
    )  # fmt: skip
    assert client.state is State.DISCONNECTED


async def test_start_html_error_body_not_in_message(http: Any) -> None:
    http.reply = Reply(500, f"<html>token={SECRET}</html>".encode(), "text/html")
    client = PipecatClient(WebSocketTransport())
    with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
        await within(client.start_bot(APIRequest(http.url(), HEADERS, REQUEST_DATA)))
    # The body is the server's own text (kept for the caller), never in the message or logs.
    assert_no_secret(*exception_texts(info.value), captured, out.getvalue())


async def test_start_timeout(http: Any) -> None:
    http.json_reply({}, delay=30)
    client = PipecatClient(WebSocketTransport())
    request = APIRequest(f"{http.url()}?token={SECRET}", HEADERS, REQUEST_DATA, timeout=0.2)
    with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
        await within(client.start_bot(request))
    assert info.value.status is None
    assert_no_secret(
        *exception_texts(info.value), captured, out.getvalue(), client.trace.to_jsonl()
    )


@pytest.mark.parametrize(
    "url",
    [
        # Ids without the port drawn at collection (pytest-xdist workers must agree on them).
        pytest.param(f"http://127.0.0.1:{free_port()}/start?token={SECRET}", id="refused-query"),
        pytest.param(f"http://user:{SECRET}@127.0.0.1:{free_port()}/start", id="refused-userinfo"),
        f"http://127.0.0.1:abc/start?key={SECRET}",
        pytest.param(f"http://127.0.0.1:{free_port()}/start#token={SECRET}", id="refused-fragment"),
    ],
)
async def test_start_unreachable_or_invalid_url(url: str) -> None:
    client = PipecatClient(WebSocketTransport())
    with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
        await within(client.start_bot(APIRequest(url, HEADERS, REQUEST_DATA)))
    assert info.value.status is None
    assert_no_secret(
        *exception_texts(info.value), captured, out.getvalue(), client.trace.to_jsonl()
    )
    assert client.state is State.DISCONNECTED


async def test_start_url_port_out_of_range_is_start_bot_error() -> None:
    client = PipecatClient(WebSocketTransport())
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot(f"http://127.0.0.1:99999/start?token={SECRET}"))
    assert info.value.status is None and client.state is State.DISCONNECTED
    assert_no_secret(*exception_texts(info.value))


async def test_start_url_of_another_scheme_never_logged() -> None:
    client = PipecatClient(WebSocketTransport())
    with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
        await within(client.start_bot(f"ftp://127.0.0.1/start?token={SECRET}"))
    assert_no_secret(*exception_texts(info.value))  # passes: the message uses redact_url
    assert_no_secret(captured, out.getvalue())  # fails: the debug line's endpoint field


# ------------------------------------------------------------------------- WebSocket paths


@pytest.mark.parametrize(
    "url",
    [
        # Ids without the port drawn at collection (pytest-xdist workers must agree on them).
        pytest.param(f"ws://127.0.0.1:{free_port()}/ws?token={SECRET}", id="refused-query"),
        pytest.param(f"ws://user:{SECRET}@127.0.0.1:{free_port()}/ws", id="refused-userinfo"),
        f"ws://127.0.0.1:99999/ws?token={SECRET}",  # invalid port
        f"ws://127.0.0.1:abc/ws?token={SECRET}",
        f"http://127.0.0.1/ws?token={SECRET}",  # not ws
        f"ws://[::1/ws?token={SECRET}",  # unparsable
    ],
)
async def test_ws_connect_failures(url: str) -> None:
    client = PipecatClient(WebSocketTransport(headers=HEADERS))
    with all_logs() as (captured, out), pytest.raises(TransportError) as info:
        await within(client.connect({"wsUrl": url, "token": f"{SECRET}-tok"}))
    assert_no_secret(
        *exception_texts(info.value), captured, out.getvalue(), client.trace.to_jsonl()
    )
    assert client.state is State.DISCONNECTED


@pytest.mark.parametrize("status", [401, 403, 500])
async def test_ws_handshake_refused(status: int) -> None:
    async with token_bot(handshake_status=status) as (server, seen):
        client = PipecatClient(WebSocketTransport(headers=HEADERS))
        with all_logs() as (captured, out), pytest.raises(TransportError) as info:
            await within(client.connect({"wsUrl": ws_with_token(server.ws_url)}))
        assert seen and str(status) in str(info.value)
        assert_no_secret(
            *exception_texts(info.value), captured, out.getvalue(), client.trace.to_jsonl()
        )


async def test_ws_handshake_timeout_and_ready_timeout() -> None:
    # A server that accepts TCP and never answers the handshake.
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        transport = WebSocketTransport(headers=HEADERS, open_timeout=0.3)
        client = PipecatClient(transport, connect_timeout=5.0)
        with all_logs() as (captured, out), pytest.raises(TransportError) as info:
            await within(client.connect({"wsUrl": f"ws://127.0.0.1:{port}/ws?token={SECRET}"}))
        assert_no_secret(*exception_texts(info.value), captured, out.getvalue())
    finally:
        for w in held:
            w.close()
        srv.close()
        await within(srv.wait_closed())
    async with TestingBotServer(send_bot_ready=False) as server:
        client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=0.3)
        with all_logs() as (captured, out), pytest.raises(ConnectionTimeoutError) as tinfo:
            await within(client.connect({"wsUrl": ws_with_token(server.ws_url)}))
        assert_no_secret(
            *exception_texts(tinfo.value), captured, out.getvalue(), client.trace.to_jsonl()
        )


@pytest.mark.parametrize("how", ["fatal", "end", "lost"])
async def test_ws_session_ends(how: str) -> None:
    async with token_bot() as (server, _):
        client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
        rec = Recorder(client)
        with all_logs() as (captured, out):
            await within(client.connect({"wsUrl": ws_with_token(server.ws_url)}))
            if how == "lost":
                await server.stop()  # closes with 1001 (going away): lost, not clean
            else:
                client.send_client_message(how)
            await rec.wait_for("on_disconnected")
            await within(client.disconnect())
        assert_no_secret(captured, out.getvalue(), client.trace.to_jsonl(), rec.events)


# ---------------------------------------------------------- dependencies' stdlib loggers


async def test_httpx_info_log_has_no_start_url_token(
    http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http.json_reply({"ok": True})
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="httpcore")  # so that something is logged
    client = PipecatClient(WebSocketTransport())
    await within(client.start_bot(APIRequest(f"{http.url()}?token={SECRET}", HEADERS)))
    await within(client.disconnect())
    assert [r for r in caplog.records if r.name.startswith("httpcore")]
    assert_no_secret(caplog.text)


async def test_websockets_debug_log_has_no_handshake_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets")
    async with token_bot() as (server, _):
        client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
        await within(client.connect({"wsUrl": ws_with_token(server.ws_url)}))
        await within(client.disconnect())
    client_lines = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("websockets.client")
    )
    assert client_lines
    assert_no_secret(client_lines)


# ----------------------------------------------------------------------------------- CLI


async def run_cli(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    return await run_cli_process(*args, stdin=stdin, timeout=30)


async def test_cli_connect_json_start_session(http: Any) -> None:
    async with token_bot() as (server, seen):
        http.json_reply({"wsUrl": ws_with_token(server.ws_url), "token": f"{SECRET}-tok"})
        code, out, err = await run_cli(
            "connect", "--start", f"{http.url()}?token={SECRET}", "--json", "-vv",
            "--header", f"Authorization=Bearer {SECRET}", "--header", f"X-Api-Key={SECRET}",
            "--data", json.dumps(REQUEST_DATA),
            stdin=b'/msg echo {"a":1}\n/quit\n',
        )  # fmt: skip
    assert code == 0, out + err
    assert http.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert seen  # the session did reach the bot
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["state"] for r in rows if r["event"] == "transition"][-1] == "disconnected"
    assert "transition" in err  # -vv: log lines were written
    assert_no_secret(out, err)


async def test_cli_connect_json_direct_ws_and_failures(http: Any) -> None:
    async with token_bot() as (server, seen):
        code, out, err = await run_cli(
            "connect", ws_with_token(server.ws_url), "--json", "-vv",
            "--header", f"Authorization=Bearer {SECRET}",
        )  # fmt: skip
        assert code == 0, out + err
        assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"
        assert_no_secret(out, err)
    # Startup failures: refused WebSocket, unreachable start, 401 start.
    http.json_reply({"detail": "no", "token": SECRET}, status=401)
    for args in (
        [f"ws://127.0.0.1:{free_port()}/ws?token={SECRET}"],
        ["--start", f"http://127.0.0.1:{free_port()}/start?token={SECRET}"],
        ["--start", f"{http.url()}?token={SECRET}"],
    ):
        code, out, err = await run_cli(
            "connect", *args, "--json", "-vv", "--timeout", "5",
            "--header", f"Authorization=Bearer {SECRET}",
        )  # fmt: skip
        assert code == 3, out + err
        assert any(json.loads(line)["event"] == "startup-error" for line in out.splitlines())
        assert_no_secret(out, err)


# ----------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting exactly the self-signed cert)."""
    return tls_pair(tmp_path)


@contextlib.asynccontextmanager
async def https_start(server_ctx: ssl.SSLContext, payload: Any) -> AsyncIterator[str]:
    """A TLS HTTP server on 127.0.0.1 answering every POST with JSON ``payload``."""
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            body = json.dumps(payload).encode()
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
            writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        except (ConnectionError, ssl.SSLError, h11.ProtocolError):
            pass  # e.g. the client refused our certificate
        finally:
            tasks.discard(task)
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    try:
        yield f"https://127.0.0.1:{srv.sockets[0].getsockname()[1]}/start"
    finally:
        srv.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await within(srv.wait_closed())


@contextlib.asynccontextmanager
async def wss_bot(server_ctx: ssl.SSLContext) -> AsyncIterator[str]:
    """The TestingBotServer's bot behind TLS: a wss:// URL whose sessions get bot-ready."""
    async with (
        TestingBotServer() as bot,
        serve(bot._ws_session, "127.0.0.1", 0, ssl=server_ctx) as srv,
    ):
        yield f"wss://127.0.0.1:{next(iter(srv.sockets)).getsockname()[1]}/ws"
        srv.close()
        await within(srv.wait_closed())


async def test_https_start_verifies_by_default(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    async with https_start(server_ctx, {"ok": True, "token": SECRET}) as url:
        client = PipecatClient(WebSocketTransport())
        with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
            await within(client.start_bot(APIRequest(f"{url}?token={SECRET}", HEADERS)))
        assert info.value.status is None and client.state is State.DISCONNECTED
        assert_no_secret(*exception_texts(info.value), captured, out.getvalue())
        client = PipecatClient(WebSocketTransport())
        # The caller's own context that trusts the certificate: accepted.
        response = await within(client.start_bot(APIRequest(url, HEADERS, ssl=client_ctx)))
        assert response == {"ok": True, "token": SECRET}
        assert client.state is State.AUTHENTICATED
        await within(client.disconnect())


async def test_wss_through_the_client_verifies_by_default(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls
    async with wss_bot(server_ctx) as url:
        client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
        with all_logs() as (captured, out), pytest.raises(TransportError) as info:
            await within(client.connect({"wsUrl": f"{url}?token={SECRET}"}))
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert client.state is State.DISCONNECTED
        assert_no_secret(*exception_texts(info.value), captured, out.getvalue())
        trusted = PipecatClient(WebSocketTransport(headers=HEADERS, ssl=client_ctx))
        await within(trusted.connect({"wsUrl": f"{url}?token={SECRET}"}))
        assert await within(trusted.send_client_request("echo", 1)) == 1
        await within(trusted.disconnect())


async def test_https_start_then_wss_whole_session_with_own_context(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls
    async with wss_bot(server_ctx) as ws_url:
        payload = {"wsUrl": f"{ws_url}?token={SECRET}", "token": SECRET}
        async with https_start(server_ctx, payload) as url:
            # A context for https does not make wss trust anything: still verified by default.
            client = PipecatClient(WebSocketTransport(headers=HEADERS), connect_timeout=5.0)
            with pytest.raises(TransportError):
                await within(client.start_bot_and_connect(APIRequest(url, ssl=client_ctx)))
            client = PipecatClient(
                WebSocketTransport(headers=HEADERS, ssl=client_ctx), connect_timeout=5.0
            )
            with all_logs() as (captured, out):
                await within(client.start_bot_and_connect(APIRequest(url, ssl=client_ctx)))
                assert client.state is State.READY
                await within(client.disconnect())
            assert_no_secret(captured, out.getvalue(), client.trace.to_jsonl())


# ------------------------------------------------------------------ redaction of free text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"wss://h/ws?{SECRET}", "wss://h/ws?***"),  # a bare query value is the token itself
        (f"GET /ws?{SECRET} HTTP/1.1", "GET /ws?*** HTTP/1.1"),
        (f"http://h/start;token={SECRET}?room=1", "http://h/start;token=***?room=***"),
        (f"/start;jsessionid={SECRET}/x", "/start;jsessionid=***/x"),
        (f"failed for localhost:7860/ws?token={SECRET} now", "localhost:7860/ws?token=*** now"),
        (f"ws/connect?a=1&{SECRET}", "ws/connect?a=***&***"),
        (f"/cb#access_token={SECRET}&x=1", "/cb#access_token=***&x=***"),
        (f"ws://u:{SECRET}@h/ws#frag{SECRET}", "ws://***@h/ws"),
        (f"Illegal header value b'Bearer a\\r\\n{SECRET}'", "Illegal header value ***"),
        (f"illegal header line: bytearray(b'X-Token: {SECRET}\\r')", "illegal header line: ***"),
        (
            f"invalid Authorization header: Bearer a\r\n{SECRET}",
            "invalid Authorization header: ***",
        ),
        (f"invalid X-Api-Key header: k\n{SECRET}\nmore", "invalid X-Api-Key header: ***"),
        (f"Authorization: Bearer a\\r\\n{SECRET}", "Authorization: Bearer ***"),
    ],
)
def test_redact_text_covers_every_place_a_token_hides(text: str, kept: str) -> None:
    redacted = redact_text(text)
    assert SECRET not in redacted
    assert kept in redacted


@pytest.mark.parametrize(
    "text", ["why? because", "KeyError: 'token'", "invalid Host header: example.org", "a=1 b=2"]
)
def test_redact_text_leaves_ordinary_text(text: str) -> None:
    assert redact_text(text) == text


def test_redact_query_and_url_handle_bare_items_and_path_parameters() -> None:
    assert redact_query(f"/ws?{SECRET}") == "/ws?***"
    assert redact_query(f"/ws;token={SECRET}?a=1") == "/ws;token=***?a=***"
    assert (
        redact_url(f"http://h/a;k={SECRET}/b?{SECRET}&t={SECRET}") == "http://h/a;k=***/b?***&t=***"
    )


def test_redact_body_removes_credential_pairs_from_text() -> None:
    body = (
        f"X-Auth-Token: {SECRET}\nSet-Cookie: sid={SECRET}\n"
        f'{{"token": "{SECRET}", "ok": 1}} password={SECRET}&room=r1 echoed Bearer {SECRET}'
    )
    redacted = redact_body(body)
    assert SECRET not in redacted
    assert '"ok": 1' in redacted and "room=r1" in redacted


def test_check_header_values_refuses_cr_lf_nul_without_showing_the_value() -> None:
    for bad in (f"Bearer a\r\n{SECRET}", f"{SECRET}\n", f"a\0{SECRET}"):
        with pytest.raises(ValueError, match="Authorization") as info:
            check_header_values({"Authorization": bad})
        assert_no_secret(*exception_texts(info.value))
    check_header_values(HEADERS)  # ordinary values pass


# ------------------------------------------- start responses that echo credentials (12.10)

ECHOING_HEADERS = [
    ("Set-Cookie", f"sid={SECRET}-cookie; HttpOnly"),
    ("X-Auth-Token", f"{SECRET}-xauth"),
    ("Authorization", f"Bearer {SECRET}-echo"),
    ("WWW-Authenticate", f'Bearer realm="{SECRET}"'),
    ("Location", f"/next?token={SECRET}-loc"),
    ("Content-Type", "application/json"),
]


def debug_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of every stdlib logger, formatted (message and arguments)."""
    return "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)


@pytest.mark.parametrize("status", [200, 302, 401, 500])
async def test_httpcore_debug_lines_never_show_response_credentials(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: httpcore, httpx, asyncio, everything
    body = json.dumps({"wsUrl": "ws://127.0.0.1:1/ws", "token": f"{SECRET}-body"}).encode()
    client = PipecatClient(WebSocketTransport())
    async with raw_http(response(status, body, ECHOING_HEADERS)) as url:
        with all_logs() as (captured, out):
            try:
                await within(client.start_bot(APIRequest(f"{url}?{SECRET}", HEADERS)))
            except StartBotError as exc:
                assert exc.status == status
                assert_no_secret(*exception_texts(exc), exc.body)
            await within(client.disconnect())
    lines = debug_text(caplog)
    assert "receive_response_headers.complete" in lines  # httpcore did log the headers
    assert "(b'Set-Cookie', b'***')" in lines and "/next?token=***" in lines
    assert_no_secret(lines, captured, out.getvalue(), client.trace.to_jsonl())


async def test_httpcore_filter_leaves_other_requests_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with raw_http(response(200, b"{}", ECHOING_HEADERS)) as url:
        await within(PipecatClient(WebSocketTransport()).start_bot(url))  # installs the filter
        async with httpx.AsyncHTTPTransport() as transport:  # the application's own request
            reply = await within(transport.handle_async_request(httpx.Request("GET", url)))
            await within(reply.aread())
    assert f"(b'X-Auth-Token', b'{SECRET}-xauth')" in debug_text(caplog)  # not ours: untouched


async def test_illegal_response_header_lines_are_not_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for line in (f"X-Auth-Token: {SECRET}\0", f"X-Auth-Token: a\r{SECRET}", f"bad {SECRET}"):
        answer = f"HTTP/1.1 200 OK\r\n{line}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        client = PipecatClient(WebSocketTransport())
        async with raw_http(answer) as url:
            with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
                await within(client.start_bot(url))
        assert info.value.status is None
        assert_no_secret(*exception_texts(info.value), captured, out.getvalue())
    assert "illegal header line" in debug_text(caplog)
    assert_no_secret(debug_text(caplog))


async def test_header_value_with_cr_lf_never_reaches_a_message_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = {"Authorization": f"Bearer a\r\n{SECRET}", "X-Api-Key": f"k\n{SECRET}"}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name) as refused:
            APIRequest("http://127.0.0.1:1/start", {name: value})
        assert_no_secret(*exception_texts(refused.value))
    # A request that got past the check (built before, or by hand): h11 refuses it, and
    # neither its error (as message, __cause__ or __context__) nor httpcore's line leaks.
    async with raw_http(response(200, b"{}")) as url:
        request = APIRequest(url)
        object.__setattr__(request, "headers", bad)
        client = PipecatClient(WebSocketTransport())
        with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
            await within(client.start_bot(request))
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "send_request_headers.failed" in debug_text(caplog)
    assert_no_secret(
        *exception_texts(info.value), captured, out.getvalue(), client.trace.to_jsonl()
    )
    assert_no_secret(debug_text(caplog))


@pytest.mark.parametrize("status", [200, 401, 403, 500])
async def test_start_error_text_body_is_redacted(status: int) -> None:
    body = (
        f"Unauthorized. You sent: Authorization: Bearer {SECRET}-a\n"
        f"X-Api-Key: {SECRET}-k\nurl was /start?token={SECRET}-q\npassword={SECRET}-p"
    ).encode()
    client = PipecatClient(WebSocketTransport())
    async with raw_http(response(status, body, [("Content-Type", "text/plain")])) as url:
        with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
            await within(client.start_bot(url))
    assert isinstance(info.value.body, str) and "You sent" in info.value.body
    assert_no_secret(info.value.body, *exception_texts(info.value), captured, out.getvalue())


@pytest.mark.parametrize("status", [400, 401, 403, 500])
async def test_start_error_json_body_echoing_sent_values_is_redacted(status: int) -> None:
    # A server that repeats what it was sent under field names that look harmless: the
    # client knows those values (headers, the URL's query, secret fields of the body).
    body = json.dumps(
        {
            "error": "bad request",
            "detail": {"you_sent": [f"Bearer {SECRET}-a", f"{SECRET}-k"]},
            "echo": f"query was {SECRET}-q; body said {SECRET}-p",
            f"{SECRET}-k": "a key used as a field name",
        }
    ).encode()
    headers = {"Authorization": f"Bearer {SECRET}-a", "X-Api-Key": f"{SECRET}-k"}
    client = PipecatClient(WebSocketTransport())
    async with raw_http(response(status, body, [("Content-Type", "application/json")])) as url:
        request = APIRequest(
            f"{url}?token={SECRET}-q", headers, request_data={"config": {"api_key": f"{SECRET}-p"}}
        )
        with all_logs() as (captured, out), pytest.raises(StartBotError) as info:
            await within(client.start_bot(request))
    assert isinstance(info.value.body, dict) and info.value.body["error"] == "bad request"
    assert_no_secret(
        json.dumps(info.value.body), *exception_texts(info.value), captured, out.getvalue()
    )


async def test_oversize_start_body_is_redacted_too() -> None:
    body = f"Bearer {SECRET} ".encode() * 200_000  # 4 MB of echoed credentials
    client = PipecatClient(WebSocketTransport())
    async with raw_http(response(200, body, [("Content-Type", "text/plain")])) as url:
        with pytest.raises(StartBotError, match="over") as info:
            await within(client.start_bot(url))
    assert isinstance(info.value.body, str) and len(info.value.body) <= 4096
    assert_no_secret(info.value.body)
