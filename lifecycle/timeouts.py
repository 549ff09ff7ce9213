"""The one check of every timeout: a bad one fails where it is given, never as an endless wait.

Pure, no I/O: the client, the start request and the transports all call it.
"""

from __future__ import annotations

import math

__all__ = ["check_seconds"]


def check_seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    """``value`` as float seconds, else an error naming ``what``.

    ``None``, strings and booleans raise ``TypeError``; NaN, infinities and negative numbers
    raise ``ValueError``, and so does zero unless ``allow_zero`` (a drain or wait of 0 s is
    meaningful; a connect or request timeout of 0 s is not).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if allow_zero:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"{what} must be finite and >= 0, not {value!r}")
    elif not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a finite number of seconds over 0, not {value!r}")
    return seconds
