"""Many sessions from one process: concurrent sessions against the testing bot.

The testing bot runs in a subprocess (so its CPU is not ours); this process runs N sessions at
once: each ``start_bot_and_connect`` (POST /start included) until bot-ready, all wait until
every session is READY, then one ``echo`` request each, then all disconnect. Reported per N:
connect→ready p50/p99, CPU seconds of this process (user+sys), RSS per live session (peak RSS
with all READY minus RSS before, over N), and the largest N whose p99 stays within 2x of the
single-session p99. This is the baseline ``pipecat-lifecycle load`` scales out from.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._stats import Row, percentile

REPO = Path(__file__).resolve().parent.parent
BOT_READY_TIMEOUT = 30.0
RUN_TIMEOUT = 120.0

# The bot subprocess: prints its start URL, then serves until stdin closes.
_BOT = """
import asyncio, sys
kind = sys.argv[1]
if kind == "webrtc":
    import aioice.ice
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
    from transports.testing_webrtc import TestingWebRTCBotServer as Server
else:
    from transports.testing import TestingBotServer as Server

async def main():
    async with Server() as server:
        print(server.start_url, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


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


async def _run(kind: str, start_url: str, sessions: int) -> Result:
    from lifecycle import PipecatClient

    if kind == "ws":
        from transports.websocket import WebSocketTransport

        def make() -> PipecatClient:
            return PipecatClient(WebSocketTransport())

    else:
        from transports.small_webrtc import SmallWebRTCTransport

        def make() -> PipecatClient:
            return PipecatClient(SmallWebRTCTransport(ice_servers=[]))

    clients = [make() for _ in range(sessions)]
    latencies: list[float] = []
    all_ready = asyncio.Event()
    ready_count = 0
    failed = 0
    peak_rss = 0
    rss0 = _rss_kib()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    async def one(client: PipecatClient) -> None:
        nonlocal ready_count, failed, peak_rss
        t0 = time.perf_counter()
        try:
            await client.start_bot_and_connect(start_url)
            latencies.append((time.perf_counter() - t0) * 1000)
        except Exception:
            failed += 1
        ready_count += 1
        if ready_count == sessions:
            peak_rss = _rss_kib()
            all_ready.set()
        await all_ready.wait()
        try:
            if client.state.value == "ready":
                await client.send_client_request("echo", {"n": 1})
        except Exception:
            failed += 1
        finally:
            await client.disconnect()

    async with asyncio.timeout(RUN_TIMEOUT):
        await asyncio.gather(*(one(c) for c in clients))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return Result(
        sessions=sessions,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        cpu_s=cpu,
        rss_per_session_kib=max(0, peak_rss - rss0) / sessions,
        failed=failed,
    )


def measure(kind: str, counts: list[int], repeats_single: int = 20) -> list[Result]:
    """Run each count once (the single-session case ``repeats_single`` times, for its p99)."""
    bot = subprocess.Popen(
        [sys.executable, "-c", _BOT, kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert bot.stdout is not None
        start_url = bot.stdout.readline().strip()
        if not start_url:
            raise RuntimeError("testing bot subprocess did not start")
        if kind == "webrtc":
            import aioice.ice

            def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
                return ["127.0.0.1"] if use_ipv4 else []

            aioice.ice.get_host_addresses = host_addresses
        asyncio.run(_run(kind, start_url, 1))  # warm-up: imports and caches of a first session
        results = []
        for count in counts:
            if count == 1:
                singles = [asyncio.run(_run(kind, start_url, 1)) for _ in range(repeats_single)]
                lat = sorted(r.p50_ms for r in singles)
                results.append(
                    Result(
                        1,
                        percentile(lat, 50),
                        percentile(lat, 99),
                        sum(r.cpu_s for r in singles) / len(singles),
                        singles[-1].rss_per_session_kib,
                        sum(r.failed for r in singles),
                    )
                )
            else:
                results.append(asyncio.run(_run(kind, start_url, count)))
        return results
    finally:
        if bot.stdin is not None:
            bot.stdin.close()
        try:
            bot.wait(10)
        except subprocess.TimeoutExpired:
            bot.kill()


def rows(kind: str, results: list[Result]) -> list[Row]:
    """Table rows: one per count, plus the largest count within 2x the single p99."""
    label = "WebSocket" if kind == "ws" else "SmallWebRTC"
    single = results[0].p99_ms
    out = []
    within = 1
    for r in results:
        if r.p99_ms <= 2 * single and r.failed == 0:
            within = max(within, r.sessions)
        out.append(
            Row(
                "6",
                f"{r.sessions} concurrent {label} session{'s' if r.sessions > 1 else ''} "
                "(testing bot): connect→ready",
                f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms; CPU {r.cpu_s:.2f} s; "
                f"{r.rss_per_session_kib:.0f} KiB/session; failed {r.failed}",
                "",
                "",
                "",
                None,
            )
        )
    out.append(
        Row(
            "6",
            f"largest {label} count within 2x the single-session p99 ({single:.1f} ms)",
            str(within),
            "",
            "",
            "",
            None,
        )
    )
    return out


def run(quick: bool) -> list[Row]:
    """Rows for WebSocket (up to 200) and SmallWebRTC (up to 20)."""
    ws_counts = [1, 10, 50] if quick else [1, 10, 25, 50, 100, 200]
    rtc_counts = [1, 5] if quick else [1, 5, 10, 20]
    return rows("ws", measure("ws", ws_counts)) + rows("webrtc", measure("webrtc", rtc_counts))


if __name__ == "__main__":
    from benchmarks._stats import table

    print(table(run("--quick" in sys.argv)))
