"""Load that talks: many sessions each speaking in real time, against raw senders.

Every session POSTs /start, connects until bot-ready, speaks ``SPEECH_S`` seconds of a 440 Hz
tone (what the testing bot hears as a user turn) as 20 ms frames paced in real time, then
``TRAILING_S`` seconds of silence, waits for the bot's first output and disconnects. The
sessions start evenly over ``RAMP_S`` (calls do not all begin in the same millisecond), so
all of them speak at once for most of the speech; the testing bots run in several
subprocesses (:class:`~benchmarks.bots.BotFarm`), on the same 2 cores. The load average
before each run is kept with its figures (the pacing lag is wall-clock time: a machine busy
with other work shows in it on both sides).

* Ours: ``lifecycle.load.LoadRun`` (one per bot process, run together) with
  ``LoadPlan.speech``: the pacing lag is what ``load`` reports as ``audio_send_lag_ms``.
* WebSocket baseline: a hand-written httpx + websockets script (:mod:`raw_ws_client`): the
  same pacing loop, a protobuf frame built per frame, ``ws.send`` awaited; its lag is taken
  the same way (after the send returned).
* SmallWebRTC baseline: a bare aiortc client (:mod:`raw_webrtc_client`) whose audio track
  plays the same PCM in real time and which decodes and drops the bot's audio.

Client CPU is this process's ``time.process_time()`` (user + system, every thread: aiortc
encodes in a pool) over the whole run, connects included; the sides alternate A B / B A.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks._stats import Row, percentile, ratio_text, ratios, summarize
from benchmarks.bots import BotFarm
from lifecycle.media import AudioFrame

SPEECH_S = 5.0
TRAILING_S = 0.5
RAMP_S = 1.0
BOT_PROCESSES = 4
WS_SESSIONS = 100
RTC_SESSIONS = 20
LAG_GOAL_MS = 10.0
LAG_LIMIT_MS = 20.0
WS_CPU_GOAL = 1.20
RTC_CPU_GOAL = 1.30
RUN_TIMEOUT = 120.0
_OUTPUT_TIMEOUT = 30.0


def tone(seconds: float, rate: int) -> tuple[AudioFrame, ...]:
    """A 440 Hz tone at ``rate`` Hz mono, as 20 ms frames."""
    samples = array.array(
        "h",
        (int(12000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))),
    )
    pcm, step = samples.tobytes(), rate // 50 * 2
    return tuple(
        AudioFrame(pcm=pcm[i : i + step], sample_rate=rate, num_channels=1)
        for i in range(0, len(pcm), step)
    )


def silence(seconds: float, rate: int) -> tuple[AudioFrame, ...]:
    """Silence at ``rate`` Hz mono, as 20 ms frames."""
    frame = AudioFrame(pcm=bytes(rate // 50 * 2), sample_rate=rate, num_channels=1)
    return (frame,) * round(seconds * 50)


@dataclass
class Side:
    """One run of one side: CPU seconds, pacing lag p99 (ms), failures, load average before."""

    cpu_s: float
    lag_p99_ms: float
    failed: int
    load: float = 0.0


# ------------------------------------------------------------------ ours


async def _ours(kind: str, farm: BotFarm, sessions: int, speech_s: float = SPEECH_S) -> Side:
    from lifecycle.load import LoadPlan, LoadRun
    from lifecycle.transport import Transport

    rate = 16000 if kind == "ws" else 48000
    speech = tone(speech_s, rate)
    factory: Callable[[], Transport]
    if kind == "ws":
        from transports.websocket import WebSocketTransport

        factory = WebSocketTransport
    else:
        from transports.small_webrtc import SmallWebRTCTransport

        def factory() -> Transport:
            return SmallWebRTCTransport(ice_servers=[])

    urls = farm.start_urls
    counts = [sessions // len(urls) + (i < sessions % len(urls)) for i in range(len(urls))]
    runs = [
        LoadRun(
            LoadPlan(
                start=url,
                sessions=count,
                concurrency=count,
                rate=count / RAMP_S,
                speech=speech,
                trailing_silence=TRAILING_S,
                request_timeout=_OUTPUT_TIMEOUT,
            ),
            factory,
        )
        for url, count in zip(urls, counts, strict=True)
        if count
    ]
    cpu = time.process_time()
    async with asyncio.timeout(RUN_TIMEOUT):
        results = await asyncio.gather(*(run.run() for run in runs))
    used = time.process_time() - cpu
    lag = results[0].audio_send_lag
    for stats in results[1:]:
        lag.add(stats.audio_send_lag)
    p99 = lag.percentile_ms(99) if lag.count else float("nan")
    return Side(used, p99, sum(stats.failed for stats in results))


# ------------------------------------------------------------------ raw WebSocket


async def _pace(
    send: Callable[[AudioFrame], Awaitable[None]], frames: Sequence[AudioFrame], lags: list[float]
) -> None:
    """The hand-written script's pacing loop: frame n leaves at n x 20 ms."""
    start = time.monotonic()
    for n, frame in enumerate(frames):
        due = start + n * 0.02
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await send(frame)
        lags.append((time.monotonic() - due) * 1000.0)


