"""PipecatClient + SmallWebRTCTransport against the real Pipecat 1.14 SmallWebRTC bot.

The bot server (tests/interop/bot_server.py) runs in the interop venv; this process patches
aioice's host addresses to loopback (this machine has no other interface), both peers use no
ICE server. Timings are printed (run with ``-s``) and bounded loosely.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

pytest.importorskip("aiortc")

import aioice.ice

from lifecycle import (
    APIRequest,
    AudioFrame,
    MessageError,
    PipecatClient,
    RTVIError,
    SessionCancelledError,
    State,
    TransportError,
)
from transports.small_webrtc import SmallWebRTCTransport

T = 15.0  # bound for every await


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", host_addresses)


class Events:
    """Records every client event; waits for them without sleeping."""

    NAMES = (
        "on_transition",
        "on_connected",
        "on_bot_ready",
        "on_disconnected",
        "on_bot_disconnected",
        "on_server_message",
        "on_error",
        "on_bot_audio",
        "on_unhandled_message",
        "on_message_error",
    )

    def __init__(self, client: PipecatClient) -> None:
        self.log: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        for name in self.NAMES:
            client.add_event_handler(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.log.append((name, args[0] if args else None))
            self._changed.set()

        return record

    def of(self, name: str) -> list[Any]:
        return [arg for n, arg in self.log if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.log if n not in ("on_bot_audio", "on_transition")]

    async def wait(self, pred: Callable[[], bool], timeout: float = T) -> None:
        async def loop() -> None:
            while not pred():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def client(bot_server: Any) -> AsyncIterator[PipecatClient]:
    bot_server.ensure_running()
    c = PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=T)
    try:
        yield c
    finally:
        await asyncio.wait_for(c.disconnect(), T)


def webrtc_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("webrtc") and not t.done()]


# ---------------------------------------------------------------------------- start styles


async def test_start_bot_and_connect_session_url(bot_server: Any, client: PipecatClient) -> None:
    events = Events(client)
    ready = await asyncio.wait_for(
        client.start_bot_and_connect(APIRequest(f"{bot_server.base_url}/api/start")), T
    )
    assert ready.version.startswith("2.")
    assert client.state is State.READY
    assert await asyncio.wait_for(client.send_client_request("echo", {"n": 1}), T) == {"n": 1}
    await asyncio.wait_for(client.disconnect(), T)
    assert client.state is State.DISCONNECTED
    assert events.names() == ["on_connected", "on_bot_ready", "on_disconnected"]
    assert not webrtc_tasks()


async def test_start_bot_then_connect(bot_server: Any, client: PipecatClient) -> None:
    response = await asyncio.wait_for(client.start_bot(f"{bot_server.base_url}/api/start"), T)
    assert "sessionId" in response and client.state is State.AUTHENTICATED
    await asyncio.wait_for(client.connect(), T)
    assert await asyncio.wait_for(client.send_client_request("echo", "x"), T) == "x"


@pytest.mark.parametrize("key", ["webrtcUrl", "webrtc_url"])
async def test_connect_direct_url_param(bot_server: Any, client: PipecatClient, key: str) -> None:
    await asyncio.wait_for(client.connect({key: f"{bot_server.base_url}/api/offer"}), T)
    assert await asyncio.wait_for(client.send_client_request("echo", [1, 2]), T) == [1, 2]


async def test_connect_constructor_url(bot_server: Any) -> None:
    transport = SmallWebRTCTransport(f"{bot_server.base_url}/api/offer")
    async with PipecatClient(transport) as c:
        await asyncio.wait_for(c.connect(), T)
        assert await asyncio.wait_for(c.send_client_request("echo", None), T) is None
    assert c.state is State.DISCONNECTED


async def test_unknown_session_is_a_transport_error(bot_server: Any, client: PipecatClient) -> None:
    with pytest.raises(TransportError):
        await asyncio.wait_for(client.connect({"sessionId": "nope"}), T)
    # sessionId without start_bot has no start endpoint: also a TransportError.
    request = APIRequest(f"{bot_server.base_url}/api/start")
    await asyncio.wait_for(client.start_bot(request), T)
    with pytest.raises(TransportError, match="404"):
        await asyncio.wait_for(client.connect({"sessionId": "nope"}), T)
    assert client.state is State.DISCONNECTED
    assert not webrtc_tasks()


# ---------------------------------------------------------------------------- messages


async def test_requests_and_server_messages(bot_server: Any, client: PipecatClient) -> None:
    events = Events(client)
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    with pytest.raises(MessageError) as info:
        await asyncio.wait_for(client.send_client_request("error", {"message": "boom"}), T)
    assert info.value.data == {"error": "boom"}
    assert await asyncio.wait_for(client.send_client_request("push", {"p": 1}), T) == {
        "pushed": True
    }
    await events.wait(lambda: bool(events.of("on_server_message")))
    assert events.of("on_server_message") == [{"p": 1}]
    await asyncio.wait_for(client.send_client_request("nonfatal", {}), T)
    await events.wait(lambda: bool(events.of("on_error")))
    error = events.of("on_error")[0]
    assert isinstance(error, RTVIError) and not error.fatal
    assert client.state is State.READY


async def test_bot_audio(bot_server: Any, client: PipecatClient) -> None:
    events = Events(client)
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    assert await asyncio.wait_for(client.send_client_request("audio", {"ms": 400}), T) == {
        "sent": True
    }

    def loud(frame: AudioFrame) -> bool:
        samples = struct.unpack(f"<{len(frame.pcm) // 2}h", frame.pcm)
        return max(abs(s) for s in samples) > 2000

    await events.wait(lambda: any(loud(f) for f in events.of("on_bot_audio")))
    frame = next(f for f in events.of("on_bot_audio") if loud(f))
    assert isinstance(frame, AudioFrame)
    assert frame.sample_rate == 48000 and frame.num_channels in (1, 2)
    # Sending audio to the bot works too (the bot consumes it silently).
    client_audio = AudioFrame(b"\x00\x01" * 320, 16000, 1)
    for _ in range(10):
        await asyncio.wait_for(client.send_audio(client_audio), T)


# ---------------------------------------------------------------------------- ends


async def test_bot_ends_session(bot_server: Any, client: PipecatClient) -> None:
    events = Events(client)
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    client.send_client_message("end")
    await events.wait(lambda: bool(events.of("on_disconnected")))
    assert client.state is State.DISCONNECTED
    assert "on_bot_disconnected" in events.names()
    assert not [e for e in events.of("on_error") if e.fatal]  # a clean leave (peerLeft)
    assert not webrtc_tasks()


async def test_fatal_error(bot_server: Any, client: PipecatClient) -> None:
    events = Events(client)
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    client.send_client_message("fatal")
    await events.wait(lambda: bool(events.of("on_disconnected")))
    assert client.state is State.DISCONNECTED
    fatal = [e for e in events.of("on_error") if e.fatal]
    assert fatal and fatal[0].message == "requested fatal"
    assert not webrtc_tasks()


async def test_bot_server_killed(bot_server: Any, client: PipecatClient) -> None:
    """A crashed bot sends no peerLeft: aioice's ICE consent check notices it (about 30 s),
    the connection fails, and the session ends as a lost transport (fatal on_error)."""
    events = Events(client)
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    bot_server.kill()
    try:
        await events.wait(lambda: bool(events.of("on_disconnected")), timeout=60.0)
        assert [e for e in events.of("on_error") if e.fatal]
        assert "on_bot_disconnected" in events.names()
    finally:
        bot_server.restart()


@pytest.mark.parametrize(
    "phase", ["authenticating", "authenticated", "connecting", "connected", "ready"]
)
async def test_disconnect_at_every_phase(
    bot_server: Any, client: PipecatClient, phase: str
) -> None:
    events = Events(client)
    delay = "?delay=5" if phase == "authenticating" else ""
    body = {"ready_delay": 5} if phase == "connected" else {}
    request = APIRequest(f"{bot_server.base_url}/api/start{delay}", request_data=body)
    target = State(phase)
    if phase == "authenticated":
        await asyncio.wait_for(client.start_bot(request), T)
        attempt = None
    else:
        attempt = asyncio.ensure_future(client.start_bot_and_connect(request))
        await events.wait(lambda: client.state is target)
    await asyncio.wait_for(client.disconnect(), T)
    assert client.state is State.DISCONNECTED
    if attempt is not None:
        if phase == "ready":
            await asyncio.wait_for(attempt, T)
        else:
            with pytest.raises(SessionCancelledError):
                await asyncio.wait_for(attempt, T)
    assert events.of("on_disconnected") == [None]
    assert "on_bot_disconnected" not in events.names()
    assert not webrtc_tasks()
    # The same client and transport start a new session right after.
    await asyncio.wait_for(client.start_bot_and_connect(f"{bot_server.base_url}/api/start"), T)
    assert await asyncio.wait_for(client.send_client_request("echo", phase), T) == phase


# ---------------------------------------------------------------------------- soak + timings


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def test_twenty_sessions_no_growth_and_timings(
    bot_server: Any, client: PipecatClient
) -> None:
    url = f"{bot_server.base_url}/api/start"
    ready_ms: list[float] = []
    rtt_ms: list[float] = []
    samples: list[tuple[int, int, int]] = []
    for i in range(20):
        response = await asyncio.wait_for(client.start_bot(url), T)
        started = time.perf_counter()
        await asyncio.wait_for(client.connect(response), T)
        ready_ms.append((time.perf_counter() - started) * 1000)
        for _ in range(25):
            t0 = time.perf_counter()
            await asyncio.wait_for(client.send_client_request("echo", i), T)
            rtt_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.wait_for(client.disconnect(), T)
        gc.collect()
        samples.append((len(asyncio.all_tasks()), _fds(), _rss_kib()))
    tasks, fds, rss = zip(*samples, strict=True)
    print(
        f"\nwebrtc offer->ready ms: median {statistics.median(ready_ms):.1f} "
        f"p99 {_pct(ready_ms, 0.99):.1f}; request rtt ms: median {statistics.median(rtt_ms):.2f} "
        f"p99 {_pct(rtt_ms, 0.99):.2f} (n={len(rtt_ms)}); tasks {tasks[4]}->{tasks[-1]}, "
        f"fds {fds[4]}->{fds[-1]}, rss KiB {rss[4]}->{rss[-1]}"
    )
    # After a few warm-up sessions nothing grows: tasks and fds flat, memory within 20 MiB.
    assert max(tasks[4:]) <= tasks[4]
    assert max(fds[4:]) <= fds[4] + 2
    assert rss[-1] - rss[4] < 20 * 1024
    assert not webrtc_tasks()
    assert statistics.median(ready_ms) < 2000
    assert statistics.median(rtt_ms) < 50
