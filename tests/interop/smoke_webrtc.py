"""Manual smoke client for bot_server.py over SmallWebRTC (not a test).

Run inside the interop venv, against a running bot server::

    .venv-interop/bin/python tests/interop/smoke_webrtc.py http://127.0.0.1:N

Does what the JS client does: data channel "chat" (ordered), ``ping: <ms>`` every second,
transceivers audio sendrecv, video sendrecv, video sendonly; offer to
``/api/sessions/{sid}/api/offer`` after ``/api/start``. Loopback-only ICE, no STUN.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aioice.ice
import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError


def _loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


aioice.ice.get_host_addresses = _loopback

CLIENT_READY = {
    "label": "rtvi-ai",
    "type": "client-ready",
    "id": "1",
    "data": {
        "version": "2.2.0",
        "about": {"library": "smoke", "library_version": "0", "platform": "linux"},
    },
}


def cm(msg_id: str, t: str, d: Any) -> dict[str, Any]:
    return {"label": "rtvi-ai", "type": "client-message", "id": msg_id, "data": {"t": t, "d": d}}


class Peer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.t0 = time.perf_counter()
        self.inbox: asyncio.Queue[tuple[float, str, Any]] = asyncio.Queue()
        self.audio_frames = 0
        self.loud_frames = 0
        self.audio_format: str = ""
        self.pc.addTransceiver("audio", direction="sendrecv")
        self.pc.addTransceiver("video", direction="sendrecv")
        self.pc.addTransceiver("video", direction="sendonly")
        self.dc: RTCDataChannel = self.pc.createDataChannel("chat", ordered=True)
        self.opened = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

        @self.dc.on("open")
        def on_open() -> None:
            self.opened.set()
            self._tasks.append(asyncio.create_task(self._pinger()))

        @self.dc.on("message")
        def on_message(raw: str | bytes) -> None:
            body = json.loads(raw)
            self.inbox.put_nowait((time.perf_counter(), "message", body))

        @self.dc.on("close")
        def on_close() -> None:
            self.inbox.put_nowait((time.perf_counter(), "dc-closed", None))

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            self.inbox.put_nowait((time.perf_counter(), "pc-state", self.pc.connectionState))

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._tasks.append(asyncio.create_task(self._audio(track)))

    async def _pinger(self) -> None:
        while self.dc.readyState == "open":
            self.dc.send(f"ping: {int(time.time() * 1000)}")
            await asyncio.sleep(1.0)

    async def _audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame: Any = await track.recv()
                self.audio_frames += 1
                self.audio_format = (
                    f"{frame.sample_rate} Hz {frame.layout.name} {frame.format.name}"
                )
                samples = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16)
                if samples.size and int(np.abs(samples).max()) > 1000:
                    self.loud_frames += 1
        except MediaStreamError:
            pass

    def send(self, msg: dict[str, Any]) -> float:
        t = time.perf_counter()
        self.dc.send(json.dumps(msg))
        return t

    async def until(
        self, pred: Any, within: float = 5.0, show: bool = True
    ) -> tuple[float, str, Any]:
        deadline = time.perf_counter() + within
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no matching event")
            item = await asyncio.wait_for(self.inbox.get(), left)
            if show:
                t, kind, body = item
                print(f"   +{(t - self.t0) * 1000:8.1f} ms  {kind}: {json.dumps(body)[:200]}")
            if pred(item):
                return item

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


def is_reply(msg_id: str) -> Any:
    return lambda it: (it[1] == "message" and it[2].get("id") == msg_id) or it[1] == "dc-closed"


async def session(
    http: httpx.AsyncClient, base: str, options: dict[str, Any], direct: bool = False
) -> tuple[Peer, str]:
    """/api/start then /api/sessions/{sid}/api/offer; or (direct) /api/offer with requestData."""
    p = Peer()
    t0 = time.perf_counter()
    if direct:
        url, request_data = f"{base}/api/offer", options
    else:
        sid = (await http.post(f"{base}/api/start", json=options)).json()["sessionId"]
        url, request_data = f"{base}/api/sessions/{sid}/api/offer", {}
    offer = await p.pc.createOffer()
    await p.pc.setLocalDescription(offer)  # aiortc gathers all candidates here
    t1 = time.perf_counter()
    r = await http.post(
        url,
        json={
            "sdp": p.pc.localDescription.sdp,
            "type": "offer",
            "pc_id": None,
            "restart_pc": False,
            "requestData": request_data,
        },
    )
    r.raise_for_status()
    answer = r.json()
    t2 = time.perf_counter()
    await p.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await asyncio.wait_for(p.opened.wait(), 10)
    t3 = time.perf_counter()
    p.send(CLIENT_READY)
    await p.until(lambda it: it[1] == "message" and it[2].get("type") == "bot-ready")
    t4 = time.perf_counter()
    print(
        f"start->bot-ready {(t4 - t0) * 1000:.1f} ms (start+offer created {(t1 - t0) * 1000:.1f}, "
        f"answer {(t2 - t1) * 1000:.1f}, dc open {(t3 - t2) * 1000:.1f}, "
        f"ready {(t4 - t3) * 1000:.1f}); answer keys {sorted(answer)}"
    )
    return p, answer["pc_id"]


async def main(base: str) -> None:
    async with httpx.AsyncClient() as http:
        print("== session 1: all message types")
        p, pc_id = await session(http, base, {})
        r = await http.patch(
            f"{base}/api/sessions/x/api/offer", json={"pc_id": pc_id, "candidates": []}
        )
        print(f"PATCH unknown session: {r.status_code} {r.headers.get('content-type')} {r.text!r}")
        r = await http.patch(f"{base}/api/offer", json={"pc_id": "nope", "candidates": []})
        print(f"PATCH unknown pc_id: {r.status_code} {r.text!r}")
        r = await http.patch(f"{base}/api/offer", json={"pc_id": pc_id, "candidates": []})
        print(f"PATCH known pc_id: {r.status_code} {r.text!r}")
        rtts = []
        for i in range(50):
            t_sent = p.send(cm(f"e{i}", "echo", {"n": i}))
            tr, _, _ = await p.until(is_reply(f"e{i}"), show=i == 0)
            rtts.append((tr - t_sent) * 1000)
        print(f"echo rtt ms: p50 {statistics.median(rtts):.2f} min {min(rtts):.2f}")
        for msg_id, t, d in [
            ("x1", "error", {"message": "boom"}),
            ("x3", "delay", {"seconds": 0.3}),
            ("x4", "push", {"hello": "world"}),
            ("x5", "nonfatal", {"a": 1}),
            ("x6", "audio", {"ms": 400}),
        ]:
            print(f"-> {t} {d}")
            loud = p.loud_frames
            sent = p.send(cm(msg_id, t, d))
            tr, _, _ = await p.until(is_reply(msg_id))
            await asyncio.sleep(0.2)
            print(
                f"   reply after {(tr - sent) * 1000:.1f} ms; loud audio frames "
                f"{p.loud_frames - loud} (total frames {p.audio_frames}, {p.audio_format})"
            )
        print("-> end")
        sent = p.send(cm("x8", "end", {}))
        await p.until(lambda it: it[1] == "pc-state" and it[2] == "closed", within=10)
        print(f"   closed after {(time.perf_counter() - sent) * 1000:.1f} ms")
        await p.close()

        disconnect = {"label": "rtvi-ai", "type": "disconnect-bot", "id": "d1"}
        for label, options, msg in [
            ("fatal", {}, cm("f1", "fatal", {})),
            ("disconnect-bot", {}, disconnect),
            # Pipecat quirk: a graceful end with no end silence sends peerLeft but leaves the
            # bot's peer connection open (expect "not closed").
            ("disconnect-bot, end_silence_secs 0", {"end_silence_secs": 0}, disconnect),
        ]:
            print(f"== session: {label}")
            p, _ = await session(http, base, options)
            sent = p.send(msg)
            try:
                await p.until(lambda it: it[1] == "pc-state" and it[2] == "closed", within=10)
                print(f"   closed after {(time.perf_counter() - sent) * 1000:.1f} ms")
            except TimeoutError:
                print("   not closed within 10 s")
            await p.close()

        print("== direct /api/offer with requestData {ready_delay: 0.2}")
        p, _ = await session(http, base, {"ready_delay": 0.2}, direct=True)
        await p.close()

        print("== 5 more sessions (timing)")
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            p, _ = await session(http, base, {})
            times.append((time.perf_counter() - t0) * 1000)
            await p.close()
        print(f"start->bot-ready ms: p50 {statistics.median(times):.1f} max {max(times):.1f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    asyncio.run(main(ap.parse_args().base_url))