async def _raw_ws(farm: BotFarm, sessions: int, speech_s: float = SPEECH_S) -> Side:
    import httpx

    from benchmarks.raw_ws_client import RawWSClient

    speech, trailing = tone(speech_s, 16000), silence(TRAILING_S, 16000)
    lags: list[float] = []
    failed = 0

    async def one(http: httpx.AsyncClient, index: int) -> None:
        nonlocal failed
        await asyncio.sleep(index / sessions * RAMP_S)
        client = RawWSClient()
        try:
            answer = (await http.post(farm.url(index), json={"transport": "websocket"})).json()
            await client.connect(answer["wsUrl"])

            async def send(frame: AudioFrame) -> None:
                await client.send_audio(frame.pcm, frame.sample_rate)

            await _pace(send, speech, lags)
            client.listening = True
            await _pace(send, trailing, lags)
            async with asyncio.timeout(_OUTPUT_TIMEOUT):
                await client.output.wait()
        except Exception:
            failed += 1
        finally:
            await client.close()

    cpu = time.process_time()
    async with (
        asyncio.timeout(RUN_TIMEOUT),
        httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http,
    ):
        await asyncio.gather(*(one(http, i) for i in range(sessions)))
    return Side(time.process_time() - cpu, percentile(lags, 99), failed)


# ------------------------------------------------------------------ bare aiortc


def _speaking_track(chunks: Sequence[bytes], done: asyncio.Event) -> Any:
    """An aiortc track: silence until :meth:`speak`, then ``chunks`` (48 kHz mono, 20 ms)."""
    import av
    from aiortc import MediaStreamTrack

    quiet = bytes(1920)

    class Track(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._start: float | None = None
            self._pts = 0
            self._next: int | None = None

        def speak(self) -> None:
            self._next = 0

        async def recv(self) -> Any:
            if self._start is None:
                self._start = time.monotonic()
            else:
                self._pts += 960
                wait = self._start + self._pts / 48000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            pcm = quiet
            if self._next is not None:
                if self._next < len(chunks):
                    pcm = chunks[self._next]
                    self._next += 1
                else:
                    done.set()
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(pcm)
            frame.sample_rate = 48000
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, 48000)
            return frame

    return Track()


async def _raw_rtc(farm: BotFarm, sessions: int, speech_s: float = SPEECH_S) -> Side:
    import httpx

    from benchmarks.raw_webrtc_client import RawWebRTCClient

    chunks = [f.pcm for f in (*tone(speech_s, 48000), *silence(TRAILING_S, 48000))]
    failed = 0

    async def one(http: httpx.AsyncClient, index: int) -> None:
        nonlocal failed
        await asyncio.sleep(index / sessions * RAMP_S)
        done = asyncio.Event()
        track = _speaking_track(chunks, done)
        client = RawWebRTCClient(http, audio_track=track, receive_audio=True)
        try:
            url = farm.url(index)
            answer = (await http.post(url, json={})).json()
            base = url.rsplit("/", 1)[0]
            await client.connect(f"{base}/sessions/{answer['sessionId']}/api/offer")
            track.speak()
            async with asyncio.timeout(_OUTPUT_TIMEOUT):
                await done.wait()
                client.heard.clear()
                await client.heard.wait()  # the first bot audio after the speech
        except Exception:
            failed += 1
        finally:
            await client.close()

    cpu = time.process_time()
    async with asyncio.timeout(RUN_TIMEOUT), httpx.AsyncClient() as http:
        await asyncio.gather(*(one(http, i) for i in range(sessions)))
    return Side(time.process_time() - cpu, float("nan"), failed)


