"""WebSocket close codes: which end a session cleanly and which are a lost link (issue 12.5).

The decision is documented in ``transports/websocket.py`` (module docstring) and the README:
1000 and 1005 (a close frame without a code) are a clean bot-side end; every other code,
1001 "going away" included, is a lost link, as is a connection lost without a close frame.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.frames import Close

from lifecycle import PipecatClient, State, TransportError
from lifecycle.rtvi import make_message
from tests.support.recorder import Recorder, within
from tests.support.ws_servers import close_frame, raw_ws_server, ws_server
from transports._pb import frames_pb2 as pb
from transports.base import ConnectRequest
from transports.websocket import CLEAN_CLOSE_CODES, WebSocketTransport, describe_close

# (code, clean); None: the connection is aborted without any close frame (1006).
CODES = [
    (1000, True),  # normal closure: Pipecat's bot-initiated end
    (None, True),  # an empty close frame (read as 1005): a deliberate close, no reason given
    (1001, False),  # going away: the server shuts down or restarts
    (1002, False),  # protocol error
    (1003, False),  # unsupported data
    (1007, False),  # invalid payload
    (1008, False),  # policy violation
    (1009, False),  # message too big
    (1011, False),  # internal server error
    (1012, False),  # service restart (uvicorn on SIGTERM)
    (1013, False),  # try again later
    (1014, False),  # bad gateway
    (3000, False),  # registered: unauthorized
    (4003, False),  # application: Pipecat's runner rejects a bad token so
    (4999, False),  # application, private use
]
ABORT = -1


@pytest.mark.parametrize(("code", "clean"), [*CODES, (ABORT, False)])
def test_describe_close_classifies_each_code(code: int | None, clean: bool) -> None:
    if code == ABORT:
        assert describe_close(None, None, None) == (
            False,
            "connection lost without a close frame (code 1006)",
        )
        return
    received = Close(1005 if code is None else code, "why")
    got_clean, reason = describe_close(received, Close(received.code, ""), True)
    assert got_clean is clean
    assert (received.code in CLEAN_CLOSE_CODES) is clean
    assert reason.startswith(f"server closed the connection: code {received.code} (")
    assert reason.endswith(", reason 'why'")


def test_describe_close_when_this_client_closed_first() -> None:
    clean, reason = describe_close(Close(1009, ""), Close(1009, ""), False)
    assert not clean and reason == "closed by this client: code 1009 (message too big)"
    clean, reason = describe_close(None, Close(1011, "keepalive ping timeout"), None, 2.5)
    assert not clean and reason == "peer silent: no answer to a keepalive ping within 2.5 s"


class Sink:
    """TransportSink that keep the close report."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[tuple[bool, str | None]] = (
            asyncio.get_running_loop().create_future()
        )

    def transport_connected(self) -> None:
        pass

    def message_received(self, message: object) -> None:
        pass

    def message_dropped(self, reason: str) -> None:
        pass

    def audio_received(self, frame: object) -> None:
        pass

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        if not self.closed.done():
            self.closed.set_result((clean, reason))


@pytest.mark.parametrize(("code", "clean"), [*CODES, (ABORT, False)])
async def test_close_code_on_the_wire(code: int | None, clean: bool) -> None:
    async def after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if code == ABORT:
            writer.transport.abort()
            return
        writer.write(close_frame(code, "bye" if code is not None else ""))
        await writer.drain()
        await reader.read(64)  # the client's close reply
        writer.close()

    async with raw_ws_server(after) as url:
        transport = WebSocketTransport(url)
        sink = Sink()
        await within(transport.connect(ConnectRequest(), sink))
        got_clean, reason = await within(sink.closed)
        assert got_clean is clean
        assert reason is not None
        if code == ABORT:
            # At a path ending in /ws (this server's): the runner's telephony route hint.
            assert reason.startswith("connection lost without a close frame (code 1006)")
        elif code is None:
            assert (
                reason == "server closed the connection: code 1005 (no status received [internal])"
            )
        else:
            assert reason.startswith(f"server closed the connection: code {code} (")
            assert reason.endswith(", reason 'bye'")
        await within(transport.disconnect())


def _bot(close_code: int, when: str) -> object:
    """A bot that answers client-ready, then closes with ``close_code`` (``when``)."""

    async def handler(ws: ServerConnection) -> None:
        if when == "at-once":
            await ws.close(close_code, "no session")
            return
        async for data in ws:
            msg = json.loads(pb.Frame.FromString(data).message.data)  # type: ignore[arg-type]
            if when == "after-client-ready":
                await ws.close(close_code, "bad handshake")
                return
            if msg["type"] == "client-ready":
                ready = make_message("bot-ready", {"version": "2.2.0"}, msg["id"])
                await ws.send(
                    pb.Frame(message=pb.MessageFrame(data=json.dumps(ready))).SerializeToString()
                )
            else:
                await ws.close(close_code, "done")
                return

    return handler


@pytest.mark.parametrize(
    ("code", "clean"), [c for c in CODES if c[0] is not None and c[0] not in (1009,)]
)
async def test_close_code_after_ready_through_the_client(code: int, clean: bool) -> None:
    async with ws_server(_bot(code, "after-ready")) as url:  # type: ignore[arg-type]
        client = PipecatClient(WebSocketTransport(url), connect_timeout=3.0)
        rec = Recorder(client)
        await within(client.connect())
        client.send_client_message("anything")
        await rec.wait_for("on_disconnected")
        assert client.state is State.DISCONNECTED
        assert rec.count("on_bot_disconnected") == 1
        errors = rec.args("on_error")
        if clean:
            assert errors == []
        else:
            (error,) = (args[0] for args in errors)
            assert error.fatal is True and f"code {code} (" in error.message
        await within(client.disconnect())


@pytest.mark.parametrize(("code", "when"), [(4003, "at-once"), (1011, "after-client-ready")])
async def test_close_before_bot_ready_names_the_code(code: int, when: str) -> None:
    # E.g. Pipecat runner's telephony route /ws, which expects another handshake.
    async with ws_server(_bot(code, when)) as url:  # type: ignore[arg-type]
        client = PipecatClient(WebSocketTransport(url), connect_timeout=3.0)
        with pytest.raises(TransportError) as info:
            await within(client.connect())
        text = str(info.value)
        assert "before the bot was ready" in text
        assert f"server closed the connection: code {code} (" in text
        assert ("no session" if when == "at-once" else "bad handshake") in text
        assert client.state is State.DISCONNECTED
