"""Function calls the client answers: handlers by name, one task per call.

The bot's LLM calls a client-side tool with ``llm-function-call-in-progress`` (or the
deprecated ``llm-function-call``); a registered handler runs in a task of its own and its
result goes back as ``llm-function-call-result``. Arguments and results are conversation
content: they are logged at debug level at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final

from lifecycle import rtvi
from lifecycle.events import FunctionCall
from lifecycle.logs import SafeLogger, bounded

__all__ = ["ANY_FUNCTION", "FunctionCallHandler", "FunctionCalls", "SessionCalls"]

ANY_FUNCTION: Final = "*"
"""The handler name that answers every function without a handler of its own."""

FunctionCallHandler = Callable[[FunctionCall], Any | Awaitable[Any]]
"""``handler(call)``, sync or async; returns a JSON-serialisable result or ``None``."""

Send = Callable[[dict[str, Any]], None]

_REMEMBERED_CALLS: Final = 1024  # tool_call_ids kept per session for at-most-once
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


class SessionCalls:
    """The function calls of one session: runs handlers, sends results, cancels them.

    Every task belongs to the session: :meth:`cancel_all` (at session end) cancels
    those still running and nothing more is sent.
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
        self._running: dict[str, asyncio.Task[None]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
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
        if tool_call_id is None or tool_call_id in self._seen:
            return
        handler = self._calls.handler_for(call.function_name)
        if handler is None:
            return
        self._remember(self._seen, tool_call_id, _REMEMBERED_CALLS)
        task = asyncio.get_running_loop().create_task(self._run(handler, call, tool_call_id))
        self._running[tool_call_id] = task
        task.add_done_callback(lambda _: self._running.pop(tool_call_id, None))

    def on_stopped(self, tool_call_id: str | None, cancelled: bool | None) -> None:
        """``llm-function-call-stopped``: a cancelled call's handler is cancelled."""
        if cancelled is True and tool_call_id is not None:
            task = self._running.get(tool_call_id)
            if task is not None:
                task.cancel()

    def cancel_all(self) -> None:
        """The session ended: cancel every running handler; nothing more is sent."""
        self._ended = True
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
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            self._log.error(
                "function call result is not JSON-serialisable",
                function_name=_bounded(name),
                error_type=type(exc).__name__,
            )
            result = {"error": f"result is not JSON-serialisable ({type(exc).__name__})"}
        self._log.debug("function call result", function_name=_bounded(name), result=result)
        self._send(rtvi.function_call_result(name, call_id, call.arguments, result))

    @staticmethod
    def _remember(seen: OrderedDict[str, None], key: str, limit: int) -> None:
        seen[key] = None
        if len(seen) > limit:
            seen.popitem(last=False)
