"""start_bot over HTTP (httpx) against a local stub server: success and every failure."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import pytest

from lifecycle import (
    APIRequest,
    AuthenticationError,
    PipecatClient,
    StartBotError,
    State,
)
from lifecycle.http import UnusableJSON, parse_json
from tests.support.raw_http import raw_http, response
from transports.loopback import LoopbackBot, LoopbackTransport

from .support.recorder import Recorder, within

SECRET = "s3cr3t-t0ken-value"


def new_client() -> tuple[PipecatClient, Recorder]:
    client = PipecatClient(LoopbackTransport(LoopbackBot()))
    return client, Recorder(client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_url_string_posts_empty_json(http: Any) -> None:
    http.json_reply({"wsUrl": "ws://127.0.0.1:1/ws"})
    client, rec = new_client()
    assert await within(client.start_bot(http.url())) == {"wsUrl": "ws://127.0.0.1:1/ws"}
    seen = http.requests[0]
    assert seen.method == "POST" and seen.json() == {}
    assert seen.headers["content-type"] == "application/json"
    assert client.state is State.AUTHENTICATED
    await within(client.disconnect())
    assert rec.states() == ["authenticating", "authenticated", "disconnecting", "disconnected"]


async def test_api_request_sends_body_and_headers(http: Any) -> None:
    client, _ = new_client()
    request = APIRequest(
        http.url(), headers={"Authorization": f"Bearer {SECRET}"}, request_data={"a": [1]}
    )
    await within(client.start_bot(request))
    assert http.requests[0].json() == {"a": [1]}
    assert http.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(request)
    await within(client.disconnect())


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refused(status: int, http: Any) -> None:
    http.json_reply({"detail": "nope", "token": SECRET}, status=status)
    client, rec = new_client()
    with pytest.raises(AuthenticationError) as info:
        await within(client.start_bot(APIRequest(http.url(), headers={"Authorization": SECRET})))
    assert info.value.status == status
    assert info.value.body == {"detail": "nope", "token": "***"}
    assert SECRET not in str(info.value)
    assert client.state is State.DISCONNECTED
    assert "authenticated" not in rec.states()
    assert rec.count("on_disconnected") == 1 and rec.count("on_bot_started") == 0


async def test_server_error_with_html(http: Any) -> None:
    from .support.http_stub import Reply

    html = b"<html><body>Internal Server Error</body></html>"
    http.reply = Reply(500, html, "text/html")
    client, _ = new_client()
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot_and_connect(http.url()))
    assert type(info.value) is StartBotError
    assert info.value.status == 500 and info.value.body == html.decode()
    assert client.state is State.DISCONNECTED


async def test_ok_status_but_not_json(http: Any) -> None:
    from .support.http_stub import Reply

    http.reply = Reply(200, b"<html>hello</html>" * 1000, "text/html")
    client, _ = new_client()
    with pytest.raises(StartBotError, match="not JSON") as info:
        await within(client.start_bot(http.url()))
    assert info.value.status == 200 and len(info.value.body) <= 4096
    assert client.state is State.DISCONNECTED


async def test_empty_body(http: Any) -> None:
    from .support.http_stub import Reply

    http.reply = Reply(200, b"", "application/json")
    client, _ = new_client()
    with pytest.raises(StartBotError):
        await within(client.start_bot(http.url()))


async def test_timeout_is_start_bot_error_without_status(http: Any) -> None:
    http.json_reply({}, delay=30)
    client, _ = new_client()
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot(APIRequest(http.url(), timeout=0.1)))
    assert info.value.status is None
    assert client.state is State.DISCONNECTED


async def test_unreachable_server(logs: Any) -> None:
    client, rec = new_client()
    url = f"http://127.0.0.1:{free_port()}/start?token={SECRET}"
    with pytest.raises(StartBotError) as info:
        await within(client.start_bot(url))
    assert info.value.status is None
    assert SECRET not in str(info.value)
    assert client.state is State.DISCONNECTED and rec.count("on_disconnected") == 1
    assert SECRET not in json.dumps(logs, default=str)


async def test_oversize_response(http: Any) -> None:
    from .support.http_stub import Reply

    http.reply = Reply(200, b'{"a":"' + b"x" * (2 * 1024 * 1024) + b'"}')
    client, _ = new_client()
    with pytest.raises(StartBotError, match="over"):
        await within(client.start_bot(http.url()))


async def test_secrets_never_logged_on_success(http: Any, logs: Any) -> None:
    http.json_reply({"wsUrl": f"ws://127.0.0.1/ws?token={SECRET}", "token": SECRET})
    client = PipecatClient(LoopbackTransport(LoopbackBot()))
    request = APIRequest(
        f"{http.url()}?key={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET},
        request_data={"password": SECRET, "nested": {"api_token": SECRET}},
    )
    await within(client.start_bot_and_connect(request))
    await within(client.disconnect())
    dumped = json.dumps(logs, default=str)
    assert logs and SECRET not in dumped
    assert all("session_id" in entry for entry in logs)


async def test_cancel_while_authenticating_stops_http_request(http: Any) -> None:
    http.json_reply({}, delay=30)
    client, rec = new_client()
    task = asyncio.create_task(client.start_bot(http.url()))
    await rec.wait_for("on_transition")
    await within(http.arrived.wait())  # the request reached the server
    await within(client.disconnect())
    assert client.state is State.DISCONNECTED
    from lifecycle import SessionCancelledError

    with pytest.raises(SessionCancelledError):
        await within(task)


# ------------------------------------------------- hostile start responses (issue 12.6, 12.11)

DEEP = b"[" * 100_000 + b"]" * 100_000
"""A 200 KB body nested 100,000 levels deep: json.loads raises RecursionError on it on every
supported Python (3.12+ parse the probe's 1,000 levels fine), under the body size limit."""


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, StartBotError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (500, StartBotError),
    ],
)
async def test_deeply_nested_response_is_start_bot_error(
    status: int, error: type[StartBotError]
) -> None:
    answer = response(status, DEEP, [("Content-Type", "application/json")])
    client, rec = new_client()
    async with raw_http(answer) as url:
        with pytest.raises(StartBotError) as info:
            await within(client.start_bot(url))
    assert type(info.value) is error and info.value.status == status
    if status == 200:
        assert "nested too deeply" in str(info.value)
    assert client.state is State.DISCONNECTED and rec.count("on_disconnected") == 1


