"""One asyncio event loop in a native thread, usable from gevent greenlets.

Locust gevent-patches the whole process and has no asyncio support. Our sessions run on
a real asyncio loop in a real OS thread (started with the unpatched ``_thread`` function,
with an unpatched epoll selector); a greenlet hands a coroutine over and waits for it with
a gevent primitive that the loop thread wakes through gevent's thread-safe callback, so
no lock is ever shared between the two threads. DNS lookups run in a native thread of
their own, because the loop's default executor would start (patched) greenlet "threads"
that never run in the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

import gevent
import gevent.event
from gevent import monkey

_T = TypeVar("_T")

_start_new_thread: Any = monkey.get_original("_thread", "start_new_thread")
_getaddrinfo: Any = monkey.get_original("socket", "getaddrinfo")
_EpollSelector: Any = monkey.get_original("selectors", "EpollSelector")


def _resolve_later(result: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if result.done():
        return
    if error is not None:
        result.set_exception(error)
    else:
        result.set_result(value)


class _NativeLoop(asyncio.SelectorEventLoop):
    """An event loop on the real epoll selector, resolving names in native threads."""

    def __init__(self) -> None:
        super().__init__(_EpollSelector())

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        result: asyncio.Future[list[tuple[Any, ...]]] = self.create_future()

        def resolve() -> None:
            try:
                value = _getaddrinfo(host, port, family, type, proto, flags)
            except (OSError, UnicodeError) as exc:
                self.call_soon_threadsafe(_resolve_later, result, None, exc)
            else:
                self.call_soon_threadsafe(_resolve_later, result, value, None)

        _start_new_thread(resolve, ())
        return await result


class Handle(Generic[_T]):
    """A coroutine running on the loop, seen from the greenlet thread.

    ``wakeup`` (a gevent event) is set when the coroutine finishes and whenever the loop
    thread calls :meth:`wake`. The crossing is a started gevent ``async`` watcher (what
    gevent's own thread pool uses): ``send()`` is safe from any thread, and a started
    watcher keeps the hub alive while a greenlet waits. Make and close a handle in the
    greenlet thread.
    """

    def __init__(self) -> None:
        self.wakeup = gevent.event.Event()
        self._watcher: Any = gevent.get_hub().loop.async_()
        self._watcher.start(self.wakeup.set)
        self._task: asyncio.Task[_T] | None = None
        self._done = False

    def wake(self) -> None:
        """Set ``wakeup`` in the greenlet thread (call it from the loop's thread)."""
        self._watcher.send()

    def wait(self) -> None:
        """Block this greenlet (only) until the next wake-up or the end, then re-arm."""
        self.wakeup.wait()
        self.wakeup.clear()

    def done(self) -> bool:
        """True once the coroutine finished (read in the greenlet thread after a wakeup)."""
        return self._done

    def result(self) -> _T:
        """The coroutine's result (or its exception raised); only once ``done()``."""
        assert self._task is not None and self._done
        return self._task.result()

    def close(self) -> None:
        """Release the watcher (in the greenlet thread, once done)."""
        self._watcher.stop()
        self._watcher.close()

    def _finished(self, task: asyncio.Task[_T]) -> None:
        self._done = True  # written before the send, read after the wake-up it causes
        self._watcher.send()


class AsyncioThread:
    """``AsyncioThread().run(coro)`` from a greenlet: runs ``coro`` on the native loop."""

    def __init__(self) -> None:
        started: Handle[None] = Handle()
        self._loop: asyncio.AbstractEventLoop | None = None

        def serve() -> None:
            loop = _NativeLoop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            started.wake()
            loop.run_forever()

        _start_new_thread(serve, ())
        while self._loop is None:
            started.wait()
        started.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the coroutines run on (in the native thread)."""
        assert self._loop is not None
        return self._loop

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop's thread (thread-safe)."""
        self.loop.call_soon_threadsafe(callback, *args)

    def start(self, coro: Coroutine[Any, Any, _T], handle: Handle[_T] | None = None) -> Handle[_T]:
        """Start ``coro`` on the loop; the handle (made here unless given, e.g. so that the
        coroutine can call its ``wake``) is waited on from greenlets."""
        handle = handle if handle is not None else Handle()

        def create() -> None:
            task = self.loop.create_task(coro)
            handle._task = task
            task.add_done_callback(handle._finished)

        self.loop.call_soon_threadsafe(create)
        return handle

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and wait for it cooperatively (other greenlets go on)."""
        handle = self.start(coro)
        try:
            while not handle.done():
                handle.wait()
        finally:
            if handle.done():
                handle.close()
        return handle.result()
