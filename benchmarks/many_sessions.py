"""Many sessions from one process: concurrent sessions against the testing bot.

The testing bots run in several subprocesses (:class:`~benchmarks.bots.BotFarm`; sessions
are assigned round-robin), so neither their CPU nor one bot's event loop or listen backlog is
what is measured; this process runs N sessions: each ``start_bot_and_connect`` (POST /start
included) until bot-ready, all wait until every session is READY, then one ``echo`` request
each, then all disconnect. Two ways to reach N: all N started at once (a connect storm), and
N started at a steady rate (``RAMP`` per second) and held, which is what "N concurrent
sessions" means for a load run. Reported per N: connect→ready p50/p99, CPU seconds of this
process (user+sys), RSS per live session (peak RSS with all READY minus RSS before, over N),
and the largest N whose p99 stays within 2x of the single-session p99.

Also the client CPU of one connect (POST /start → bot-ready) against a raw httpx +
websockets client doing the same (:mod:`benchmarks.raw_ws_client`), N at once, interleaved.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any, Protocol

from benchmarks._stats import Row, percentile, ratio_text, ratios, summarize
from benchmarks.bots import BotFarm

RUN_TIMEOUT = 120.0
BOT_PROCESSES = 4
RAMP = {"ws": 100.0, "webrtc": 10.0}
"""Sessions started per second in the ramped runs."""
WITHIN_GOAL = 200
CONNECT_CPU_GOAL = 1.20


@dataclass(frozen=True)
class Result:
    """One run of ``sessions`` concurrent sessions."""

    sessions: int
    p50_ms: float
    p99_ms: float
    cpu_s: float
    rss_per_session_kib: float
    failed: int


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Side(Protocol):
    """One way to run a session: connect until bot-ready, one echo request, close."""

    async def connect(self, index: int) -> Any: ...
    async def echo(self, session: Any) -> None: ...
    async def close(self, session: Any) -> None: ...


class _Ours:
    def __init__(self, kind: str, farm: BotFarm) -> None:
        self.kind, self.farm = kind, farm

    async def connect(self, index: int) -> Any:
        from lifecycle import PipecatClient
        from lifecycle.transport import Transport

        transport: Transport
        if self.kind == "ws":
            from transports.websocket import WebSocketTransport

            transport = WebSocketTransport()
        else:
            from transports.small_webrtc import SmallWebRTCTransport

            transport = SmallWebRTCTransport(ice_servers=[])
        client = PipecatClient(transport)
        try:
            await client.start_bot_and_connect(self.farm.url(index))
        except BaseException:
            await client.disconnect()
            raise
        return client

    async def echo(self, session: Any) -> None:
        await session.send_client_request("echo", {"n": 1})

    async def close(self, session: Any) -> None:
        await session.disconnect()


class _Raw:
    """The raw httpx + websockets client (:mod:`raw_ws_client`)."""

    def __init__(self, farm: BotFarm, http: Any) -> None:
        self.farm, self.http = farm, http

    async def connect(self, index: int) -> Any:
        from benchmarks.raw_ws_client import RawWSClient

        client = RawWSClient()
        try:
            answer = await self.http.post(self.farm.url(index), json={"transport": "websocket"})
            await client.connect(answer.json()["wsUrl"])
        except BaseException:
            await client.close()
            raise
        return client

    async def echo(self, session: Any) -> None:
        await session.request("echo", {"n": 1})

    async def close(self, session: Any) -> None:
        await session.close()


async def _run(kind: str, farm: BotFarm, sessions: int, rate: float | None = None) -> Result:
    """``sessions`` sessions of ``kind`` (``ws``, ``webrtc``, or ``raw``: the raw WS client)."""
    if kind != "raw":
        return await _sessions(_Ours(kind, farm), sessions, rate)
    import httpx

    # One connection per start, as start_bot opens (and closes) its own.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as http:
        return await _sessions(_Raw(farm, http), sessions, rate)


async def _sessions(side: _Side, sessions: int, rate: float | None) -> Result:
    latencies: list[float] = []
    all_ready = asyncio.Event()
    ready_count = failed = peak_rss = 0
    rss0 = _rss_kib()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    async def one(index: int) -> None:
        nonlocal ready_count, failed, peak_rss
        if rate is not None:
            await asyncio.sleep(index / rate)
        t0 = time.perf_counter()
        session = None
        try:
            session = await side.connect(index)
            latencies.append((time.perf_counter() - t0) * 1000)
        except Exception:
            failed += 1
        ready_count += 1
        if ready_count == sessions:
            peak_rss = _rss_kib()
            all_ready.set()
        await all_ready.wait()
        if session is None:
            return
        try:
            await side.echo(session)
        except Exception:
            failed += 1
        finally:
            await side.close(session)

    async with asyncio.timeout(RUN_TIMEOUT):
        await asyncio.gather(*(one(i) for i in range(sessions)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return Result(
        sessions=sessions,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        cpu_s=(cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
        rss_per_session_kib=max(0, peak_rss - rss0) / sessions,
        failed=failed,
    )


def _single(results: list[Result]) -> Result:
    """Many one-session runs as one result: p50/p99 over their latencies."""
    lat = sorted(r.p50_ms for r in results)
    return Result(
        1,
        percentile(lat, 50),
        percentile(lat, 99),
        sum(r.cpu_s for r in results) / len(results),
        results[-1].rss_per_session_kib,
        sum(r.failed for r in results),
    )


Runs = dict[str, tuple[list[Result], list[Result]]]
"""Per side (``ours``, and ``raw`` for WebSocket): (started at once, ramped) results."""


def measure(
    kind: str,
    counts: list[int],
    ramped: list[int] | None = None,
    repeats_single: int = 20,
    processes: int = BOT_PROCESSES,
) -> Runs:
    """``counts`` started at once, ``ramped`` started at ``RAMP[kind]``/s; each run once.

    Over WebSocket the raw client runs the same counts, interleaved with ours (A B / B A), so
    what the machine and the bots allow is measured beside what the library allows. Both
    lists of a side start with its single-session case (``repeats_single`` runs, for its p99).
    """
    sides = {"ours": kind, "raw": "raw"} if kind == "ws" else {"ours": kind}
    burst: dict[str, list[Result]] = {side: [] for side in sides}
    ramp: dict[str, list[Result]] = {side: [] for side in sides}
    with BotFarm(kind, processes) as farm:
        if kind == "webrtc":
            from benchmarks.raw_webrtc_client import loopback_ice

            loopback_ice()

        for how in sides.values():
            asyncio.run(_run(how, farm, 1))  # warm-up: imports and caches of a first session
        singles: dict[str, list[Result]] = {side: [] for side in sides}
        for step in range(repeats_single):
            order = list(sides) if step % 2 == 0 else list(sides)[::-1]
            for side in order:
                singles[side].append(asyncio.run(_run(sides[side], farm, 1)))
        for side in sides:
            burst[side].append(_single(singles[side]))
            ramp[side].append(burst[side][0])
        for step, n in enumerate(n for n in counts if n > 1):
            for side in list(sides) if step % 2 == 0 else list(sides)[::-1]:
                burst[side].append(asyncio.run(_run(sides[side], farm, n)))
        for step, n in enumerate(n for n in ramped or [] if n > 1):
            for side in list(sides) if step % 2 == 0 else list(sides)[::-1]:
                ramp[side].append(asyncio.run(_run(sides[side], farm, n, rate=RAMP[kind])))
    return {side: (burst[side], ramp[side]) for side in sides}


def _within(results: list[Result]) -> int:
    """The largest count whose p99 is within 2x the single-session p99, with no failure."""
    single = results[0].p99_ms
    return max(r.sessions for r in results if r.p99_ms <= 2 * single and not r.failed)


def _figures(r: Result) -> str:
    return (
        f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms; CPU {r.cpu_s:.2f} s; "
        f"{r.rss_per_session_kib:.0f} KiB/session; failed {r.failed}"
    )


def rows(
    kind: str, results: list[Result], rate: float | None = None, raw: list[Result] | None = None
) -> list[Row]:
    """Table rows: one per count (``raw``: the raw client's, as the baseline), plus the
    largest count within 2x the single p99."""
    label = "WebSocket" if kind == "ws" else "SmallWebRTC"
    how = f"started {rate:g}/s and held" if rate else "started at once"
    out = []
    for index, r in enumerate(results):
        if r.sessions == 1 and rate:
            continue  # the same single-session row as the burst's
        plural = "s" if r.sessions > 1 else ""
        out.append(
            Row(
                "6",
                f"{r.sessions} concurrent {label} session{plural} ({how}; testing bots in "
                f"{BOT_PROCESSES} processes): connect→ready",
                _figures(r),
                _figures(raw[index]) if raw else "",
                "",
            )
        )
    goal = kind == "ws" and rate is not None
    base = ""
    if raw:
        base = f"raw client: {_within(raw)} (its single-session p99 {raw[0].p99_ms:.1f} ms)"
    out.append(
        Row(
            "6",
            f"largest {label} count {how} within 2x the single-session p99 "
            f"({results[0].p99_ms:.1f} ms)",
            str(_within(results)),
            base,
            "",
            f"≥ {WITHIN_GOAL}" if goal else "",
            _within(results) >= WITHIN_GOAL if goal else None,
        )
    )
    return out


# ------------------------------------------------------------------ CPU of one connect


async def _connect_cpu_ours(farm: BotFarm, sessions: int) -> float:
    from lifecycle import PipecatClient
    from transports.websocket import WebSocketTransport

    clients = [PipecatClient(WebSocketTransport()) for _ in range(sessions)]
    cpu = time.process_time()
    await asyncio.gather(*(c.start_bot_and_connect(farm.url(i)) for i, c in enumerate(clients)))
    used = time.process_time() - cpu
    await asyncio.gather(*(c.disconnect() for c in clients))
    return used / sessions


async def _connect_cpu_raw(farm: BotFarm, sessions: int) -> float:
    import httpx

    from benchmarks.raw_ws_client import RawWSClient

    # One connection per start, as start_bot opens (and closes) its own.
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http:
        clients = [RawWSClient() for _ in range(sessions)]

        async def one(index: int, client: RawWSClient) -> Any:
            answer = (await http.post(farm.url(index), json={"transport": "websocket"})).json()
            return await client.connect(answer["wsUrl"])

        cpu = time.process_time()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
        used = time.process_time() - cpu
        await asyncio.gather(*(c.close() for c in clients))
    return used / sessions


def connect_cpu(sessions: int, rounds: int) -> tuple[list[float], list[float]]:
    """CPU seconds per connect (``sessions`` at once), ours and raw, interleaved rounds."""
    ours: list[float] = []
    raw: list[float] = []
    with BotFarm("ws", BOT_PROCESSES) as farm:
        asyncio.run(_connect_cpu_ours(farm, 2))  # warm-up of both stacks
        asyncio.run(_connect_cpu_raw(farm, 2))
        for i in range(rounds):
            order = (_connect_cpu_ours, _connect_cpu_raw)
            for side in order if i % 2 == 0 else order[::-1]:
                gc.collect()  # neither side pays for the other's garbage
                value = asyncio.run(side(farm, sessions))
                (ours if side is _connect_cpu_ours else raw).append(value)
    return ours, raw


def connect_cpu_row(sessions: int, ours: list[float], raw: list[float]) -> Row:
    """Client CPU per WebSocket connect, ours vs the raw client."""
    paired = summarize(ratios(ours, raw))
    o, b = summarize([v * 1000 for v in ours]), summarize([v * 1000 for v in raw])
    return Row(
        "6",
        f"client CPU per WebSocket connect, POST /start → bot-ready ({sessions} at once, "
        "process_time / sessions)",
        o.fmt(" ms", 2),
        b.fmt(" ms", 2),
        ratio_text(paired),
        f"≤ x{CONNECT_CPU_GOAL:.2f}",
        paired.median <= CONNECT_CPU_GOAL,
    )


def run(quick: bool) -> list[Row]:
    """Rows for WebSocket (up to 200; ramped up to 400) and SmallWebRTC (up to 20)."""
    ws_counts = [1, 10, 50] if quick else [1, 10, 25, 50, 100, 200]
    ws_ramp = [20, 50] if quick else [50, 100, 200, 400]
    rtc_counts = [1, 5] if quick else [1, 5, 10, 20]
    rtc_ramp = [5] if quick else [5, 10, 20]
    ws = measure("ws", ws_counts, ws_ramp, repeats_single=5 if quick else 20)
    rtc_burst, rtc_ramped = measure("webrtc", rtc_counts, rtc_ramp, 3 if quick else 20)["ours"]
    sessions, rounds = (10, 2) if quick else (100, 12)
    ours, raw = connect_cpu(sessions, rounds)
    return [
        *rows("ws", ws["ours"][0], raw=ws["raw"][0]),
        *rows("ws", ws["ours"][1], RAMP["ws"], raw=ws["raw"][1]),
        connect_cpu_row(sessions, ours, raw),
        *rows("webrtc", rtc_burst),
        *rows("webrtc", rtc_ramped, RAMP["webrtc"]),
    ]


if __name__ == "__main__":
    from benchmarks._stats import table

    print(table(run("--quick" in sys.argv)))
