"""Logging for the library: structlog, never configured here, secrets always redacted.

Where lines go without an injected ``logger=``, decided for every line: while
the application has not configured structlog, to the stdlib logger ``lifecycle`` as
``key=value`` text (so stdlib's defaults show only warnings, on stderr, and nothing reaches
stdout); once it has, and inside ``structlog.testing.capture_logs``, through
``structlog.get_logger("lifecycle")``. structlog itself is imported only once the
application has imported it (an application that never imported structlog cannot have
configured it), so ``import lifecycle`` does not pay for structlog (and ``rich``).

Bot-controlled strings are kept short with :func:`bounded`; warnings a bot can trigger once
per message go through :meth:`SafeLogger.warning_limited` (a per-key token bucket).
"""

from __future__ import annotations

import logging
import operator
import reprlib
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Final, overload

from lifecycle.redact import REDACTED, is_secret_key, redact, redact_query, redact_text

__all__ = [
    "BOT_TEXT_LIMIT",
    "FIELD_LIMIT",
    "RateLimiter",
    "RedactingStdlibLogger",
    "SafeLogger",
    "bounded",
    "describe_exception",
    "get_logger",
    "structlog_configured",
]

BOT_TEXT_LIMIT: Final = 200
"""Characters of a bot-controlled string (message type, id, text) kept by :func:`bounded`."""
FIELD_LIMIT: Final = 16 * 1024
"""Any string field longer than this is cut before it is logged (a backstop to ``bounded``)."""

_STDLIB: Final = logging.getLogger("lifecycle")
_STACKLEVEL: Final = 4  # stdlib records name the library's call site, not this module


class _StructlogDefaults:
    """structlog's built-in defaults, to tell them from an application's configuration.

    ``structlog.is_configured()`` stays true once ``capture_logs`` has run (it calls
    ``configure`` to restore the processors), so the configuration itself is compared: the
    built-in logger factory, wrapper class and processors mean "not configured".
    """

    def __init__(self) -> None:
        self.loaded = False
        self.config: Any = None
        self.processors: list[Any] = []
        self.factory: Any = None
        self.wrapper: Any = None

    def _load(self) -> None:
        self.loaded = True
        try:
            from structlog import _config as config

            self.config = config._CONFIG
            self.processors = list(config._BUILTIN_DEFAULT_PROCESSORS)
            self.factory = config._BUILTIN_DEFAULT_LOGGER_FACTORY
            self.wrapper = config._BUILTIN_DEFAULT_WRAPPER_CLASS
        except (ImportError, AttributeError):  # a structlog without them: trust is_configured
            self.config = None

    def state(self) -> tuple[Any, ...]:
        """The configuration's parts that a built logger holds on to."""
        config = self.config
        if config is None:
            import structlog

            return tuple(structlog.get_config().values())
        return (
            config.default_processors,
            config.default_wrapper_class,
            config.logger_factory,
            config.default_context_class,
        )

    def in_use(self) -> bool:
        """Whether structlog still runs with its built-in defaults (printing to stdout)."""
        if "structlog" not in sys.modules:
            return True  # never imported, so never configured: no need to load it
        if not self.loaded:
            self._load()
        config = self.config
        if config is None:
            import structlog

            return not structlog.is_configured()
        if not config.is_configured:
            return True
        return (
            config.logger_factory is self.factory
            and config.default_wrapper_class is self.wrapper
            and config.default_processors == self.processors
        )


_DEFAULTS: Final = _StructlogDefaults()


def structlog_configured() -> bool:
    """Whether the application configured structlog (``capture_logs`` counts while active).

    Unlike ``structlog.is_configured()``, false again once ``capture_logs`` has exited or
    ``reset_defaults()`` ran: the configuration in use is compared with structlog's own.
    """
    return not _DEFAULTS.in_use()


class _DefaultLogger:
    """The logger used without ``logger=``: stdlib or structlog, chosen for each line."""

    __slots__ = ("_bound", "_bound_for", "_context")

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._bound: Any = None
        self._bound_for: tuple[Any, ...] = ()

    def bind(self, **fields: Any) -> _DefaultLogger:
        return _DefaultLogger({**self._context, **fields})

    def _structlog(self) -> Any:
        """The structlog logger to use now, or ``None`` for the stdlib logger."""
        if _DEFAULTS.in_use():
            return None
        key = _DEFAULTS.state()
        built_for = self._bound_for
        if len(built_for) != len(key) or not all(map(operator.is_, key, built_for)):
            # Rebuilt only when the configuration changed (capture_logs edits the processor
            # list in place, so an already built logger follows it).
            import structlog

            self._bound = structlog.get_logger("lifecycle").bind(**self._context)
            self._bound_for = key
        return self._bound

    def is_enabled_for(self, level: int) -> bool:
        target = self._structlog()
        if target is None:
            return _STDLIB.isEnabledFor(level)
        check = getattr(target, "is_enabled_for", None)
        return True if check is None else bool(check(level))

    def _log(self, level: int, method: str, event: str, fields: dict[str, Any]) -> None:
        target = self._structlog()
        if target is not None:
            getattr(target, method)(event, **fields)
        elif _STDLIB.isEnabledFor(level):
            line = _render_key_values({"event": event, **self._context, **fields})
            _STDLIB.log(level, line, stacklevel=_STACKLEVEL)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, "error", event, fields)


def _render_key_values(fields: dict[str, Any]) -> str:
    """``event='...' key=repr(value) ...``: structlog's ``KeyValueRenderer(key_order=["event"],
    drop_missing=True)`` output, without importing structlog for it."""
    event = fields.pop("event", None)
    pairs = [] if event is None else [f"event={event!r}"]
    pairs += [f"{key}={value!r}" for key, value in fields.items()]
    return " ".join(pairs)


