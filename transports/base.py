"""The transport seam, re-exported from :mod:`lifecycle.transport` where it lives.

Kept so ``from transports.base import Transport`` keeps working.
"""

from lifecycle.deprecation import renamed
from lifecycle.transport import ConnectRequest, Inbound, Transport, TransportSink, first_param

__all__ = ["ConnectRequest", "Inbound", "Transport", "TransportSink", "first_param"]


__getattr__ = renamed(__name__, {"TransportEvents": ("TransportSink", TransportSink)})
