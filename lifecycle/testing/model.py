"""The one OpenAI chat-completions client of the toolkit: judges and simulated callers use it.

It speaks the chat-completions wire format over httpx to any OpenAI-compatible endpoint
(OpenAI, Ollama's ``/v1``, vLLM, LM Studio...), plain JSON or ``stream: true`` server-sent
events, text and tool calls alike. Everything a model endpoint sends is hostile input: the
answer is bounded in size, JSON nesting, total time and number of calls, and a bad one is a
:class:`ModelResponseError` with a clear message, never a hang or a traceback.

The key is read from the environment (``OPENAI_API_KEY`` unless the endpoint names another
variable) on each call and sent as ``Authorization: Bearer``; it never appears in a log line,
an exception message or a chained cause (errors are raised outside the ``except`` block that
saw the httpx failure, whose request carries the header).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import httpx

from lifecycle.redact import REDACTED, redact_text
from lifecycle.timeouts import check_seconds

__all__ = [
    "DEFAULT_OLLAMA_URL",
    "DEFAULT_OPENAI_URL",
    "MAX_DEPTH",
    "MAX_RESPONSE_BYTES",
    "ModelCallLimitError",
    "ModelClient",
    "ModelEndpoint",
    "ModelError",
    "ModelReply",
    "ModelResponseError",
    "ModelUnreachableError",
    "ToolCall",
    "endpoint_from_block",
]

DEFAULT_OPENAI_URL: Final = "https://api.openai.com/v1"
DEFAULT_OLLAMA_URL: Final = "http://localhost:11434/v1"
# pipecat.evals' defaults (services.py) when a block names no model.
DEFAULT_OPENAI_MODEL: Final = "gpt-4o"
DEFAULT_OLLAMA_MODEL: Final = "gemma4:12b"
DEFAULT_OLLAMA_EXTRA: Final[Mapping[str, Any]] = {"reasoning_effort": "none"}
MAX_RESPONSE_BYTES: Final = 2 * 1024 * 1024
MAX_DEPTH: Final = 32
MAX_TOOL_CALLS: Final = 16
_SNIPPET: Final = 200


class ModelError(Exception):
    """A model endpoint could not give a usable answer; the message says why."""


class ModelUnreachableError(ModelError):
    """The endpoint could not be reached or run: connect error, timeout, HTTP error status."""


class ModelResponseError(ModelError):
    """The endpoint answered something that is not a usable chat completion."""


class ModelCallLimitError(ModelError):
    """The client's cap on model calls is reached; no request was sent."""


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible chat-completions endpoint: base URL (up to ``/v1``) and model.

    ``api_key_env`` names the environment variable holding the key (read at call time, never
    stored); ``extra`` goes into every request body as top-level parameters (for example
    ``{"temperature": 0}`` or ``{"reasoning_effort": "none"}``).
    """

    base_url: str
    model: str
    _: KW_ONLY
    api_key_env: str = "OPENAI_API_KEY"
    extra: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        for name in ("base_url", "model", "api_key_env"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ModelEndpoint.{name} must be a non-empty string")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"ModelEndpoint.base_url must be an http(s) URL: {self.base_url!r}")
        if self.extra is not None and not isinstance(self.extra, Mapping):
            raise ValueError("ModelEndpoint.extra must be a mapping")


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model made: its id, the tool's name and the parsed arguments."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ModelReply:
    """A model's answer: its text (may be empty) and its tool calls, in order."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()


