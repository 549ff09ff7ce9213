"""One job: deciding that a peer is gone because nothing has been heard from it (sans-I/O).

A live Pipecat 1.14 SmallWebRTC bot never answers the data channel's ``ping``, but it sends
audio (~50 RTP packets a second, silence included) from connect on, and RTCP receiver reports
for the audio it receives. ICE consent notices a dead one only after ~30 s. The transport
calls :meth:`PeerLiveness.heard` for every sign of life and :meth:`PeerLiveness.check` on a
timer; this class only does the arithmetic, with the times it is given.

A timer that fires late means this process's event loop stalled (CPU starved, a blocking
callback): packets may sit unread in the socket meanwhile, so the stall is not counted as the
peer's silence.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PeerLiveness"]

_TICKS_PER_TIMEOUT: Final = 10


class PeerLiveness:
    """When the peer was last heard, and whether its silence has lasted too long.

    ``timeout`` is the bound on detection: with :meth:`check` called every :attr:`tick`
    (``timeout / 10``) seconds, a peer silent from time t is reported dead between t + 0.8 and
    t + 0.9 ``timeout`` (the threshold is ``timeout - 2 tick``): one tick is left for the
    scheduling of a loaded machine.
    """

    def __init__(self, timeout: float, now: float) -> None:
        """Start counting at ``now`` (the connection is up: that counts as hearing the peer)."""
        self.timeout = timeout
        self.tick = timeout / _TICKS_PER_TIMEOUT
        self._last_heard = now
        self._last_check = now

    def heard(self, now: float) -> None:
        """A sign of life arrived at ``now`` (a packet, a message)."""
        self._last_heard = max(self._last_heard, now)

    def silent_for(self, now: float) -> float:
        """Seconds since the peer was last heard."""
        return max(0.0, now - self._last_heard)

    def check(self, now: float) -> float | None:
        """Called every :attr:`tick`: the silence in seconds if the peer is dead, else None."""
        late = now - self._last_check - self.tick
        self._last_check = now
        if late > self.tick:
            # Our own loop stalled: excuse that time, the peer's packets may be unread.
            self._last_heard = min(now, self._last_heard + late)
        silence = self.silent_for(now)
        return silence if silence >= self.timeout - 2 * self.tick else None
