"""A scriptable HTTP server on 127.0.0.1 for start_bot tests (asyncio + h11)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11


@dataclass
class Reply:
    """What the stub answers to the next requests."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Seen:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HTTPStub:
    """``async with HTTPStub() as stub: stub.url("/start")``; set ``stub.reply`` per test.

    ``respond``, when given, chooses the reply to each request instead of ``reply``.
    """

    reply: Reply = field(default_factory=Reply)
    respond: Callable[[Seen], Reply] | None = None
    requests: list[Seen] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def json_reply(self, data: Any, status: int = 200, delay: float = 0.0) -> None:
        self.reply = Reply(status, json.dumps(data).encode(), "application/json", delay)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/start") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> HTTPStub:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            request: h11.Request | None = None
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            seen = Seen(
                request.method.decode(),
                request.target.decode(),
                {k.decode().lower(): v.decode() for k, v in request.headers},
                body,
            )
            self.requests.append(seen)
            self.arrived.set()
            reply = self.reply if self.respond is None else self.respond(seen)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            headers = [
                ("content-type", reply.content_type),
                ("content-length", str(len(reply.body))),
                ("connection", "close"),
            ]
            writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
            writer.write(conn.send(h11.Data(data=reply.body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
