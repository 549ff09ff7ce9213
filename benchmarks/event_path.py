"""The inbound event path: typed callbacks vs a raw decode loop, and ``on_bot_audio``'s CPU.

* Events/s: the same ``bot-llm-text`` messages reach (a) ``PipecatClient``'s typed
  ``on_bot_llm_text`` callback and (b) a raw decode loop (``json.loads`` + a dict from type
  to function), A B / B A interleaved. On the loopback bot also (c) the same raw loop on
  ``orjson``, the decoder ours uses: against it, what is left is what our layers cost. On
  the loopback bot, every side sits on the same ``LoopbackTransport`` fed by
  ``LoopbackBot.send_event``; on the WebSocket testing bot
  (``transports.testing.TestingBotServer`` in a subprocess, so its CPU is not ours), both ask
  for one scripted turn (``send-text``, reply of ``TOKENS`` tokens, no audio) and count
  ``bot-llm-text`` until ``bot-llm-stopped``.
* µs per event: a message handed to the transport sink until its sync callback ran, for a
  typed event and for an unknown type (the ``on_unhandled_message`` path).
* ``on_bot_audio``: CPU % of one core of a process holding one SmallWebRTC session while
  the WebRTC testing bot (a subprocess) speaks 48 kHz stereo at 50 frames/s; ours with a
  no-op ``on_bot_audio`` callback vs a bare aiortc receiver (a raw RTCPeerConnection that
  only ``recv()``s the remote audio track). Each side in a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._stats import Row, ratio_text, ratios, summarize
from benchmarks.bots import BotProcess

REPO = Path(__file__).resolve().parent.parent
RATE_GOAL = 0.80
US_GOAL = 10.0
TOKENS = 2000
BATCH = 1000
TIMEOUT = 60.0


def _raw_dispatch(counter: list[int], done: asyncio.Event, target: int) -> dict[str, Any]:
    """The raw loop's table: message type -> function (what a hand-written script keeps)."""

    def on_text(data: Any) -> None:
        counter[0] += 1
        if counter[0] == target:
            done.set()

    def on_stopped(data: Any) -> None:
        done.set()

    return {"bot-llm-text": on_text, "bot-llm-stopped": on_stopped}


# ------------------------------------------------------------------ loopback


async def _loopback_rounds(rounds: int) -> dict[str, list[float]]:
    """Events/s of ours, of the raw decode loop (``json.loads``) and of the same loop on
    ``orjson`` (the decoder ours uses), each burst in turn, the order rotating per round."""
    import orjson

    from benchmarks.throughput import RawLoopback
    from lifecycle import PipecatClient
    from transports.loopback import LoopbackBot, LoopbackTransport

    client_bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(client_bot), max_pending_events=BATCH * 2)
    ours_count = [0]
    ours_done = asyncio.Event()

    def on_text(data: Any) -> None:
        ours_count[0] += 1
        if ours_count[0] == BATCH:
            ours_done.set()

    client.add_event_handler("on_bot_llm_text", on_text)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    sides: dict[str, tuple[LoopbackBot, list[int], asyncio.Event]] = {
        "ours": (client_bot, ours_count, ours_done)
    }
    raws: list[RawLoopback] = []
    for side, loads in (("raw", json.loads), ("raw_orjson", orjson.loads)):
        raw = RawLoopback(LoopbackBot())
        count = [0]
        done = asyncio.Event()
        table = _raw_dispatch(count, done, BATCH)
        raw.message_received = _raw_loop(loads, table, raw.message_received)  # type: ignore[method-assign]
        await asyncio.wait_for(raw.connect(), TIMEOUT)
        raws.append(raw)
        sides[side] = (raw.transport.bot, count, done)

    async def burst(bot: LoopbackBot, count: list[int], done: asyncio.Event) -> float:
        count[0] = 0
        done.clear()
        t0 = time.perf_counter()
        for i in range(BATCH):
            await bot.send_event("bot-llm-text", {"text": f"tok{i} "})
        await asyncio.wait_for(done.wait(), TIMEOUT)
        return BATCH / (time.perf_counter() - t0)

    rates: dict[str, list[float]] = {side: [] for side in sides}
    names = list(sides)
    for side in names:  # warm-up
        await burst(*sides[side])
    for i in range(rounds):
        for side in names[i % 3 :] + names[: i % 3]:
            rates[side].append(await burst(*sides[side]))
    await client.disconnect()
    for raw in raws:
        await raw.close()
    return rates


