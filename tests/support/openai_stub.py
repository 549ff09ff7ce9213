"""A local stand-in for an OpenAI-compatible chat-completions endpoint, scripted by tests.

A real HTTP/1.1 server on 127.0.0.1 in a thread of its own, so sync tests, async tests, CLI
subprocesses and Pipecat bot processes (``OpenAILLMService(base_url=stub.base_url)``) all reach
it. It speaks the real wire format: ``POST .../chat/completions`` answers a ``chat.completion``
JSON object, or with ``"stream": true`` ``chat.completion.chunk`` server-sent events ending in
``data: [DONE]``; text and tool calls in both. ``GET .../models`` lists the model.

Tests script it with a handler: ``request JSON -> StubReply | str`` (a str is a text reply);
the default handler answers "ok". Every request is recorded with its headers.

    with OpenAIStub(handler) as stub:
        endpoint = ModelEndpoint(stub.base_url, "stub-model")
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "OpenAIStub",
    "Seen",
    "StubReply",
    "Tool",
    "last_user_text",
    "scripted",
    "text_reply",
    "tool_reply",
]


@dataclass(frozen=True)
class Tool:
    """A tool call the stand-in makes: ``name`` with ``arguments`` (dict, or a raw string)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class StubReply:
    """One answer: text and/or tool calls, or a ``raw`` body with ``status``, after ``delay``.

    ``chunk_delay`` paces stream events; ``raw`` replaces the whole body (sent as is, for
    malformed and hostile answers); ``content_type`` goes with it.
    """

    text: str | None = None
    tool_calls: Sequence[Tool] = ()
    status: int = 200
    raw: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    chunk_delay: float = 0.0


Handler = Callable[[dict[str, Any]], "StubReply | str"]


@dataclass
class Seen:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The request body as JSON."""
        return json.loads(self.body)


def text_reply(text: str) -> StubReply:
    """A plain text answer."""
    return StubReply(text=text)


def tool_reply(name: str, text: str | None = None, **arguments: Any) -> StubReply:
    """An answer calling tool ``name`` with ``arguments`` (and optional text)."""
    return StubReply(text=text, tool_calls=(Tool(name, dict(arguments)),))


def scripted(*replies: StubReply | str, then: StubReply | str | None = None) -> Handler:
    """A handler answering ``replies`` in order, then ``then`` (default: the last one again)."""
    queue = list(replies)
    lock = threading.Lock()

    def handler(_request: dict[str, Any]) -> StubReply | str:
        with lock:
            if queue:
                reply = queue.pop(0)
                if not queue and then is None:
                    queue.append(reply)
                return reply
        assert then is not None
        return then

    return handler


def last_user_text(request: dict[str, Any]) -> str:
    """The text of the last ``user`` message of a chat-completions request ("" if none)."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


class OpenAIStub:
    """The stand-in server; ``with OpenAIStub(handler) as stub`` (or ``start()``/``stop()``)."""

    def __init__(self, handler: Handler | None = None, *, model: str = "stub-model") -> None:
        self.handler: Handler = handler or (lambda _request: "ok")
        self.model = model
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The listening port."""
        assert self._server is not None, "the stub is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def completions(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completions requests so far."""
        with self._lock:
            return [s.json() for s in self.requests if s.path.endswith("/chat/completions")]

    def start(self) -> OpenAIStub:
        """Listen on 127.0.0.1 (a free port) and serve in a daemon thread."""
        stub = self

        class _Handler(_RequestHandler):
            owner = stub

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers in flight are abandoned."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the stub stops first; True when it is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that gave up (the timeout tests): not the stub's error
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (40 ms a request on Linux).
    disable_nagle_algorithm = True
    owner: OpenAIStub

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read stub.requests instead

    def do_GET(self) -> None:
        self.owner._record(Seen("GET", self.path, dict(self.headers), b""))
        if self.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": self.owner.model, "object": "model"}]}
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.owner._record(Seen("POST", self.path, dict(self.headers), body))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        request = json.loads(body)
        reply = self.owner.handler(request)
        if isinstance(reply, str):
            reply = StubReply(text=reply)
        if self.owner._wait(reply.delay):
            return
        if reply.raw is not None or reply.status != 200:
            raw = reply.raw if reply.raw is not None else _error_body(reply.status)
            self._send(reply.status, raw, reply.content_type)
        elif request.get("stream"):
            self._stream(request, reply)
        else:
            self._send(200, json.dumps(_completion(request, reply, self.owner.model)).encode())

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, request: dict[str, Any], reply: StubReply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in _chunks(request, reply, self.owner.model):
                if self.owner._wait(reply.chunk_delay):
                    return
                data = f"data: {event}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def _error_body(status: int) -> bytes:
    return json.dumps({"error": {"message": f"stub error {status}", "type": "stub"}}).encode()


_IDS = itertools.count(1)


def _call_id(index: int, tool: Tool) -> str:
    # Unique per call, as OpenAI's: a client dedupes function-call messages by this id.
    return tool.id or f"call_{next(_IDS)}_{index}_{tool.name}"


def _arguments(tool: Tool) -> str:
    return tool.arguments if isinstance(tool.arguments, str) else json.dumps(tool.arguments)


def _completion(request: dict[str, Any], reply: StubReply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(i, t),
                "type": "function",
                "function": {"name": t.name, "arguments": _arguments(t)},
            }
            for i, t in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", model),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunks(request: dict[str, Any], reply: StubReply, model: str) -> Iterator[str]:
    """The SSE data lines of a streamed answer: role, text in pieces, tool calls, finish."""
    base = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", model),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    words = (reply.text or "").split(" ")
    for i, word in enumerate(words if reply.text else []):
        yield chunk({"content": word if i == 0 else " " + word})
    for index, tool in enumerate(reply.tool_calls):
        args = _arguments(tool)
        head = {"name": tool.name, "arguments": ""}
        call = {"index": index, "id": _call_id(index, tool), "type": "function", "function": head}
        yield chunk({"tool_calls": [call]})
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        yield json.dumps({**base, "choices": [], "usage": usage})
    yield "[DONE]"
