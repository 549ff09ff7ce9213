"""A tiny one-request-per-connection HTTP/1.1 server (h11 over asyncio streams).

Shared by the testing bots (``transports.testing.websocket``, ``transports.testing.webrtc``):
they only need JSON routes on 127.0.0.1, bounded in body size and time, that never crash on
bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import h11

__all__ = ["JSONHTTPServer", "Reply", "Route"]

Reply = tuple[int, Any, str]
"""(status, payload (text, or anything JSON-serializable), content type)."""
Route = Callable[[str, str, bytes], Awaitable[Reply]]
"""``route(method, target with query, body) -> Reply``."""

_JSON = "application/json"


class JSONHTTPServer:
    """Serves ``route`` on ``host`` (port picked by the OS); ``stop()`` leaves no task."""

    def __init__(self, route: Route, *, max_body: int, timeout: float) -> None:
        self._route = route
        self._max_body = max_body
        self._timeout = timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        """The listening port (0 before :meth:`start`)."""

    async def start(self, host: str) -> None:
        """Start listening (idempotent)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._connection, host, 0)
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, timeout: float) -> None:
        """Stop listening and end every open exchange (bounded)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            try:
                reply = await asyncio.wait_for(self._exchange(conn, reader), self._timeout)
            except (ValueError, h11.ProtocolError) as exc:  # malformed: a 400, never a crash
                reply = 400, {"detail": type(exc).__name__}, _JSON
            if reply is not None:
                await self._reply(conn, writer, *reply)
        except (TimeoutError, ConnectionError, h11.ProtocolError):
            pass  # the client went away, stalled, or sent something too broken to answer
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _exchange(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Reply | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._max_body:
                    return 413, {"detail": "body too large"}, _JSON
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # the client closed before a whole request
                return None
        if request is None:
            return 400, {"detail": "no request"}, _JSON
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        return await self._route(method, target, bytes(body))

    @staticmethod
    async def _reply(
        conn: h11.Connection, writer: asyncio.StreamWriter, status: int, payload: Any, kind: str
    ) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        headers = [
            ("content-type", kind),
            ("content-length", str(len(data))),
            ("connection", "close"),
        ]
        out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        out += conn.send(h11.Data(data=data)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await writer.drain()
