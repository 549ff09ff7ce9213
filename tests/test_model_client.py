"""The model client (lifecycle.testing.model) against the local OpenAI stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from lifecycle.testing import ModelEndpoint
from lifecycle.testing.model import (
    MAX_DEPTH,
    MAX_RESPONSE_BYTES,
    ModelCallLimitError,
    ModelClient,
    ModelError,
    ModelReply,
    ModelResponseError,
    ModelUnreachableError,
    ToolCall,
    endpoint_from_block,
)

from .support.openai_stub import OpenAIStub, StubReply, Tool, scripted, tool_reply

KEY = "sk-test-SECRET-0123456789abcdef"
BOUND = 20.0
END_CALL = {
    "type": "function",
    "function": {
        "name": "end_call",
        "parameters": {
            "type": "object",
            "properties": {"success": {"type": "boolean"}, "reason": {"type": "string"}},
        },
    },
}
USER = [{"role": "user", "content": "Is it raining?"}]


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def endpoint(stub: OpenAIStub, **extra: Any) -> ModelEndpoint:
    return ModelEndpoint(stub.base_url, "stub-model", extra=extra or None)


async def ask(client: ModelClient, **kwargs: Any) -> ModelReply:
    async with asyncio.timeout(BOUND):
        return await client.complete(USER, **kwargs)


@pytest.mark.parametrize("stream", [False, True])
async def test_text_answer_plain_and_streamed(stub: OpenAIStub, stream: bool) -> None:
    stub.handler = lambda request: "no, it is not raining today"
    async with ModelClient(endpoint(stub, temperature=0)) as client:
        reply = await ask(client, stream=stream)
    assert reply == ModelReply("no, it is not raining today", ())
    sent = stub.completions[0]
    assert sent["model"] == "stub-model" and sent["messages"] == USER
    assert sent["temperature"] == 0
    assert sent.get("stream", False) is stream
    assert stub.requests[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_plain_and_streamed(stub: OpenAIStub, stream: bool) -> None:
    stub.handler = lambda request: StubReply(
        text="Goodbye!",
        tool_calls=(Tool("end_call", {"success": True, "reason": "booked"}, id="call_9"),),
    )
    async with ModelClient(endpoint(stub)) as client:
        reply = await ask(client, tools=[END_CALL], stream=stream)
    assert reply.text == "Goodbye!"
    assert reply.tool_calls == (
        ToolCall("call_9", "end_call", {"success": True, "reason": "booked"}),
    )
    assert stub.completions[0]["tools"] == [END_CALL]


async def test_calls_are_counted_and_capped(stub: OpenAIStub) -> None:
    async with ModelClient(endpoint(stub), max_calls=2) as client:
        await ask(client)
        await ask(client)
        with pytest.raises(ModelCallLimitError, match="2 calls"):
            await ask(client)
        assert client.calls == 2
    assert len(stub.completions) == 2


async def test_unreachable_endpoint() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = ModelClient(ModelEndpoint(f"http://127.0.0.1:{port}/v1", "m"), timeout=5)
    async with client:
        with pytest.raises(ModelUnreachableError, match="cannot be reached") as caught:
            await ask(client)
    assert_clean(caught.value)


@pytest.mark.parametrize("status", [500, 503, 429, 404])
async def test_http_error_status(stub: OpenAIStub, status: int) -> None:
    stub.handler = lambda request: StubReply(status=status)
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelUnreachableError, match=f"HTTP {status}: stub error") as caught:
            await ask(client)
    assert_clean(caught.value)


async def test_wrong_key_answer_never_repeats_the_key(stub: OpenAIStub) -> None:
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
    stub.handler = lambda request: StubReply(status=401, raw=echo)
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelUnreachableError, match=r"HTTP 401.*\$OPENAI_API_KEY") as caught:
            await ask(client)
    assert_clean(caught.value)


async def test_error_text_echoing_the_key_is_scrubbed(stub: OpenAIStub) -> None:
    echo = json.dumps({"error": {"message": f"bad request for {KEY}"}}).encode()
    stub.handler = lambda request: StubReply(status=200, raw=echo)
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelResponseError, match="answered an error") as caught:
            await ask(client)
    assert_clean(caught.value)


async def test_slow_answer_is_a_timeout(stub: OpenAIStub) -> None:
    stub.handler = lambda request: StubReply(text="late", delay=30)
    async with ModelClient(endpoint(stub), timeout=0.5) as client:
        with pytest.raises(ModelUnreachableError, match=r"did not answer within 0\.5 s") as caught:
            await ask(client)
    assert_clean(caught.value)


async def test_slow_stream_is_bounded_in_total_time(stub: OpenAIStub) -> None:
    # Each event comes before any read timeout would fire; the total bound stops it.
    stub.handler = lambda request: StubReply(text="word " * 200, chunk_delay=0.05)
    async with ModelClient(endpoint(stub), timeout=0.5) as client:
        with pytest.raises(ModelUnreachableError, match="did not answer within"):
            await ask(client, stream=True)


HOSTILE = {
    "not json": b"<html>hello</html>",
    "a list": b"[1, 2, 3]",
    "no choices": b'{"choices": []}',
    "choices not a list": b'{"choices": {"0": 1}}',
    "message not an object": b'{"choices": [{"message": "hi"}]}',
    "content not a string": b'{"choices": [{"message": {"content": {"a": 1}}}]}',
    "tool_calls not a list": b'{"choices": [{"message": {"content": "", "tool_calls": 5}}]}',
    "function missing": b'{"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]}',
    "arguments not json": (
        b'{"choices": [{"message": {"tool_calls": [{"id": "x", "function": '
        b'{"name": "end_call", "arguments": "{oops"}}]}}]}'
    ),
    "arguments a list": (
        b'{"choices": [{"message": {"tool_calls": [{"id": "x", "function": '
        b'{"name": "end_call", "arguments": "[1]"}}]}}]}'
    ),
    "deep": b'{"choices": [{"message": {"content": "x", "junk": '
    + b"[" * (MAX_DEPTH + 5)
    + b"]" * (MAX_DEPTH + 5)
    + b"}}]}",
    "very deep": b"[" * 200_000 + b"]" * 200_000,
    "huge": b'{"choices": [{"message": {"content": "' + b"a" * (MAX_RESPONSE_BYTES + 10) + b'"}}]}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_answers_are_clear_errors(stub: OpenAIStub, name: str) -> None:
    stub.handler = lambda request: StubReply(raw=HOSTILE[name])
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelResponseError) as caught:
            await ask(client, tools=[END_CALL])
    assert "Traceback" not in str(caught.value)
    assert len(str(caught.value)) < 500
    assert_clean(caught.value)


HOSTILE_STREAMS = {
    "event not json": b"data: {nope\n\n",
    "event a string": b'data: "hi"\n\n',
    "delta content a number": b'data: {"choices": [{"delta": {"content": 5}}]}\n\n',
    "error event": b'data: {"error": {"message": "overloaded"}}\n\n',
    "no data at all": b": keep-alive\n\n",
    "huge": b'data: {"choices": [{"delta": {"content": "'
    + b"a" * (MAX_RESPONSE_BYTES + 10)
    + b'"}}]}\n\n',
    "tool index negative": (
        b'data: {"choices": [{"delta": {"tool_calls": [{"index": -1, "function": '
        b'{"name": "end_call"}}]}}]}\n\n'
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_STREAMS))
async def test_hostile_streams_are_clear_errors(stub: OpenAIStub, name: str) -> None:
    body = HOSTILE_STREAMS[name]
    stub.handler = lambda request: StubReply(raw=body, content_type="text/event-stream")
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelResponseError) as caught:
            await ask(client, tools=[END_CALL], stream=True)
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_tool_is_refused(stub: OpenAIStub, stream: bool) -> None:
    stub.handler = lambda request: tool_reply("transfer_money", amount=10**6)
    async with ModelClient(endpoint(stub)) as client:
        with pytest.raises(ModelResponseError, match="unknown tool 'transfer_money'"):
            await ask(client, tools=[END_CALL], stream=stream)


async def test_too_many_tool_calls_are_refused(stub: OpenAIStub) -> None:
    many = tuple(Tool("end_call", {}) for _ in range(100))
    stub.handler = lambda request: StubReply(tool_calls=many)
    async with ModelClient(endpoint(stub)) as client:
        for stream in (False, True):
            with pytest.raises(ModelResponseError, match="more than"):
                await ask(client, tools=[END_CALL], stream=stream)


async def test_scripted_handler_and_no_key(
    stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    stub.handler = scripted("one", "two")
    async with ModelClient(endpoint(stub)) as client:
        texts = [(await ask(client)).text for _ in range(3)]
    assert texts == ["one", "two", "two"]
    assert all("Authorization" not in s.headers for s in stub.requests)


async def test_key_never_in_logs_or_errors(
    stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG
    failures: list[BaseException] = []
    replies: list[StubReply | str] = [
        StubReply(status=500),
        StubReply(raw=b"nope"),
        StubReply(delay=5),
        "fine",
    ]
    stub.handler = scripted(*replies)
    async with ModelClient(endpoint(stub), timeout=0.5) as client:
        for _ in replies:
            try:
                await ask(client)
            except ModelError as exc:
                failures.append(exc)
    assert len(failures) == 3
    for failure in failures:
        assert_clean(failure)
    assert KEY not in caplog.text
    assert stub.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


def assert_clean(exc: BaseException) -> None:
    """Neither the error, its cause nor its context (nor theirs) mentions the key."""
    seen: BaseException | None = exc
    while seen is not None:
        assert KEY not in str(seen) and KEY not in repr(seen.args)
        request = getattr(seen, "request", None)
        assert request is None, "an httpx error (whose request holds the key) is chained"
        seen = seen.__cause__ or seen.__context__


def test_endpoint_is_frozen_and_has_no_key() -> None:
    ep = ModelEndpoint("http://127.0.0.1:1/v1", "m", extra={"temperature": 0})
    with pytest.raises(AttributeError):
        ep.model = "other"  # type: ignore[misc]
    assert "sk-" not in repr(ep)
    for bad in ("", "ftp://x"):
        with pytest.raises(ValueError, match="base_url"):
            ModelEndpoint(bad, "m")


@pytest.mark.parametrize(
    ("block", "env", "expected"),
    [
        ({"service": "ollama", "model": "qwen3"}, {}, "http://localhost:11434/v1"),
        ({"service": "ollama", "model": "q"}, {"OLLAMA_HOST": "gpu:1234"}, "http://gpu:1234/v1"),
        ({"model": "q"}, {"OLLAMA_HOST": "https://o.example/"}, "https://o.example:11434/v1"),
        ({"model": "q"}, {"OLLAMA_HOST": "http://h:80/v1"}, "http://h:80/v1"),
        ({"model": "q"}, {"OLLAMA_HOST": "10.0.0.2"}, "http://10.0.0.2:11434/v1"),
        ({"service": "openai", "model": "g"}, {}, "https://api.openai.com/v1"),
        ({"service": "openai"}, {"OPENAI_BASE_URL": "http://vllm:8000/v1"}, "http://vllm:8000/v1"),
        ({"service": "openai", "endpoint": "http://e/v1"}, {"OPENAI_BASE_URL": "x"}, "http://e/v1"),
    ],
)
def test_endpoint_from_block(block: dict[str, Any], env: dict[str, str], expected: str) -> None:
    assert endpoint_from_block(block, environ=env).base_url == expected


def test_endpoint_from_block_defaults_and_overrides() -> None:
    ollama = endpoint_from_block({}, environ={})
    assert (ollama.model, ollama.extra) == ("gemma4:12b", {"reasoning_effort": "none"})
    assert endpoint_from_block({"service": "openai"}, environ={}).model == "gpt-4o"
    block = {"service": "ollama", "model": "q", "extra": {"temperature": 0}, "api_key_env": "K"}
    ep = endpoint_from_block(block, url="http://127.0.0.1:9/v1", model="m2", environ={})
    assert ep == ModelEndpoint(
        "http://127.0.0.1:9/v1", "m2", api_key_env="K", extra={"temperature": 0}
    )
    factory = {"factory": "my.module.judge", "model": "x"}
    assert endpoint_from_block(factory, url="http://127.0.0.1:9/v1").model == "x"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"service": "anthropic"}, "unknown model service"),
        ({"factory": "my.module.llm"}, "needs pipecat.evals"),
        ({"model": 5}, "'model:' must be"),
        ({"extra": [1]}, "'extra:' must be a mapping"),
        ({"endpoint": ""}, "'endpoint:' must be"),
    ],
)
def test_endpoint_from_bad_block(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        endpoint_from_block(block, environ={})
