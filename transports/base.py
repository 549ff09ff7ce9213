"""The transport seam, re-exported from :mod:`lifecycle.transport` where it lives.

Kept so ``from transports.base import Transport`` keeps working.
"""

import warnings
from typing import Any

from lifecycle.transport import ConnectRequest, Inbound, Transport, TransportSink, first_param

__all__ = ["ConnectRequest", "Inbound", "Transport", "TransportSink", "first_param"]


def __getattr__(name: str) -> Any:
    # The old name, kept for one release (CHANGELOG: Deprecated).
    if name == "TransportEvents":
        warnings.warn(
            f"{__name__}.TransportEvents is deprecated: use TransportSink",
            DeprecationWarning,
            stacklevel=2,
        )
        return TransportSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
