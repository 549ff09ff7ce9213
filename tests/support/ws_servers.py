"""Hand-made WebSocket servers on 127.0.0.1 for transport tests: real, raw and misbehaving.

* :func:`ws_server`: a websockets server running ``handler``; yields its ``ws://`` URL.
* :func:`raw_server`: a TCP server answering every request with fixed bytes (or never).
* :func:`raw_ws_server`: completes the WebSocket handshake by hand, then runs ``after`` with
  the raw streams: the test decides what goes on the wire (a close frame with any code, an
  empty close frame, an abort, or nothing at all: a peer that never answers a ping).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BOUND = 5.0

RawAfter = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def ws_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: Any
) -> AsyncIterator[str]:
    """A one-off websockets server on 127.0.0.1; yields its ws:// URL."""
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), BOUND)


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None) -> AsyncIterator[int]:
    """A TCP server answering every connection with ``reply`` (None: never answers)."""
    conns: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if reply is not None:
            writer.write(reply)
            await writer.drain()
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        for w in conns:
            w.close()
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), BOUND)


def close_frame(code: int | None, reason: str = "") -> bytes:
    """An unmasked (server) close frame; ``code=None``: an empty payload (read as 1005)."""
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return bytes([0x88, len(payload)]) + payload


def _accept(head: bytes) -> bytes:
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


@contextlib.asynccontextmanager
async def raw_ws_server(after: RawAfter | None = None) -> AsyncIterator[str]:
    """A server that completes the handshake by hand, then runs ``after(reader, writer)``.

    With ``after=None`` it never reads or writes again (a frozen peer). Yields the ws:// URL.
    """
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(_accept(head))
        await writer.drain()
        if after is not None:
            with contextlib.suppress(ConnectionError):
                await after(reader, writer)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/ws"
    finally:
        for w in held:
            w.close()
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), BOUND)
