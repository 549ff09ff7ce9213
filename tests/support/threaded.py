"""A test server on an event loop of its own, in a thread, so it outlives ``asyncio.run()``.

For tests in which the client's event loop ends with a session up and a new loop takes over:
the bot must keep running across both.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

S = TypeVar("S")
BOUND = 10.0


@contextlib.contextmanager
def in_thread(server: AbstractAsyncContextManager[S]) -> Iterator[S]:
    """Enter ``server`` (``async with``) on a loop in a daemon thread; exit it there at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-server-loop", daemon=True)
    thread.start()
    try:
        entered = asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(BOUND)
        try:
            yield entered
        finally:
            exit_ = server.__aexit__(None, None, None)
            asyncio.run_coroutine_threadsafe(exit_, loop).result(BOUND)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(BOUND)
        loop.close()
