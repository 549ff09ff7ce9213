"""The transport seam, re-exported from :mod:`lifecycle.transport` where it lives.

Kept so ``from transports.base import Transport`` keeps working.
"""

from lifecycle.transport import ConnectRequest, Inbound, Transport, TransportEvents, first_param

__all__ = ["ConnectRequest", "Inbound", "Transport", "TransportEvents", "first_param"]
