"""Function calls the client answers: handlers by name, one task per call.

The bot's LLM calls a client-side tool with ``llm-function-call-in-progress`` (or the
deprecated ``llm-function-call``); a registered handler runs in a task of its own and its
result goes back as ``llm-function-call-result``. Arguments and results are conversation
content: they are logged at debug level at most.

Bounds (a bot controls how many calls it sends and how long their ids are):

* at most :data:`MAX_RUNNING_CALLS` handlers run at once per session; a call beyond that is
  answered at once with an error result (``{"error": "too many function calls in
  progress ..."}``) so the bot's LLM never waits, with a rate-limited warning;
* a call runs at most once per ``tool_call_id`` within the session's last
  :data:`DEDUPE_WINDOW` calls; ids are remembered as 8-byte digests, never whole, and
  forgotten when the session ends;
* a result that cannot be encoded (nesting deeper than the JSON encoder recurses, lone
  surrogates, non-JSON types) is answered with an error result instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final

from lifecycle import rtvi
from lifecycle.events import FunctionCall
from lifecycle.logs import SafeLogger, bounded

__all__ = [
    "ANY_FUNCTION",
    "DEDUPE_WINDOW",
    "MAX_RUNNING_CALLS",
    "FunctionCallHandler",
    "FunctionCalls",
    "SessionCalls",
]

ANY_FUNCTION: Final = "*"
"""The handler name that answers every function without a handler of its own."""

FunctionCallHandler = Callable[[FunctionCall], Any | Awaitable[Any]]
"""``handler(call)``, sync or async; returns a JSON-serialisable result or ``None``."""

Send = Callable[[dict[str, Any]], None]

MAX_RUNNING_CALLS: Final = 64
"""Function call handlers running at once per session; further calls get an error result."""
DEDUPE_WINDOW: Final = 16_384
"""A ``tool_call_id`` seen within this many calls of the session does not run again."""
_REMEMBERED_NAMES: Final = 256  # function names kept for the once-per-function warning
_NAME_PREFIX: Final = 80  # a function name is bot-controlled: log a bounded prefix


def _bounded(text: str) -> str:
    return bounded(text, _NAME_PREFIX)


class FunctionCalls:
    """The client's handler registry; registering a name again replaces its handler."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, FunctionCallHandler] = {}

    def register(self, name: str, handler: FunctionCallHandler) -> None:
        """Answer calls of ``name`` (``"*"``: every function without its own) with ``handler``."""
        if not isinstance(name, str) or not name:
            raise ValueError("a function call handler needs a non-empty function name")
        if not callable(handler):
            raise TypeError(f"function call handler for {name!r} is not callable")
        self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        """Stop answering calls of ``name`` (no error when none was registered)."""
        self._handlers.pop(name, None)

    def unregister_all(self) -> None:
        """Stop answering every function call."""
        self._handlers.clear()

    def handler_for(self, function_name: str) -> FunctionCallHandler | None:
        """The handler of ``function_name``, else the ``"*"`` handler, else ``None``."""
        return self._handlers.get(function_name) or self._handlers.get(ANY_FUNCTION)