def _raw_loop(
    loads: Callable[[Any], Any], table: dict[str, Any], plain: Callable[[Any], None]
) -> Callable[[Any], None]:
    """The raw decode loop: ``loads`` + the type table; anything else (bot-ready) to the
    bare sink's own handler."""

    def raw_received(message: Any) -> None:
        msg = loads(message) if isinstance(message, str | bytes) else message
        handler = table.get(msg.get("type"))
        if handler is not None:
            handler(msg.get("data"))
        else:
            plain(message)

    return raw_received


# ------------------------------------------------------------------ WebSocket testing bot


def _send_text_frame(text: str) -> bytes:
    from benchmarks.raw_ws_client import _frame

    return _frame(
        {
            "label": "rtvi-ai",
            "type": "send-text",
            "id": f"t{time.perf_counter_ns()}",
            "data": {
                "content": text,
                "options": {"run_immediately": True, "audio_response": False},
            },
        }
    )


async def _ws_rounds(
    start_url: str, rounds: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Events/s of ours and raw, and this process's CPU µs per event of each."""
    import httpx

    from lifecycle import PipecatClient
    from transports._pb import frames_pb2 as pb
    from transports.websocket import WebSocketTransport

    client = PipecatClient(WebSocketTransport(), max_pending_events=TOKENS * 2)
    ours_count = [0]
    ours_done = asyncio.Event()

    def on_text(data: Any) -> None:
        ours_count[0] += 1

    def on_stopped() -> None:
        ours_done.set()

    client.add_event_handler("on_bot_llm_text", on_text)
    client.add_event_handler("on_bot_llm_stopped", on_stopped)
    await asyncio.wait_for(client.start_bot_and_connect(start_url), TIMEOUT)

    async with httpx.AsyncClient() as http:
        answer = (await http.post(start_url, json={})).json()
    raw_count = [0]
    raw_done = asyncio.Event()
    table = _raw_dispatch(raw_count, raw_done, -1)
    ws_url = answer["wsUrl"]

    from websockets.asyncio.client import connect

    ws = await connect(ws_url, max_size=None)
    ready = asyncio.Event()

    async def read() -> None:  # the raw decode loop
        async for data in ws:
            if isinstance(data, str):
                continue
            frame = pb.Frame.FromString(data)
            if frame.WhichOneof("frame") != "message":
                continue
            msg = json.loads(frame.message.data)
            kind = msg.get("type")
            handler = table.get(kind)
            if handler is not None:
                handler(msg.get("data"))
            elif kind == "bot-ready":
                ready.set()

    from benchmarks.raw_ws_client import _frame, client_ready

    reader = asyncio.create_task(read())
    await ws.send(_frame(client_ready()))
    await asyncio.wait_for(ready.wait(), TIMEOUT)

    ours: list[float] = []
    base: list[float] = []
    ours_cpu: list[float] = []
    base_cpu: list[float] = []

    async def ours_turn(keep: bool) -> None:
        ours_count[0] = 0
        ours_done.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        await client.send_text("go", audio_response=False)
        await asyncio.wait_for(ours_done.wait(), TIMEOUT)
        if keep:
            ours.append(ours_count[0] / (time.perf_counter() - t0))
            ours_cpu.append((time.process_time() - c0) * 1e6 / ours_count[0])

    async def raw_turn(keep: bool) -> None:
        raw_count[0] = 0
        raw_done.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        await ws.send(_send_text_frame("go"))
        await asyncio.wait_for(raw_done.wait(), TIMEOUT)
        if keep:
            base.append(raw_count[0] / (time.perf_counter() - t0))
            base_cpu.append((time.process_time() - c0) * 1e6 / raw_count[0])

    await ours_turn(False)  # warm-up
    await raw_turn(False)
    for i in range(rounds):
        if i % 2 == 0:
            await ours_turn(True)
            await raw_turn(True)
        else:
            await raw_turn(True)
            await ours_turn(True)
    await client.disconnect()
    await ws.close()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return ours, base, ours_cpu, base_cpu


def _rate_row(label: str, ours: list[float], base: list[float]) -> Row:
    a, b = summarize(ours), summarize(base)
    r = summarize(ratios(ours, base))
    return Row(
        "7",
        f"event path {label}: bot-llm-text events/s, typed callback vs raw decode loop",
        f"{a.median:,.0f} [{a.q1:,.0f}-{a.q3:,.0f}]",
        f"{b.median:,.0f} [{b.q1:,.0f}-{b.q3:,.0f}]",
        ratio_text(r),
        f"≥ x{RATE_GOAL:.2f}",
        r.median >= RATE_GOAL,
    )


def _orjson_row(label: str, ours: list[float], base: list[float]) -> Row:
    # Ours parses with orjson; the goal's raw loop with json. Against the same loop on
    # orjson, what is left is what our layers cost.
    a, b = summarize(ours), summarize(base)
    return Row(
        "7",
        f"event path {label}: the same, against the raw loop on orjson (our decoder)",
        f"{a.median:,.0f} [{a.q1:,.0f}-{a.q3:,.0f}]",
        f"{b.median:,.0f} [{b.q1:,.0f}-{b.q3:,.0f}]",
        ratio_text(summarize(ratios(ours, base))),
        "",
        None,
    )


def _cpu_row(label: str, ours: list[float], base: list[float]) -> Row:
    a, b = summarize(ours), summarize(base)
    r = summarize(ratios(ours, base))
    return Row(
        "7",
        f"event path {label}: CPU µs per event in the client process (process_time)",
        a.fmt(" µs", 2),
        b.fmt(" µs", 2),
        ratio_text(r),
        "",
        None,
    )


# ------------------------------------------------------------------ on_bot_audio CPU


async def _audio_child(side: str, start_url: str, seconds: float) -> dict[str, float]:
    from benchmarks.raw_webrtc_client import loopback_ice

    loopback_ice()
    frames = [0]
    first = asyncio.Event()

    def on_audio(frame: Any) -> None:
        frames[0] += 1
        first.set()

    if side != "raw":
        from lifecycle import PipecatClient
        from transports.small_webrtc import SmallWebRTCTransport

        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]))
        client.add_event_handler("on_bot_audio", on_audio)
        await asyncio.wait_for(client.start_bot_and_connect(start_url), TIMEOUT)
        await client.send_text("speak")
        await asyncio.wait_for(first.wait(), TIMEOUT)
        if side == "ours-no-callback":  # the same session without an on_bot_audio callback
            client.remove_event_handler("on_bot_audio", on_audio)
            frames[0] = -1  # no frame count without the callback
        close: Any = client.disconnect
    else:
        import httpx

        from benchmarks.raw_webrtc_client import RawWebRTCClient

        http = httpx.AsyncClient()
        raw = RawWebRTCClient(http)
        answer = (await http.post(start_url, json={})).json()
        base = start_url.rsplit("/api/", 1)[0]
        await raw.connect(f"{base}/api/sessions/{answer['sessionId']}/api/offer")
        track = next(r.track for r in raw.pc.getReceivers() if r.track.kind == "audio")

        async def receive() -> None:
            while True:
                on_audio(await track.recv())

        receiver = asyncio.create_task(receive())
        raw.channel.send(
            json.dumps(
                {
                    "label": "rtvi-ai",
                    "type": "send-text",
                    "id": "t1",
                    "data": {
                        "content": "speak",
                        "options": {"run_immediately": True, "audio_response": True},
                    },
                }
            )
        )

        async def close() -> None:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            await raw.close()
            await http.aclose()

    await asyncio.wait_for(first.wait(), TIMEOUT)
    await asyncio.sleep(0.5)  # past the first frames' jitter buffer fill
    n0 = frames[0]
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    n = frames[0] - n0
    await close()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {"cpu_pct": 100 * cpu / wall, "fps": n / wall}


