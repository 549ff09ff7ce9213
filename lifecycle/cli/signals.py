"""Ctrl-C handling shared by the commands: the first SIGINT asks nicely, the next one doesn't."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable


class FirstSigint:
    """Calls ``on_first()`` on the first Ctrl-C; later ones raise KeyboardInterrupt as usual.

    Where the loop cannot take signal handlers (not the main thread, Windows) nothing is
    installed and Ctrl-C keeps its default behaviour.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_first: Callable[[], None]) -> None:
        self._loop = loop
        self._on_first = on_first
        self.installed = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            self.installed = True

    def _on_sigint(self) -> None:
        self.remove()
        self._on_first()

    def remove(self) -> None:
        """Restore the default SIGINT behaviour."""
        if self.installed:
            self._loop.remove_signal_handler(signal.SIGINT)
            self.installed = False
