"""A minimal hand-written RTVI client over WebSocket: ``websockets`` + protobuf, no lifecycle.

What a script talking to a Pipecat bot by hand does, and nothing more: open the socket,
send ``client-ready``, wait for ``bot-ready``, match ``client-message`` requests to responses
by id. No state machine, logging, validation beyond JSON, or callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from transports._pb import frames_pb2 as pb

_ids = itertools.count()
OUTPUT_TYPES = frozenset(
    {"bot-output", "bot-llm-text", "bot-tts-text", "bot-started-speaking", "bot-tts-started"}
)
"""Messages that count as the bot's first output (audio frames count too)."""


def _frame(message: dict[str, Any]) -> bytes:
    return pb.Frame(message=pb.MessageFrame(data=json.dumps(message))).SerializeToString()


def client_ready() -> dict[str, Any]:
    """The ``client-ready`` message (same content as the library's)."""
    return {
        "label": "rtvi-ai",
        "type": "client-ready",
        "id": f"r{next(_ids)}",
        "data": {"version": "2.2.0", "about": {"library": "raw-bench", "library_version": "0"}},
    }


class RawWSClient:
    """One connection; :meth:`connect` resolves on ``bot-ready``."""

    def __init__(self) -> None:
        self.ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.output = asyncio.Event()
        """Set by the first bot output (a message of OUTPUT_TYPES or audio) once listening."""
        self.listening = False

    async def connect(self, ws_url: str) -> dict[str, Any]:
        """Open the socket, send client-ready, return the bot-ready message."""
        loop = asyncio.get_running_loop()
        # No permessage-deflate, as the transport: both sides put the same bytes on the wire.
        self.ws = await connect(ws_url, max_size=None, compression=None)
        self._ready = loop.create_future()
        self._reader = asyncio.create_task(self._read(self.ws))
        await self.ws.send(_frame(client_ready()))
        return await self._ready

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    continue
                frame = pb.Frame.FromString(raw)
                if frame.WhichOneof("frame") != "message":
                    if self.listening:
                        self.output.set()
                    continue  # audio and others: not needed here
                message = json.loads(frame.message.data)
                kind = message.get("type")
                if self.listening and kind in OUTPUT_TYPES:
                    self.output.set()
                if kind == "bot-ready" and self._ready is not None and not self._ready.done():
                    self._ready.set_result(message)
                elif kind in ("server-response", "error-response"):
                    future = self._pending.pop(message.get("id"), None)
                    if future is not None and not future.done():
                        future.set_result(message.get("data"))
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def request(self, msg_type: str, data: Any = None) -> Any:
        """Send a client-message and return its response data."""
        assert self.ws is not None
        msg_id = f"m{next(_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        message = {
            "label": "rtvi-ai",
            "type": "client-message",
            "id": msg_id,
            "data": {"t": msg_type, "d": data},
        }
        await self.ws.send(_frame(message))
        return await future

    async def send_audio(self, pcm: bytes, sample_rate: int, num_channels: int = 1) -> None:
        """Send one frame of s16le PCM as a protobuf audio frame."""
        assert self.ws is not None
        audio = pb.AudioRawFrame(audio=pcm, sample_rate=sample_rate, num_channels=num_channels)
        await self.ws.send(pb.Frame(audio=audio).SerializeToString())

    async def close(self) -> None:
        """Close with 1000 and stop the reader."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.ws = self._reader = None