def _audio_spawn(side: str, start_url: str, seconds: float) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.event_path", "--audio-child", side]
    command += ["--start-url", start_url, "--seconds", str(seconds)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT + seconds * 2,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"audio child failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def audio_rows(quick: bool) -> list[Row]:
    """CPU % of one core for one SmallWebRTC session receiving the bot's audio."""
    seconds = 2.0 if quick else 10.0
    processes = 1 if quick else 3
    sides = ("ours", "raw", "ours-no-callback")
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    fps: list[float] = []
    with BotProcess("webrtc", 5, speech_ms=int((seconds + 8) * 1000)) as bot:
        for i in range(processes):
            for side in sides if i % 2 == 0 else sides[::-1]:
                result = _audio_spawn(side, bot.start_url, seconds)
                cpu[side].append(result["cpu_pct"])
                if side == "ours":
                    fps.append(result["fps"])
    a, b, c = (summarize(cpu[side]) for side in sides)
    r = summarize(ratios(cpu["ours"], cpu["raw"]))
    label = (
        f"one SmallWebRTC session receiving the bot's audio at {summarize(fps).median:.0f} "
        f"frames/s (48 kHz stereo): CPU % of one core ({processes} fresh processes per side, "
        f"{seconds:.0f} s each)"
    )
    return [
        Row(
            "7",
            f"{label}, ours with a no-op on_bot_audio vs a bare aiortc receiver",
            f"{a.median:.1f} % [{a.q1:.1f}-{a.q3:.1f}]",
            f"{b.median:.1f} % [{b.q1:.1f}-{b.q3:.1f}]",
            ratio_text(r),
            "",
            None,
        ),
        Row(
            "7",
            f"{label}, ours: with on_bot_audio vs the same session without a callback",
            f"{a.median:.1f} %",
            f"{c.median:.1f} % [{c.q1:.1f}-{c.q3:.1f}]",
            f"on_bot_audio: {a.median - c.median:+.1f} % of a core",
            "",
            None,
        ),
    ]


# ------------------------------------------------------------------ rows


def per_event_rows(quick: bool) -> list[Row]:
    """µs per event, typed callback vs the ``on_unhandled_message`` path (in process)."""
    from benchmarks import flood

    batches = 5 if quick else 30
    typed: list[float] = []
    untyped: list[float] = []
    for i in range(3 if quick else 7):
        pair = ("on_bot_llm_text", "on_unhandled_message")
        for event in pair if i % 2 == 0 else pair[::-1]:
            cost = asyncio.run(flood.client_path_us(batches, event))
            (typed if event == "on_bot_llm_text" else untyped).append(cost)
    a, b = summarize(typed), summarize(untyped)
    r = summarize(ratios(typed, untyped))
    return [
        Row(
            "7",
            "per event: transport sink → decode → typed event → on_bot_llm_text (sync no-op)",
            a.fmt(" µs", 2),
            f"unknown type → on_unhandled_message {b.fmt(' µs', 2)}",
            ratio_text(r),
            f"≤ {US_GOAL:.0f} µs",
            a.median <= US_GOAL,
        )
    ]


def profile_target() -> None:
    """What the missed-goal profile runs: 20,000 bot-llm-text messages, sink to callback."""
    from benchmarks import flood

    asyncio.run(flood.client_path_us(20, "on_bot_llm_text"))


def connect_sessions(start_url: str, sessions: int = 100) -> None:
    """``sessions`` times POST /start + connect → ready + disconnect, one after another (what
    the connect profile runs, against a testing bot in a subprocess: its CPU is not profiled)."""
    from lifecycle import PipecatClient
    from transports.websocket import WebSocketTransport

    async def sessions_in_a_row() -> None:
        for _ in range(sessions):
            client = PipecatClient(WebSocketTransport())
            await asyncio.wait_for(client.start_bot_and_connect(start_url), TIMEOUT)
            await client.disconnect()

    asyncio.run(sessions_in_a_row())


def run(quick: bool) -> list[Row]:
    """Every row of the event-path section."""
    rounds = 4 if quick else 20
    rates = asyncio.run(_loopback_rounds(rounds))
    label = "loopback bot (LoopbackBot.send_event)"
    rows = [
        _rate_row(label, rates["ours"], rates["raw"]),
        _orjson_row(label, rates["ours"], rates["raw_orjson"]),
    ]
    label = f"WS testing bot (subprocess, scripted turn of {TOKENS} tokens)"
    with BotProcess("ws", TOKENS) as bot:
        ours, base, ours_cpu, base_cpu = asyncio.run(_ws_rounds(bot.start_url, max(2, rounds // 2)))
    rows += [_rate_row(label, ours, base), _cpu_row(label, ours_cpu, base_cpu)]
    rows += per_event_rows(quick)
    rows += audio_rows(quick)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.event_path [--quick]``; the audio child is run by :func:`run`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_path")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--audio-child", choices=("ours", "raw", "ours-no-callback"))
    parser.add_argument("--start-url", default="")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.audio_child:
        result = asyncio.run(_audio_child(args.audio_child, args.start_url, args.seconds))
        print(json.dumps(result), flush=True)
        return 0
    from benchmarks._stats import table

    print(table(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
