"""A one-shot HTTP server on 127.0.0.1 that answers every request with the given raw bytes.

For responses no well-behaved server library would write: echoed credentials in headers,
illegal header values, redirects with a body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence


def response(
    status: int, body: bytes, headers: Sequence[tuple[str, str]] = (), reason: str = "X"
) -> bytes:
    """The bytes of an HTTP/1.1 response with ``Content-Length`` and ``Connection: close``."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@contextlib.asynccontextmanager
async def raw_http(answer: bytes) -> AsyncIterator[str]:
    """Serve ``answer`` to every request; yields the ``http://127.0.0.1:port/start`` URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)  # read it all: closing with unread data resets
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/start"
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
