"""Logging for the library: structlog, never configured here, secrets always redacted."""

from __future__ import annotations

import traceback
from typing import Any

import structlog

from lifecycle.redact import redact, redact_text

__all__ = ["SafeLogger", "describe_exception", "get_logger"]


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

    def debug(self, event: str, **fields: Any) -> None:
        """Log at debug level."""
        self._logger.debug(redact_text(event), **redact(fields))

    def info(self, event: str, **fields: Any) -> None:
        """Log at info level."""
        self._logger.info(redact_text(event), **redact(fields))

    def warning(self, event: str, **fields: Any) -> None:
        """Log at warning level."""
        self._logger.warning(redact_text(event), **redact(fields))

    def error(self, event: str, **fields: Any) -> None:
        """Log at error level."""
        self._logger.error(redact_text(event), **redact(fields))


def get_logger(logger: Any = None) -> SafeLogger:
    """The library's logger: ``logger`` if given, else ``structlog.get_logger("lifecycle")``."""
    return SafeLogger(logger if logger is not None else structlog.get_logger("lifecycle"))
