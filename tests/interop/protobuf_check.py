"""Byte-level cross-check against Pipecat's own ProtobufFrameSerializer (interop venv only).

Usage::

    python protobuf_check.py <hex>
        Decode a frame (encoded by our project) with ``ProtobufFrameSerializer.deserialize``
        and print a JSON description of the Pipecat frame it becomes.

    python protobuf_check.py --encode-message '<json>'
        Serialize an ``OutputTransportMessageFrame(message=<json>)`` (what the bot sends for every
        RTVI message; it goes into the ``message`` oneof as ``json.dumps(message)``) and print
        the hex.

    python protobuf_check.py --encode-audio [--hex-audio HEX] [--sample-rate N] [--channels N]
        Serialize an ``OutputAudioRawFrame`` and print the hex. Without ``--hex-audio`` the audio
        is the 8 bytes 00 01 02 03 fc fd fe ff; 16000 Hz, 1 channel by default.

    python protobuf_check.py --encode-text 'hello'
        Serialize a ``TextFrame``.

The JSON printed on decode has ``kind`` (the Pipecat class name) and, per kind: ``message``
(parsed JSON) for InputTransportMessageFrame; ``audio_hex``, ``sample_rate``, ``num_channels``
for InputAudioRawFrame; ``text`` for TextFrame; ``text``, ``user_id``, ``timestamp`` for
TranscriptionFrame. A frame Pipecat cannot decode prints ``{"kind": null}`` and exits 1.

Note: Pipecat's serializer writes a frame's ``id`` and ``name`` into the audio/text/
transcription/interruption messages (fields 1 and 2), so encoded output is not byte-stable
across runs for those kinds; pass ``--strip-ids`` to zero them for a stable encoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    TextFrame,
    TranscriptionFrame,
)
from pipecat.serializers.protobuf import ProtobufFrameSerializer

DEFAULT_AUDIO = bytes([0, 1, 2, 3, 0xFC, 0xFD, 0xFE, 0xFF])


def describe(frame: Frame | None) -> dict[str, Any]:
    if frame is None:
        return {"kind": None}
    out: dict[str, Any] = {"kind": type(frame).__name__}
    if isinstance(frame, InputTransportMessageFrame):
        out["message"] = frame.message
    elif isinstance(frame, InputAudioRawFrame):
        out.update(
            audio_hex=frame.audio.hex(),
            audio_len=len(frame.audio),
            sample_rate=frame.sample_rate,
            num_channels=frame.num_channels,
        )
    elif isinstance(frame, TranscriptionFrame):
        out.update(text=frame.text, user_id=frame.user_id, timestamp=frame.timestamp)
    elif isinstance(frame, TextFrame):
        out["text"] = frame.text
    elif isinstance(frame, InterruptionFrame):
        pass
    return out


def _strip(frame: Frame) -> Frame:
    frame.id = 0
    frame.name = ""
    return frame


async def run(args: argparse.Namespace) -> int:
    ser = ProtobufFrameSerializer()
    frame: Frame
    if args.encode_message is not None:
        frame = OutputTransportMessageFrame(message=json.loads(args.encode_message))
    elif args.encode_audio:
        audio = bytes.fromhex(args.hex_audio) if args.hex_audio else DEFAULT_AUDIO
        frame = OutputAudioRawFrame(
            audio=audio, sample_rate=args.sample_rate, num_channels=args.channels
        )
    elif args.encode_text is not None:
        frame = TextFrame(text=args.encode_text)
    else:
        if not args.hex:
            print("give a hex string or an --encode-* option", file=sys.stderr)
            return 2
        decoded = await ser.deserialize(bytes.fromhex(args.hex))
        print(json.dumps(describe(decoded), sort_keys=True))
        return 0 if decoded is not None else 1
    if args.strip_ids:
        frame = _strip(frame)
    data = await ser.serialize(frame)
    if not isinstance(data, bytes):
        print(f"serializer returned {data!r}", file=sys.stderr)
        return 1
    print(data.hex())
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description="Pipecat protobuf serializer cross-check")
    p.add_argument("hex", nargs="?", help="hex of a serialized Frame to decode")
    p.add_argument("--encode-message", metavar="JSON")
    p.add_argument("--encode-audio", action="store_true")
    p.add_argument("--encode-text", metavar="TEXT")
    p.add_argument("--hex-audio", metavar="HEX")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--strip-ids", action="store_true", help="zero id/name for stable bytes")
    args = p.parse_args()
    logger.remove()  # keep stdout/stderr clean for callers
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