# ------------------------------------------------------------------ one frame's CPU


async def _frame_cpu_us(url: str, how: str, frames: int) -> float:
    """CPU µs per audio frame sent on one live session, no pacing (a loop turn per frame).

    ``client``: ``PipecatClient.send_audio``; ``transport``: ``WebSocketTransport.send_audio``
    (its queue and writer task); ``raw``: the raw client's ``ws.send`` of the same frame.
    """
    from lifecycle import PipecatClient
    from transports.websocket import WebSocketTransport

    speech = tone(1.0, 16000)
    if how == "raw":
        import httpx

        from benchmarks.raw_ws_client import RawWSClient

        async with httpx.AsyncClient() as http:
            answer = (await http.post(url, json={"transport": "websocket"})).json()
        raw = RawWSClient()
        await raw.connect(answer["wsUrl"])

        async def send(frame: AudioFrame) -> None:
            await raw.send_audio(frame.pcm, frame.sample_rate)

        close: Callable[[], Awaitable[None]] = raw.close
    else:
        transport = WebSocketTransport()
        client = PipecatClient(transport)
        await client.start_bot_and_connect(url)
        close = client.disconnect
        if how == "client":
            send = client.send_audio
        else:

            async def send(frame: AudioFrame) -> None:
                transport.send_audio(frame)

    cpu = time.process_time()
    for n in range(frames):
        await send(speech[n % len(speech)])
        await asyncio.sleep(0)  # let the writer run, as pacing would
    used = time.process_time() - cpu
    await close()
    return used / frames * 1e6


def frame_cpu(rounds: int, frames: int = 5000) -> dict[str, list[float]]:
    """Per-frame CPU of the three ways to send, interleaved over ``rounds``."""
    results: dict[str, list[float]] = {"client": [], "transport": [], "raw": []}
    with BotFarm("ws", 1) as farm:
        for i in range(rounds):
            order = list(results) if i % 2 == 0 else list(results)[::-1]
            for how in order:
                results[how].append(asyncio.run(_frame_cpu_us(farm.url(0), how, frames)))
    return results


def frame_cpu_row(results: dict[str, list[float]]) -> Row:
    """One row: per-frame CPU of ours (client, and transport alone) vs the raw ws.send."""
    client, transport, raw = (summarize(results[k]) for k in ("client", "transport", "raw"))
    paired = summarize(ratios(results["client"], results["raw"]))
    return Row(
        "9",
        "one WebSocket audio frame (16 kHz, 20 ms), CPU µs in this process: "
        f"PipecatClient.send_audio (the transport alone: {transport.median:.1f} µs) vs the raw "
        "client's ws.send of the same protobuf frame",
        client.fmt(" µs"),
        raw.fmt(" µs"),
        ratio_text(paired),
    )


# ------------------------------------------------------------------ the section


def _run(side: Coroutine[Any, Any, Side]) -> Side:
    """Run one side in a fresh event loop; the load average before it goes with it."""
    load = os.getloadavg()[0]
    result = asyncio.run(side)
    result.load = load
    return result


def measure(
    kind: str,
    sessions: int,
    rounds: int,
    sweep: Sequence[int] = (),
    speech_s: float = SPEECH_S,
    processes: int = BOT_PROCESSES,
) -> tuple[list[Side], list[Side], list[tuple[int, Side]]]:
    """``rounds`` interleaved pairs (ours, raw) of ``sessions``; then ours alone per ``sweep``."""
    raw = _raw_ws if kind == "ws" else _raw_rtc
    ours_runs: list[Side] = []
    raw_runs: list[Side] = []
    with BotFarm(kind, processes, speech_ms=200) as farm:
        if kind == "webrtc":
            from benchmarks.raw_webrtc_client import loopback_ice

            loopback_ice()
        _run(_ours(kind, farm, 2, speech_s))  # warm-up: imports, first-use caches
        _run(raw(farm, 2, speech_s))
        for i in range(rounds):
            for side in (_ours, raw) if i % 2 == 0 else (raw, _ours):
                if side is _ours:
                    ours_runs.append(_run(_ours(kind, farm, sessions, speech_s)))
                else:
                    raw_runs.append(_run(raw(farm, sessions, speech_s)))
        swept = [(n, _run(_ours(kind, farm, n, speech_s))) for n in sweep]
    return ours_runs, raw_runs, swept


