"""Log lines made in the asyncio thread, written from the gevent side (no shared lock).

Locust gevent-patches ``threading``: every stdlib ``logging`` lock (each handler's, the
module's) becomes a gevent lock, which a native thread must not take: a record emitted from
the sessions' loop thread while a greenlet held a handler's lock could block for good (at
Locust's default INFO level about one run in five never reached its ``-t`` limit; the
state machine library ``transitions`` alone writes two INFO lines per transition).

So nothing is written from the loop thread. A :class:`LogRelay` takes

* the library's own lines, through :meth:`LogRelay.logger` (a structlog-like logger
  handed to the clients and transports on the loop thread; lines are redacted before they
  are queued, since the client's :class:`~lifecycle.logs.SafeLogger` wraps it), and
* every record another library emits on the loop thread: each handler present when the
  relay is made (Locust's own included) queues such records instead of writing them;

appends them to a ``collections.deque`` (atomic, lock-free) and wakes the gevent hub
through a started ``async`` watcher (thread-safe by design). A greenlet then writes them.
At most :data:`MAX_QUEUED` wait; past that the oldest go (only a stalled gevent side gets
there). Handlers added after the relay was made are not covered.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any, Final

import gevent
import gevent.event
from gevent import monkey

from lifecycle.logs import get_logger

__all__ = ["MAX_QUEUED", "LogRelay", "RelayedLogger"]

MAX_QUEUED: Final = 10_000
"""Lines held for the gevent side at most; the oldest are dropped past it."""

_native_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")


class RelayedLogger:
    """A structlog-like logger for the loop thread: queues each line, never takes a lock."""

    __slots__ = ("_context", "_relay")

    def __init__(self, relay: LogRelay, context: dict[str, Any]) -> None:
        self._relay = relay
        self._context = context

    def bind(self, **fields: Any) -> RelayedLogger:
        """A logger adding ``fields`` to every line."""
        return RelayedLogger(self._relay, {**self._context, **fields})

    def is_enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` is kept (the level is read on the gevent side)."""
        return level >= self._relay.level

    def debug(self, event: str, **fields: Any) -> None:
        """Queue a debug line."""
        self._relay.put("debug", event, {**self._context, **fields})

    def info(self, event: str, **fields: Any) -> None:
        """Queue an info line."""
        self._relay.put("info", event, {**self._context, **fields})

    def warning(self, event: str, **fields: Any) -> None:
        """Queue a warning line."""
        self._relay.put("warning", event, {**self._context, **fields})

    def error(self, event: str, **fields: Any) -> None:
        """Queue an error line."""
        self._relay.put("error", event, {**self._context, **fields})


class LogRelay:
    """Made in the gevent (main) thread; :meth:`logger` is for the loop thread.

    A greenlet of its own writes the queued lines: the library's with
    :func:`~lifecycle.logs.get_logger`'s logger (stdlib ``lifecycle`` or structlog, as the
    application configured), other records with the handler that queued them.
    """

    def __init__(self) -> None:
        self._home = _native_ident()
        self._queue: collections.deque[Callable[[], object]] = collections.deque(maxlen=MAX_QUEUED)
        self.level = _lowest_enabled()
        """The lowest level the library's logger keeps, read on the gevent side."""
        self._wakeup = gevent.event.Event()
        self._watcher: Any = gevent.get_hub().loop.async_()
        self._watcher.start(self._wakeup.set)
        self._writer = gevent.spawn(self._write)
        for handler in _all_handlers():
            self._divert(handler)

    def logger(self) -> RelayedLogger:
        """The logger to hand to clients and transports running on the loop thread."""
        return RelayedLogger(self, {})

    def put(self, method: str, event: str, fields: dict[str, Any]) -> None:
        """Queue one of the library's lines (any thread) and wake the writer."""
        self._queue.append(lambda: getattr(get_logger(), method)(event, **fields))
        self._watcher.send()

    def _divert(self, handler: logging.Handler) -> None:
        """Make ``handler`` queue the records of other threads instead of writing them."""
        if getattr(handler, "_lifecycle_relay", None) is self:
            return
        handle = handler.handle

        def relayed(record: logging.LogRecord) -> Any:
            if _native_ident() == self._home:
                return handle(record)
            self._queue.append(lambda: handle(record))
            self._watcher.send()
            return True

        handler.handle = relayed  # type: ignore[method-assign]
        handler._lifecycle_relay = self  # type: ignore[attr-defined]

    def _write(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            self.level = _lowest_enabled()
            while self._queue:
                self._queue.popleft()()


def _all_handlers() -> list[logging.Handler]:
    """Every handler on the root logger and on the loggers that exist now."""
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in list(logger.handlers):
            seen[id(handler)] = handler
    return list(seen.values())


def _lowest_enabled() -> int:
    """The lowest level :func:`~lifecycle.logs.get_logger` keeps now (stdlib or structlog)."""
    log = get_logger()
    for level in (logging.DEBUG, logging.INFO, logging.WARNING):
        if log.enabled(level):
            return level
    return logging.ERROR
