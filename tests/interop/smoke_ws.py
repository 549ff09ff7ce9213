"""Manual smoke client for bot_server.py over WebSocket (not a test).

Run inside the interop venv, against a running bot server::

    .venv-interop/bin/python tests/interop/smoke_ws.py http://127.0.0.1:N

It does ``/start``, connects, sends client-ready, waits for bot-ready, sends each client-message
type and prints what comes back, with start->bot-ready and echo round-trip timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import pipecat.frames.protobufs.frames_pb2 as pb
import websockets
from websockets.asyncio.client import ClientConnection

CLIENT_READY = {
    "label": "rtvi-ai",
    "type": "client-ready",
    "id": "1",
    "data": {
        "version": "2.2.0",
        "about": {"library": "smoke", "library_version": "0", "platform": "linux"},
    },
}


def encode(msg: dict[str, Any]) -> bytes:
    frame = pb.Frame()  # type: ignore[attr-defined]
    frame.message.data = json.dumps(msg)
    return bytes(frame.SerializeToString())


def describe(raw: bytes | str) -> tuple[str, Any]:
    if isinstance(raw, str):
        return "text-ws-frame", raw
    frame = pb.Frame.FromString(raw)  # type: ignore[attr-defined]
    which = frame.WhichOneof("frame")
    if which == "message":
        return "message", json.loads(frame.message.data)
    if which == "audio":
        a = frame.audio
        return "audio", {"bytes": len(a.audio), "sample_rate": a.sample_rate, "ch": a.num_channels}
    return str(which), str(getattr(frame, str(which)))


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.t0 = time.perf_counter()
        self.inbox: asyncio.Queue[tuple[float, str, Any]] = asyncio.Queue()
        self.close_info: str | None = None
        self.audio_bytes = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                kind, body = describe(raw)
                if kind == "audio":
                    self.audio_bytes += body["bytes"]
                await self.inbox.put((time.perf_counter(), kind, body))
        except websockets.ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        self.close_info = f"code={rcvd.code} reason={rcvd.reason!r}" if rcvd else "no close frame"
        await self.inbox.put((time.perf_counter(), "closed", self.close_info))

    async def send(self, msg: dict[str, Any]) -> float:
        t = time.perf_counter()
        await self.ws.send(encode(msg))
        return t

    async def until(
        self, pred: Any, within: float = 5.0, show: bool = True
    ) -> tuple[float, str, Any]:
        deadline = time.perf_counter() + within
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no matching message")
            item = await asyncio.wait_for(self.inbox.get(), left)
            if show:
                t, kind, body = item
                print(f"   +{(t - self.t0) * 1000:8.1f} ms  {kind}: {json.dumps(body)[:200]}")
            if pred(item):
                return item


def cm(msg_id: str, t: str, d: Any) -> dict[str, Any]:
    return {"label": "rtvi-ai", "type": "client-message", "id": msg_id, "data": {"t": t, "d": d}}


def is_reply(msg_id: str) -> Any:
    return lambda it: (it[1] == "message" and it[2].get("id") == msg_id) or it[1] == "closed"


HTTP: httpx.AsyncClient | None = None


async def session(base: str, options: dict[str, Any]) -> tuple[Client, float]:
    global HTTP
    if HTTP is None:
        # One client for the run: creating an httpx client costs ~40 ms (TLS context).
        HTTP = httpx.AsyncClient()
    t0 = time.perf_counter()
    r = await HTTP.post(f"{base}/start", json=options)
    r.raise_for_status()
    info = r.json()
    t1 = time.perf_counter()
    ws = await websockets.connect(info["wsUrl"], max_size=None)
    t2 = time.perf_counter()
    c = Client(ws)
    await c.send(CLIENT_READY)
    await c.until(lambda it: it[1] == "message" and it[2].get("type") == "bot-ready")
    t3 = time.perf_counter()
    print(
        f"start->bot-ready {(t3 - t0) * 1000:.1f} ms (/start {(t1 - t0) * 1000:.1f}, "
        f"open {(t2 - t1) * 1000:.1f}, ready {(t3 - t2) * 1000:.1f})"
    )
    return c, (t3 - t0) * 1000


async def main(base: str) -> None:
    print("== session 1: all message types")
    c, _ = await session(base, {})
    rtts = []
    for i in range(50):
        t_sent = await c.send(cm(f"e{i}", "echo", {"n": i}))
        tr, _, _ = await c.until(is_reply(f"e{i}"), show=i == 0)
        rtts.append((tr - t_sent) * 1000)
    print(f"echo rtt ms: p50 {statistics.median(rtts):.2f} min {min(rtts):.2f} max {max(rtts):.2f}")
    for msg_id, t, d in [
        ("x1", "error", {"message": "boom"}),
        ("x2", "error", {}),
        ("x3", "delay", {"seconds": 0.3}),
        ("x4", "push", {"hello": "world"}),
        ("x5", "nonfatal", {"a": 1}),
        ("x6", "audio", {"ms": 300}),
        ("x7", "nosuch", {}),
    ]:
        print(f"-> {t} {d}")
        c.audio_bytes = 0
        sent = await c.send(cm(msg_id, t, d))
        tr, _, _ = await c.until(is_reply(msg_id))
        print(f"   reply after {(tr - sent) * 1000:.1f} ms, audio bytes {c.audio_bytes}")
    print("-> end")
    c.audio_bytes = 0
    sent = await c.send(cm("x8", "end", {}))
    tr, _, _ = await c.until(lambda it: it[1] == "closed", show=False)
    print(f"   closed after {(tr - sent) * 1000:.1f} ms: {c.close_info}, audio {c.audio_bytes} B")

    print("== session 2: fatal")
    c, _ = await session(base, {"end_silence_secs": 0})
    sent = await c.send(cm("f1", "fatal", {}))
    tr, _, _ = await c.until(lambda it: it[1] == "closed")
    print(f"   closed after {(tr - sent) * 1000:.1f} ms: {c.close_info}")

    print("== session 3: disconnect-bot")
    c, _ = await session(base, {})
    sent = await c.send({"label": "rtvi-ai", "type": "disconnect-bot", "id": "d1", "data": None})
    tr, _, _ = await c.until(lambda it: it[1] == "closed", show=False)
    print(f"   closed after {(tr - sent) * 1000:.1f} ms: {c.close_info}, audio {c.audio_bytes} B")

    print("== session 4: ready_delay 0.5")
    c, ms = await session(base, {"ready_delay": 0.5})
    await c.ws.close()

    print("== session 5: never_ready (expect timeout)")
    try:
        c, ms = await asyncio.wait_for(session(base, {"never_ready": True}), 2.0)
    except TimeoutError:
        print("   no bot-ready within 2 s (as asked)")

    print("== timing: 10 fresh sessions start->bot-ready")
    times = []
    for _ in range(10):
        c, ms = await session(base, {})
        times.append(ms)
        await c.ws.close()
    print(f"start->bot-ready ms: p50 {statistics.median(times):.1f} max {max(times):.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    asyncio.run(main(p.parse_args().base_url))