def _digest(tool_call_id: str) -> bytes:
    """What is remembered of a bot-chosen id: 8 bytes, whatever its length."""
    return hashlib.blake2b(tool_call_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _error_result(
    function_name: str, call: FunctionCall, call_id: str, error: str
) -> dict[str, Any]:
    return rtvi.function_call_result(function_name, call_id, call.arguments, {"error": error})


class SessionCalls:
    """The function calls of one session: runs handlers, sends results, cancels them.

    Every task belongs to the session: :meth:`cancel_all` (at session end) cancels
    those still running, forgets the ids seen and nothing more is sent.
    """

    __slots__ = (
        "_calls",
        "_ended",
        "_log",
        "_none_warned",
        "_running",
        "_seen",
        "_send",
        "_unnamed_warned",
    )

    def __init__(self, calls: FunctionCalls, send: Send, log: SafeLogger) -> None:
        self._calls = calls
        self._send = send
        self._log = log
        self._running: dict[bytes, asyncio.Task[None]] = {}
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._none_warned: OrderedDict[str, None] = OrderedDict()
        self._unnamed_warned = False
        self._ended = False

    def on_call(self, call: FunctionCall) -> None:
        """A call arrived: run its handler in a task, at most once per ``tool_call_id``."""
        if self._ended:
            return
        if call.function_name is None:
            if not self._unnamed_warned:
                self._unnamed_warned = True
                self._log.warning(
                    "function call without function_name: no handler runs; set the bot's "
                    "RTVIObserverParams(function_call_report_level=...) to NAME or FULL"
                )
            return
        tool_call_id = call.tool_call_id
        if tool_call_id is None:
            return
        key = _digest(tool_call_id)
        if key in self._seen:
            return
        handler = self._calls.handler_for(call.function_name)
        if handler is None:
            return
        self._remember(self._seen, key, DEDUPE_WINDOW)
        if len(self._running) >= MAX_RUNNING_CALLS:
            self._log.warning_limited(
                "too many function calls in progress: answered with an error",
                limit=MAX_RUNNING_CALLS,
            )
            self._answer(
                _error_result(
                    call.function_name,
                    call,
                    tool_call_id,
                    f"too many function calls in progress (limit {MAX_RUNNING_CALLS})",
                )
            )
            return
        task = asyncio.get_running_loop().create_task(self._run(handler, call, tool_call_id))
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))

    def on_stopped(self, tool_call_id: str | None, cancelled: bool | None) -> None:
        """``llm-function-call-stopped``: a cancelled call's handler is cancelled."""
        if cancelled is True and tool_call_id is not None:
            task = self._running.get(_digest(tool_call_id))
            if task is not None:
                task.cancel()

    def cancel_all(self) -> None:
        """The session ended: cancel every running handler, forget the ids; send nothing more."""
        self._ended = True
        self._seen.clear()
        for task in tuple(self._running.values()):
            with contextlib.suppress(RuntimeError):  # its loop may have closed already
                task.cancel()

    async def _run(self, handler: FunctionCallHandler, call: FunctionCall, call_id: str) -> None:
        name = call.function_name or ""
        try:
            result = handler(call)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            self._log.debug("function call handler cancelled", function_name=_bounded(name))
            raise
        except Exception as exc:
            self._log.error(
                "function call handler failed",
                function_name=_bounded(name),
                error_type=type(exc).__name__,
            )
            result = {"error": str(exc) or type(exc).__name__}
        if result is None:
            if name not in self._none_warned:
                self._remember(self._none_warned, name, _REMEMBERED_NAMES)
                self._log.warning(
                    "function call handler returned None: no result sent",
                    function_name=_bounded(name),
                )
            return
        if self._ended:
            return
        try:
            message = rtvi.function_call_result(name, call_id, call.arguments, result)
            rtvi.encode(message).encode("utf-8")  # exactly what a transport will do with it
        except (TypeError, ValueError, RecursionError) as exc:
            # Deep nesting, lone surrogates, non-JSON types: the bot's LLM still gets an answer.
            self._log.error(
                "function call result cannot be encoded",
                function_name=_bounded(name),
                error_type=type(exc).__name__,
            )
            message = _error_result(
                name, call, call_id, f"result cannot be encoded as JSON ({type(exc).__name__})"
            )
        self._log.debug("function call result", function_name=_bounded(name), result=result)
        self._answer(message)

    def _answer(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except Exception as exc:  # e.g. the transport went away meanwhile: nothing to answer
            self._log.debug("function call result not sent", error_type=type(exc).__name__)

    @staticmethod
    def _remember(seen: OrderedDict[Any, None], key: Any, limit: int) -> None:
        seen[key] = None
        if len(seen) > limit:
            seen.popitem(last=False)