def _loads(sides: Sequence[Side]) -> str:
    loads = [side.load for side in sides]
    return f"load average {min(loads):.1f}-{max(loads):.1f}" if loads else ""


def rows(
    kind: str, sessions: int, ours: list[Side], raw: list[Side], swept: list[tuple[int, Side]]
) -> list[Row]:
    """CPU ratio (goal), pacing lag p99 (WS, goal) and the largest count within the limit."""
    failed = sum(side.failed for side in (*ours, *raw))
    what = (
        f"{sessions} concurrent WebSocket sessions each speaking 16 kHz mono in real time"
        if kind == "ws"
        else f"{sessions} concurrent SmallWebRTC sessions speaking (48 kHz) and receiving"
    )
    what += (
        f" ({SPEECH_S:g} s + {TRAILING_S:g} s silence, started over {RAMP_S:g} s; bots in "
        f"{BOT_PROCESSES} processes; {_loads([*ours, *raw])})"
    )
    base = "raw websockets sender" if kind == "ws" else "bare aiortc client"
    goal = WS_CPU_GOAL if kind == "ws" else RTC_CPU_GOAL
    paired = summarize(ratios([s.cpu_s for s in ours], [s.cpu_s for s in raw]))
    cpu = Row(
        "9",
        f"{what}: client CPU s (process_time, whole run) vs a {base}",
        summarize([s.cpu_s for s in ours]).fmt(" s", 2),
        summarize([s.cpu_s for s in raw]).fmt(" s", 2),
        ratio_text(paired),
        f"≤ x{goal:.2f}",
        paired.median <= goal,
        [f"{failed} sessions failed"] if failed else [],
    )
    if kind != "ws":
        return [cpu]
    lag = summarize([s.lag_p99_ms for s in ours])
    lag_row = Row(
        "9",
        f"{what}: send pacing lag p99 (ms late against the schedule; median over runs)",
        lag.fmt(" ms", 2),
        summarize([s.lag_p99_ms for s in raw]).fmt(" ms", 2),
        "",
        f"≤ {LAG_GOAL_MS:g} ms",
        lag.median <= LAG_GOAL_MS,
    )
    within = [n for n, side in swept if side.lag_p99_ms <= LAG_LIMIT_MS and not side.failed]
    figures = "; ".join(
        f"{n}: p99 {side.lag_p99_ms:.1f} ms, CPU {side.cpu_s:.2f} s, load {side.load:.1f}"
        + (f", {side.failed} failed" if side.failed else "")
        for n, side in swept
    )
    sweep_row = Row(
        "9",
        f"largest WebSocket count speaking at once whose pacing lag p99 ≤ {LAG_LIMIT_MS:g} ms "
        f"({figures})",
        str(max(within)) if within else "none",
        "",
        "",
    )
    return [cpu, lag_row, sweep_row]


def run(quick: bool) -> list[Row]:
    """Section 9: WebSocket (100 sessions, the sweep) and SmallWebRTC (20 sessions)."""
    if quick:
        ws = measure("ws", 10, 2, sweep=(10, 20))
        rtc = measure("webrtc", 3, 2)
        per_frame = frame_cpu(2, 500)
        return [*rows("ws", 10, *ws), frame_cpu_row(per_frame), *rows("webrtc", 3, *rtc)]
    ws = measure("ws", WS_SESSIONS, 3, sweep=(50, 100, 200, 400))
    per_frame = frame_cpu(4)
    rtc = measure("webrtc", RTC_SESSIONS, 3)
    return [
        *rows("ws", WS_SESSIONS, *ws),
        frame_cpu_row(per_frame),
        *rows("webrtc", RTC_SESSIONS, *rtc),
    ]


if __name__ == "__main__":
    from benchmarks._stats import table

    print(table(run("--quick" in sys.argv)))
