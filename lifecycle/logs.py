"""Logging for the library: structlog, never configured here, secrets always redacted."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import structlog

from lifecycle.redact import REDACTED, is_secret_key, redact, redact_query, redact_text

__all__ = ["RedactingStdlibLogger", "SafeLogger", "describe_exception", "get_logger"]


def describe_exception(exc: BaseException, *, with_traceback: bool = False) -> str:
    """``Type: message`` (optionally the whole traceback) with secrets redacted."""
    if with_traceback:
        return redact_text("".join(traceback.format_exception(exc)))
    return redact_text(f"{type(exc).__name__}: {exc}")


class SafeLogger:
    """Wraps any structlog logger so every event and field is redacted before it is logged.

    The application's own processors never see a credential: the library hands them
    redacted values only, whatever way the application configured structlog.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def bind(self, **fields: Any) -> SafeLogger:
        """A logger that adds ``fields`` (redacted) to every line."""
        return SafeLogger(self._logger.bind(**redact(fields)))

    def enabled(self, level: int) -> bool:
        """Whether a line at ``level`` (``logging.DEBUG``...) would be kept: skip work if not."""
        check = getattr(self._logger, "is_enabled_for", None)
        if check is None:
            return True
        try:
            return bool(check(level))
        except Exception:
            return True

    def debug(self, event: str, **fields: Any) -> None:
        """Log at debug level."""
        if self.enabled(logging.DEBUG):
            self._logger.debug(redact_text(event), **redact(fields))

    def info(self, event: str, **fields: Any) -> None:
        """Log at info level."""
        if self.enabled(logging.INFO):
            self._logger.info(redact_text(event), **redact(fields))

    def warning(self, event: str, **fields: Any) -> None:
        """Log at warning level."""
        self._logger.warning(redact_text(event), **redact(fields))

    def error(self, event: str, **fields: Any) -> None:
        """Log at error level."""
        self._logger.error(redact_text(event), **redact(fields))


class RedactingStdlibLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A stdlib logger adapter for third-party libraries that accept one (``websockets``).

    Their debug lines dump handshake lines such as ``> Authorization: Bearer ...`` and
    ``> GET /ws?token=...``: header values with credential names and URL query values are
    redacted before the line reaches any handler.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Redact the arguments, then log as usual."""
        if not self.isEnabledFor(level):
            return
        if len(args) == 2 and is_secret_key(args[0]):
            args = (args[0], REDACTED)
        args = tuple(redact_query(a) if isinstance(a, str) else a for a in args)
        super().log(level, msg, *args, **kwargs)


def get_logger(logger: Any = None) -> SafeLogger:
    """The library's logger: ``logger`` if given, else ``structlog.get_logger("lifecycle")``."""
    return SafeLogger(logger if logger is not None else structlog.get_logger("lifecycle"))
