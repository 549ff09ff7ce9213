"""The WebSocket transport's wire format: Pipecat's protobuf ``Frame`` in and out.

Re-exported by :mod:`transports.websocket` (its module docstring describes the format).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import DecodeError

from lifecycle.media import AudioFrame
from lifecycle.rtvi import LABEL, encode
from transports._pb import frames_pb2 as pb

__all__ = ["decode_frame", "encode_audio", "encode_message"]


def encode_message(message: Mapping[str, Any]) -> bytes:
    """One RTVI message as a serialized protobuf ``Frame`` (the ``message`` oneof)."""
    return pb.Frame(message=pb.MessageFrame(data=encode(message))).SerializeToString()


def encode_audio(frame: AudioFrame) -> bytes:
    """One audio frame as a serialized protobuf ``Frame`` (the ``audio`` oneof)."""
    audio = pb.AudioRawFrame(
        audio=frame.pcm, sample_rate=frame.sample_rate, num_channels=frame.num_channels
    )
    return pb.Frame(audio=audio).SerializeToString()


def decode_frame(data: bytes) -> str | dict[str, Any] | AudioFrame:
    """Decode one inbound protobuf ``Frame``.

    Returns the RTVI JSON text of a message frame, a synthetic RTVI dict for transcription,
    text and interruption frames, or an :class:`AudioFrame`. Raises :class:`ValueError`
    (with a short reason) for anything unusable.
    """
    try:
        frame = pb.Frame.FromString(data)
    except (DecodeError, RecursionError) as exc:
        raise ValueError(f"undecodable protobuf frame ({type(exc).__name__})") from None
    kind = frame.WhichOneof("frame")
    if kind == "message":
        return frame.message.data
    if kind == "audio":
        audio = frame.audio
        pcm = bytes(audio.audio)
        if audio.sample_rate <= 0 or audio.num_channels <= 0:
            raise ValueError("audio frame without sample_rate or num_channels")
        if len(pcm) % (2 * audio.num_channels):
            raise ValueError("audio frame is not whole s16le samples")
        return AudioFrame(pcm=pcm, sample_rate=audio.sample_rate, num_channels=audio.num_channels)
    if kind == "transcription":
        t = frame.transcription
        data_: dict[str, Any] = {"text": t.text, "user_id": t.user_id, "timestamp": t.timestamp}
        return {"label": LABEL, "type": "transport-transcription", "data": data_}
    if kind == "text":
        return {"label": LABEL, "type": "transport-text", "data": {"text": frame.text.text}}
    if kind == "interruption":
        return {"label": LABEL, "type": "transport-interruption", "data": {}}
    raise ValueError("protobuf frame with no known content")
