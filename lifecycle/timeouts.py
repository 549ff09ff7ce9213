"""The one check of every timeout: a bad one fails where it is given, never as an endless wait.

The rule, the same in the client, the start request and every transport: a *timeout* bounds a
wait for the bot, its server or the network, and must be a finite number of seconds over 0 (a
zero timeout could only ever fail, so it is refused with ``ValueError`` where it is given):
``connect_timeout``, ``request_timeout``, ``send_client_request(timeout=)``,
``wait_for(timeout=)``, ``APIRequest(timeout=)``, ``open_timeout``, ``dead_peer_timeout``.
A *grace period* bounds how long the client lets its own work finish and may be 0 (don't
wait): ``drain_timeout``. Pure, no I/O.
"""

from __future__ import annotations

import math

__all__ = ["check_seconds"]


def check_seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    """``value`` as float seconds, else an error naming ``what``.

    ``None``, strings and booleans raise ``TypeError``; NaN, infinities and negative numbers
    raise ``ValueError``, and so does zero unless ``allow_zero`` (a grace period of 0 s is
    meaningful; a timeout of 0 s is not: see the module docstring).
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
