"""Whether a file a scenario names plays or shows: a WAV (any soundfile reads) or an image."""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["media_problem"]

_IMAGE_MAGIC: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"RIFF")


def media_problem(path: Path, key: str) -> str | None:
    """What is wrong with ``path`` as an ``audio:`` or ``image:`` file (None: nothing)."""
    if key == "audio":
        try:
            import soundfile
        except ImportError:
            return 'needs pip install "pipecat-lifecycle[testing]"'
        try:
            info = soundfile.info(str(path))
        except Exception as exc:  # soundfile's errors for a broken file: say so
            return f"cannot read {path.name} as audio ({exc})"
        if info.frames <= 0 or info.samplerate <= 0:
            return f"cannot read {path.name} as audio (no audio in it)"
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        return f"cannot read {path.name} ({exc})"
    if not head.startswith(_IMAGE_MAGIC):
        return f"{path.name} is not a JPEG, PNG, GIF or WebP image"
    return None