def describe_exception(exc: BaseException, *, with_traceback: bool = False) -> str:
    """``Type: message`` (optionally the whole traceback) with secrets redacted."""
    if with_traceback:
        return redact_text("".join(traceback.format_exception(exc)))
    return redact_text(f"{type(exc).__name__}: {exc}")


_REPR: Final = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60


@overload
def bounded(value: str, limit: int = BOT_TEXT_LIMIT) -> str: ...
@overload
def bounded(value: object, limit: int = BOT_TEXT_LIMIT) -> object: ...
def bounded(value: object, limit: int = BOT_TEXT_LIMIT) -> object:
    """``value`` cut to a prefix of ``limit`` characters, for log fields and traces.

    Strings over the limit keep their first ``limit`` characters plus their length;
    ``None``, booleans, floats and ordinary integers pass; anything else (a bot's id may
    be any JSON) becomes a bounded repr. Never raises, never costs more than the prefix.
    """
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}… ({len(value)} chars)"
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):  # str() of a huge int raises (int_max_str_digits)
        return value if value.bit_length() <= 64 else f"<int of {value.bit_length()} bits>"
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}…"


class RateLimiter:
    """Per-key token bucket for repeated log lines: ``burst`` at once, then one per ``interval``.

    :meth:`allow` says whether a line may go out and, when it may, how many lines of that
    key were held back since the last one that went out. At most ``max_keys`` keys are
    tracked (the oldest is forgotten), so memory stays bounded whatever the keys are.
    """

    __slots__ = ("_buckets", "_clock", "burst", "interval", "max_keys")

    def __init__(
        self,
        *,
        burst: int = 10,
        interval: float = 1.0,
        max_keys: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A limiter letting ``burst`` lines through, then one per ``interval`` seconds."""
        if burst < 1 or interval <= 0 or max_keys < 1:
            raise ValueError("burst and max_keys must be at least 1, interval over 0")
        self.burst = burst
        """Lines of one key that may go out back to back."""
        self.interval = interval
        """Seconds per line once the burst is used up."""
        self.max_keys = max_keys
        """How many keys are tracked at once."""
        self._clock = clock
        # key -> [tokens, last refill time, lines held back since the last one out]
        self._buckets: dict[str, list[float]] = {}

    def allow(self, key: str) -> int | None:
        """``None`` to drop this line; else the number of lines of ``key`` held back before it."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = [float(self.burst), now, 0.0]
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) / self.interval)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            bucket[2] += 1
            return None
        bucket[0] = tokens - 1.0
        held = int(bucket[2])
        bucket[2] = 0.0
        return held

    def take_held(self) -> dict[str, int]:
        """Every key with lines held back since its last line out, and how many; resets them."""
        held = {key: int(b[2]) for key, b in self._buckets.items() if b[2]}
        for key in held:
            self._buckets[key][2] = 0.0
        return held


class SafeLogger:
    """Wraps any structlog logger so every event and field is redacted before it is logged.

    The application's own processors never see a credential: the library hands them
    redacted values only, whatever way the application configured structlog. String
    fields over :data:`FIELD_LIMIT` characters are cut first.
    """

    __slots__ = ("_limiter", "_logger")

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._limiter: RateLimiter | None = None

    def bind(self, **fields: Any) -> SafeLogger:
        """A logger that adds ``fields`` (redacted) to every line (with its own rate limits)."""
        return SafeLogger(self._logger.bind(**_clean(fields)))

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
            self._logger.debug(redact_text(event), **_clean(fields))

    def info(self, event: str, **fields: Any) -> None:
        """Log at info level."""
        if self.enabled(logging.INFO):
            self._logger.info(redact_text(event), **_clean(fields))

    def warning(self, event: str, **fields: Any) -> None:
        """Log at warning level."""
        self._logger.warning(redact_text(event), **_clean(fields))

    def error(self, event: str, **fields: Any) -> None:
        """Log at error level."""
        self._logger.error(redact_text(event), **_clean(fields))

    def warning_limited(
        self, event: str, /, *, limit_key: str | None = None, **fields: Any
    ) -> None:
        """A warning a bot can trigger once per message: rate-limited per ``limit_key``.

        ``limit_key`` defaults to ``event``. The first 10 lines of a key go out, then one
        per second; a line after held-back ones carries ``suppressed=<count>``. Call
        :meth:`flush_limited` when the session ends to report the last held-back count.
        """
        if self._limiter is None:
            self._limiter = RateLimiter()
        held = self._limiter.allow(event if limit_key is None else limit_key)
        if held is None:
            return
        if held:
            fields["suppressed"] = held
        self._logger.warning(redact_text(event), **_clean(fields))

    def flush_limited(self) -> None:
        """One warning per key whose lines were held back since its last line out."""
        if self._limiter is not None:
            for key, held in self._limiter.take_held().items():
                self.warning("repeated warnings suppressed", warning=bounded(key), suppressed=held)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` redacted; strings cut to :data:`FIELD_LIMIT` first (cutting only hides).

    Integers too big to print (``str()`` raises past ``int_max_str_digits``) are described.
    """
    return {
        key: REDACTED if is_secret_key(key) else _clean_value(value)
        for key, value in fields.items()
    }


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(bounded(value, FIELD_LIMIT))
    if isinstance(value, int):
        return bounded(value)
    return redact(value)


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
    """The library's logger: ``logger`` if given, else the default described in this module."""
    return SafeLogger(logger if logger is not None else _DefaultLogger({}))