async def test_huge_integer_is_reported_as_such_not_as_not_json() -> None:
    body = b'{"n": ' + b"7" * 100_000 + b"}"  # valid JSON, over the default 4,300 digits
    client, _ = new_client()
    async with raw_http(response(200, body)) as url:
        with pytest.raises(StartBotError) as info:
            await within(client.start_bot(url))
        assert "100000-digit integer" in str(info.value)
        assert "not JSON" not in str(info.value) and info.value.status == 200
        # An application that lifted the interpreter's limit gets its integer.
        previous = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            answer = await within(client.start_bot(url))
        finally:
            sys.set_int_max_str_digits(previous)
    assert answer["n"] % 10 == 7 and answer["n"].bit_length() > 300_000
    await within(client.disconnect())


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_with_json_body_is_not_a_successful_start(status: int) -> None:
    body = json.dumps({"wsUrl": "ws://127.0.0.1:1/ws"}).encode()
    headers = [("Location", f"/elsewhere?token={SECRET}"), ("Content-Type", "application/json")]
    client, rec = new_client()
    async with raw_http(response(status, body, headers)) as url:
        with pytest.raises(StartBotError) as info:
            await within(client.start_bot(url))
    assert not isinstance(info.value, AuthenticationError)
    assert info.value.status == status and "redirect" in str(info.value)
    assert info.value.body == {"wsUrl": "ws://127.0.0.1:1/ws"}
    assert SECRET not in str(info.value)
    assert "authenticated" not in rec.states() and client.state is State.DISCONNECTED


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (float("-inf"), ValueError),
        (0, ValueError),
        (-1.0, ValueError),
        (None, TypeError),
        ("3", TypeError),
        (True, TypeError),
    ],
)
def test_api_request_refuses_unusable_timeouts(timeout: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        APIRequest("http://127.0.0.1:1/start", timeout=timeout)


def test_api_request_accepts_int_and_float_timeouts() -> None:
    assert APIRequest("http://127.0.0.1:1/start", timeout=3).timeout == 3
    assert APIRequest("http://127.0.0.1:1/start", timeout=0.25).timeout == 0.25


@pytest.mark.parametrize("request_value", [None, 42, b"http://127.0.0.1:1/start", {"url": "x"}])
async def test_start_bot_with_no_request_is_type_error_before_a_session(
    request_value: Any,
) -> None:
    client, rec = new_client()
    for call in (client.start_bot, client.start_bot_and_connect):
        with pytest.raises(TypeError, match="APIRequest"):
            await within(call(request_value))
    assert client.state is State.IDLE and client.session_id == 0
    assert rec.names(transitions=True) == []


def test_api_request_refuses_a_non_string_endpoint_and_non_mapping_headers() -> None:
    with pytest.raises(TypeError, match="endpoint"):
        APIRequest(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers"):
        APIRequest("http://127.0.0.1:1/start", headers=[("a", "b")])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (DEEP, "nested too deeply"),
        ("[" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"1" * 10_000 + b"}", "10000-digit integer"),
        ("-" + "9" * 5000, "5000-digit integer"),
        (b"<html>", "is not JSON"),
        (b"\xff\xfe\x00", "is not JSON"),
    ],
)
def test_parse_json_says_why_a_body_is_unusable(raw: bytes | str, reason: str) -> None:
    with pytest.raises(UnusableJSON, match=reason):
        parse_json(raw)
    assert parse_json('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
