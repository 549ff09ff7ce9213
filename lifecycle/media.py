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
        """Length of the frame in seconds."""
        frame_bytes = 2 * self.num_channels
        return len(self.pcm) / frame_bytes / self.sample_rate if self.sample_rate else 0.0
