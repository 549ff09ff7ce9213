"""Transport errors that keep no secret: neither in their message nor in their chained cause.

Third-party exceptions often quote what they were given: ``websockets``' ``InvalidURI`` repeats
the whole URL, ``?token=...`` included. A :class:`~lifecycle.errors.TransportError` keeps the
original exception as ``__cause__`` only when nothing in that exception's chain shows a secret
(a URL query value, a bearer credential); otherwise the cause is a :class:`RedactedCause` that
carries the type name and the redacted text, and nothing else.
"""

from __future__ import annotations

from typing import Final

from lifecycle.errors import TransportError
from lifecycle.logs import describe_exception
from lifecycle.redact import redact_text

__all__ = ["RedactedCause", "safe_cause", "transport_error"]

_MAX_CHAIN: Final = 16


class RedactedCause(Exception):
    """Stands in for an exception whose text showed a secret (``describe_exception`` text)."""

    def __init__(self, original: BaseException) -> None:
        """Keep ``original``'s type name and redacted text, not ``original`` itself."""
        super().__init__(describe_exception(original))
        self.original_type: str = type(original).__name__


def _texts(exc: BaseException) -> list[str]:
    try:
        texts = [str(exc), repr(exc)]
    except Exception:  # a broken __str__: treat it as unsafe
        return ["\0"]
    texts.extend(str(arg) for arg in exc.args if isinstance(arg, str | bytes))
    return texts


def _shows_secret(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if len(seen) >= _MAX_CHAIN:
            return True
        seen.add(id(current))
        if any("\0" in text or redact_text(text) != text for text in _texts(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def safe_cause(exc: BaseException) -> BaseException:
    """``exc`` when no exception of its chain shows a secret, else a :class:`RedactedCause`."""
    return RedactedCause(exc) if _shows_secret(exc) else exc


def transport_error(message: str, cause: BaseException) -> TransportError:
    """A TransportError with ``message`` (redacted) and ``cause`` made safe.

    Raise it outside the ``except`` block that caught ``cause``, so that ``__context__`` does not
    keep the raw exception either.
    """
    error = TransportError(redact_text(message))
    error.__cause__ = safe_cause(cause)
    error.__suppress_context__ = True
    return error
