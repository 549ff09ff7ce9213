"""Audio frames exchanged with the bot."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioFrame"]


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A chunk of signed 16-bit little-endian PCM audio."""

    pcm: bytes
    """Interleaved s16le samples."""
    sample_rate: int
    """Samples per second per channel."""
    num_channels: int
    """1 for mono, 2 for stereo."""

    @property
    def duration(self) -> float:
        """Length of the frame in seconds (0 for a frame without a rate or channels)."""
        if self.sample_rate <= 0 or self.num_channels <= 0:
            return 0.0
        return len(self.pcm) / (2 * self.num_channels) / self.sample_rate