class ModelClient:
    """Chat completions against one :class:`ModelEndpoint`, bounded in time and calls.

    ``timeout`` bounds each call whole (connect, wait and the full answer); ``max_calls``
    (``None``: no cap) bounds how many calls this client makes, counted in :attr:`calls`.
    Use ``async with ModelClient(endpoint) as model:`` or call :meth:`aclose`.
    """

    def __init__(
        self, endpoint: ModelEndpoint, *, timeout: float = 60.0, max_calls: int | None = None
    ) -> None:
        if not isinstance(endpoint, ModelEndpoint):
            raise TypeError("endpoint must be a ModelEndpoint")
        self.endpoint = endpoint
        self.timeout = check_seconds(timeout, "timeout")
        if max_calls is not None and (
            isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 1
        ):
            raise ValueError(f"max_calls must be a positive integer or None, not {max_calls!r}")
        self.max_calls = max_calls
        self.calls = 0
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout), follow_redirects=False, trust_env=False
        )
        self._url = endpoint.base_url.rstrip("/") + "/chat/completions"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (idempotent)."""
        await self._http.aclose()

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        stream: bool = False,
    ) -> ModelReply:
        """Send ``messages`` (chat-completions dicts) and return the model's reply.

        ``tools`` are OpenAI function tools (``{"type": "function", "function": {...}}``); a
        tool call naming none of them is a :class:`ModelResponseError`. ``stream`` asks for
        server-sent events and joins them into one reply.
        """
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise ModelCallLimitError(
                f"model call limit reached ({self.max_calls} calls to {self.endpoint.model})"
            )
        self.calls += 1
        body: dict[str, Any] = dict(self.endpoint.extra or {})
        body["model"] = self.endpoint.model
        body["messages"] = [dict(m) for m in messages]
        tool_names: frozenset[str] | None = None
        if tools:
            body["tools"] = [dict(t) for t in tools]
            tool_names = frozenset(_tool_name(t) for t in tools)
        if stream:
            body["stream"] = True
        failure: ModelError
        try:
            async with asyncio.timeout(self.timeout):
                return await self._post(body, tool_names, stream)
        except ModelError as exc:
            failure = _scrubbed(exc, self._key())
        except TimeoutError:
            failure = ModelUnreachableError(
                f"model endpoint {self._where()} did not answer within {self.timeout:g} s"
            )
        except httpx.TimeoutException:
            failure = ModelUnreachableError(
                f"model endpoint {self._where()} did not answer within {self.timeout:g} s"
            )
        except httpx.HTTPError as exc:
            failure = ModelUnreachableError(
                f"model endpoint {self._where()} cannot be reached: {type(exc).__name__}"
            )
        # Raised here, outside the except blocks: the httpx error (its request holds the
        # Authorization header) is neither the cause nor the context.
        raise failure

    def _key(self) -> str | None:
        return os.environ.get(self.endpoint.api_key_env) or None

    def _where(self) -> str:
        return redact_text(self._url)

    async def _post(
        self, body: dict[str, Any], tool_names: frozenset[str] | None, stream: bool
    ) -> ModelReply:
        headers = {"Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = self._http.build_request("POST", self._url, json=body, headers=headers)
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code >= 300:
                raw = await _read_capped(response.aiter_bytes(), 16 * 1024, self._where())
                raise ModelUnreachableError(self._status_message(response.status_code, raw))
            if stream:
                return await self._read_stream(response, tool_names)
            raw = await _read_capped(response.aiter_bytes(), MAX_RESPONSE_BYTES, self._where())
            return _reply_from_json(_loads(raw, "answer"), tool_names)
        finally:
            await response.aclose()

    def _status_message(self, status: int, raw: bytes) -> str:
        message = f"model endpoint {self._where()} answered HTTP {status}"
        if status in (401, 403):
            # Providers echo part of a wrong key back; none of it is repeated.
            return f"{message}: check the key in ${self.endpoint.api_key_env}"
        try:
            detail = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError, RecursionError):
            detail = None
        if isinstance(detail, str) and detail.strip():
            message += f": {_snippet(detail)}"
        return message

    async def _read_stream(
        self, response: httpx.Response, tool_names: frozenset[str] | None
    ) -> ModelReply:
        stream = _StreamJoin()
        total = 0
        pending = b""
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > MAX_RESPONSE_BYTES:
                raise ModelResponseError(_too_big(self._where()))
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if stream.feed(line):
                    return stream.reply(tool_names)
        if pending and stream.feed(pending):
            return stream.reply(tool_names)
        if not stream.seen:
            raise ModelResponseError("model stream ended without any data event")
        return stream.reply(tool_names)


class _StreamJoin:
    """Joins ``chat.completion.chunk`` events: text deltas and tool-call deltas by index."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.seen = False

    def feed(self, line: bytes) -> bool:
        """Take one SSE line; True once ``data: [DONE]`` arrived."""
        line = line.rstrip(b"\r")
        if not line.startswith(b"data:"):
            return False  # comments, event:/id: fields, blank separators
        data = line[5:].strip()
        if data == b"[DONE]":
            return True
        self.seen = True
        chunk = _loads(data, "stream event")
        if not isinstance(chunk, dict):
            raise ModelResponseError("model stream event is not a JSON object")
        if "error" in chunk:
            raise ModelResponseError(f"model stream reported an error: {_error_text(chunk)}")
        choices = chunk.get("choices", [])
        if not isinstance(choices, list):
            raise ModelResponseError("model stream event: 'choices' is not a list")
        for choice in choices[:1]:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if delta is None:
                continue
            if not isinstance(delta, dict):
                raise ModelResponseError("model stream event: 'delta' is not an object")
            content = delta.get("content")
            if content is not None:
                self.text.append(_string(content, "delta.content"))
            self._feed_calls(delta.get("tool_calls"))
        return False

    def _feed_calls(self, deltas: Any) -> None:
        if deltas is None:
            return
        if not isinstance(deltas, list):
            raise ModelResponseError("model stream event: 'tool_calls' is not a list")
        for delta in deltas:
            if not isinstance(delta, dict):
                raise ModelResponseError("model stream event: a tool call is not an object")
            index = delta.get("index", 0)
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ModelResponseError("model stream event: a tool call index is not valid")
            if index not in self.calls and len(self.calls) >= MAX_TOOL_CALLS:
                raise ModelResponseError(f"model made more than {MAX_TOOL_CALLS} tool calls")
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = delta.get("function") or {}
            if not isinstance(function, dict):
                raise ModelResponseError("model stream event: 'function' is not an object")
            if delta.get("id") is not None:
                call["id"] = _string(delta["id"], "tool call id")
            for part in ("name", "arguments"):
                if function.get(part) is not None:
                    call[part] += _string(function[part], f"function.{part}")

    def reply(self, tool_names: frozenset[str] | None) -> ModelReply:
        calls = tuple(
            _tool_call(c["id"], c["name"], c["arguments"], tool_names)
            for _, c in sorted(self.calls.items())
        )
        return ModelReply("".join(self.text), calls)


async def _read_capped(chunks: AsyncIterator[bytes], limit: int, where: str) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise ModelResponseError(_too_big(where))
        parts.append(chunk)
    return b"".join(parts)


def _too_big(where: str) -> str:
    return f"model endpoint {where} sent more than {MAX_RESPONSE_BYTES} bytes"


def _loads(raw: bytes | str, what: str) -> Any:
    """JSON from a model, nesting bounded (the C parser's own limit is far above ours)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ModelResponseError(f"model {what} is not valid JSON") from None
    _check_depth(value, what)
    return value


def _check_depth(value: Any, what: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelResponseError(f"model {what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _reply_from_json(answer: Any, tool_names: frozenset[str] | None) -> ModelReply:
    if not isinstance(answer, dict):
        raise ModelResponseError("model answer is not a JSON object")
    if "error" in answer:
        raise ModelResponseError(f"model answered an error: {_error_text(answer)}")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelResponseError("model answer has no 'choices'")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ModelResponseError("model answer's choice has no 'message' object")
    content = message.get("content")
    text = "" if content is None else _string(content, "message.content")
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ModelResponseError("model answer: 'tool_calls' is not a list")
    if len(raw_calls) > MAX_TOOL_CALLS:
        raise ModelResponseError(f"model made more than {MAX_TOOL_CALLS} tool calls")
    calls = []
    for raw in raw_calls:
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict):
            raise ModelResponseError("model answer: a tool call has no 'function' object")
        calls.append(
            _tool_call(
                _string(raw.get("id", ""), "tool call id"),
                _string(function.get("name"), "function.name"),
                function.get("arguments", "{}"),
                tool_names,
            )
        )
    return ModelReply(text, tuple(calls))


def _tool_call(
    call_id: str, name: str, arguments: Any, tool_names: frozenset[str] | None
) -> ToolCall:
    if not name:
        raise ModelResponseError("model made a tool call without a name")
    if tool_names is not None and name not in tool_names:
        raise ModelResponseError(
            f"model called an unknown tool {_snippet(name)!r} "
            f"(offered: {', '.join(sorted(tool_names))})"
        )
    if arguments is None or arguments == "":
        parsed: Any = {}
    elif isinstance(arguments, str):
        parsed = _loads(arguments, f"arguments of tool {name!r}")
    else:
        parsed = arguments  # some servers send an object, not a JSON string
        _check_depth(parsed, f"arguments of tool {name!r}")
    if not isinstance(parsed, dict):
        raise ModelResponseError(f"model's arguments of tool {name!r} are not a JSON object")
    return ToolCall(call_id, name, parsed)


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError("each tool must be {'type': 'function', 'function': {'name': ...}}")
    return name


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ModelResponseError(f"model answer: {what} is not a string")
    return value


def _error_text(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return _snippet(error) if isinstance(error, str) else "(no message)"


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return redact_text(text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else ""))


def _scrubbed(exc: ModelError, key: str | None) -> ModelError:
    """The same error without the key (an endpoint may echo it back in any text we quote)."""
    message = str(exc)
    if key and key in message:
        return type(exc)(message.replace(key, REDACTED))
    return type(exc)(message)


def endpoint_from_block(
    block: Mapping[str, Any],
    *,
    url: str | None = None,
    model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelEndpoint:
    """The endpoint a ``simulator:`` or ``judge:`` model block names.

    ``endpoint:`` wins; else ``service: openai`` uses ``OPENAI_BASE_URL`` (default
    :data:`DEFAULT_OPENAI_URL`) and ``service: ollama`` (the default service, as in
    pipecat.evals) uses ``OLLAMA_HOST`` (``host:port`` or a URL, ``/v1`` appended; default
    :data:`DEFAULT_OLLAMA_URL`). ``url``/``model`` (the command line) override the block.
    A block with only a ``factory:`` needs ``url``. Bad blocks raise ``ValueError``.
    """
    env = os.environ if environ is None else environ
    if not isinstance(block, Mapping):
        raise ValueError("a model block must be a mapping")
    service = str(block.get("service") or "ollama").lower()
    base = url or _block_str(block, "endpoint")
    if base is None:
        if block.get("factory") is not None:
            raise ValueError(
                "a 'factory:' model block builds a Pipecat service, which needs pipecat.evals; "
                "give the endpoint on the command line (--simulator-url / --judge-url)"
            )
        if service == "openai":
            base = env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL
        elif service == "ollama":
            base = _ollama_url(env.get("OLLAMA_HOST"))
        else:
            raise ValueError(
                f"unknown model service {service!r}: use openai or ollama, or give 'endpoint:'"
            )
    chosen = model or _block_str(block, "model")
    extra = block.get("extra")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError("'extra:' must be a mapping")
    if chosen is None:
        chosen = DEFAULT_OPENAI_MODEL if service == "openai" else DEFAULT_OLLAMA_MODEL
        if service == "ollama" and extra is None:
            extra = DEFAULT_OLLAMA_EXTRA
    key_env = _block_str(block, "api_key_env") or "OPENAI_API_KEY"
    return ModelEndpoint(base, chosen, api_key_env=key_env, extra=dict(extra) if extra else None)


def _block_str(block: Mapping[str, Any], key: str) -> str | None:
    value = block.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}:' must be a non-empty string")
    return value.strip()


def _ollama_url(host: str | None) -> str:
    host = (host or "").strip()
    if not host:
        return DEFAULT_OLLAMA_URL
    if "://" not in host:
        host = "http://" + host
    scheme, _, rest = host.partition("://")
    authority, slash, path = rest.partition("/")
    if ":" not in authority.rsplit("]", 1)[-1]:
        authority += ":11434"  # Ollama's own default port
    path = (slash + path).rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{scheme}://{authority}{path}"
