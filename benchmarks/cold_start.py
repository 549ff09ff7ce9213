"""Cold start: the first session of a fresh process, `PipecatClient` vs a raw client.

What a command-line tool, a CI job or a test harness feels: a new interpreter imports its
stack, POSTs ``/start``, connects and waits for ``bot-ready``, does some requests, exits.
Each side runs in its own fresh process (``python -m benchmarks.cold_start --child ...``),
A B / B A interleaved, against the same real Pipecat 1.14 bot. Both sides open their HTTP
connection per session (a raw script posting once does the same).

The child prints one JSON line: ``import_ms`` (its stack's imports), ``first_ms`` (POST
/start until bot-ready, the first session), ``rtt_us`` (median echo round trip of the
requests that follow) and ``process_ms`` is measured by the parent (spawn until exit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._stats import Row, ratio_text, ratios, summarize

GOAL = 1.10
REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 60.0


# ------------------------------------------------------------------ the child process


async def _ours(transport: str, base_url: str, requests: int, t_import: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    from lifecycle import APIRequest, PipecatClient

    if transport == "ws":
        from transports.websocket import WebSocketTransport

        client = PipecatClient(WebSocketTransport())
        start = APIRequest(f"{base_url}/start")
    else:
        from transports.small_webrtc import SmallWebRTCTransport

        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]))
        start = APIRequest(f"{base_url}/api/start")
    import_ms = (time.perf_counter() - t0) * 1000 + t_import
    t1 = time.perf_counter()
    await client.start_bot_and_connect(start)
    first_ms = (time.perf_counter() - t1) * 1000
    rtts = []
    for i in range(requests):
        t = time.perf_counter()
        await client.send_client_request("echo", {"i": i})
        rtts.append((time.perf_counter() - t) * 1e6)
    await client.disconnect()
    return {"import_ms": import_ms, "first_ms": first_ms, "rtt_us": statistics.median(rtts)}


async def _raw(transport: str, base_url: str, requests: int, t_import: float) -> dict[str, Any]:
    # The hand-written script: its imports and its HTTP client are set up before the clock
    # (as ours builds its client and transport there); one connection per session.
    t0 = time.perf_counter()
    import httpx

    http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
    if transport == "ws":
        from benchmarks.raw_ws_client import RawWSClient

        client: Any = RawWSClient()
    else:
        import aiortc  # noqa: F401  (what the raw WebRTC script imports up front)

        from benchmarks.raw_webrtc_client import RawWebRTCClient

        client = RawWebRTCClient(http)
    import_ms = (time.perf_counter() - t0) * 1000 + t_import
    t1 = time.perf_counter()
    if transport == "ws":
        answer = (await http.post(f"{base_url}/start", json={})).json()
        await client.connect(answer["wsUrl"])
    else:
        answer = (await http.post(f"{base_url}/api/start", json={})).json()
        await client.connect(f"{base_url}/api/sessions/{answer['sessionId']}/api/offer")
    first_ms = (time.perf_counter() - t1) * 1000
    rtts = []
    for i in range(requests):
        t = time.perf_counter()
        await client.request("echo", {"i": i})
        rtts.append((time.perf_counter() - t) * 1e6)
    await client.close()
    await http.aclose()
    return {"import_ms": import_ms, "first_ms": first_ms, "rtt_us": statistics.median(rtts)}


def child(side: str, transport: str, base_url: str, requests: int) -> None:
    """Run one first session and print its figures as a JSON line."""
    t_import = 0.0
    if transport == "webrtc":
        t0 = time.perf_counter()
        from benchmarks.raw_webrtc_client import loopback_ice

        loopback_ice()  # this host has only loopback; both sides get the same patch
        t_import = (time.perf_counter() - t0) * 1000  # imports aioice: part of both stacks
    run = _ours if side == "ours" else _raw
    result = asyncio.run(run(transport, base_url, requests, t_import))
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ the parent


def _spawn(side: str, transport: str, base_url: str, requests: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.cold_start", "--child", side]
    command += ["--transport", transport, "--base-url", base_url, "--requests", str(requests)]
    t0 = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    process_ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_ms"] = process_ms
    return result


def measure(transport: str, base_url: str, processes: int, requests: int) -> dict[str, Any]:
    """``processes`` fresh processes per side, interleaved; lists of each figure per side."""
    figures: dict[str, dict[str, list[float]]] = {"ours": {}, "raw": {}}
    for i in range(processes):
        order = ("ours", "raw") if i % 2 == 0 else ("raw", "ours")
        for side in order:
            for key, value in _spawn(side, transport, base_url, requests).items():
                figures[side].setdefault(key, []).append(float(value))
    return figures


def _ratio_row(measure_name: str, ours: list[float], raw: list[float], unit: str) -> Row:
    a, b = summarize(ours), summarize(raw)
    r = summarize(ratios(ours, raw))
    return Row(
        "5",
        measure_name,
        a.fmt(unit, 2),
        b.fmt(unit, 2),
        ratio_text(r),
        f"≤ x{GOAL:.2f}",
        r.median <= GOAL,
    )


def _figure_row(measure_name: str, ours: list[float], raw: list[float], unit: str) -> Row:
    a, b = summarize(ours), summarize(raw)
    r = summarize(ratios(ours, raw))
    return Row("5", measure_name, a.fmt(unit, 1), b.fmt(unit, 1), ratio_text(r), "", None)


def run(base_url: str, quick: bool) -> list[Row]:
    """Rows for the cold first session on both transports."""
    processes = 4 if quick else 12
    requests = 50 if quick else 200
    rows = []
    for transport, label in (("ws", "WebSocket"), ("webrtc", "SmallWebRTC")):
        fig = measure(transport, base_url, processes, requests)
        ours, raw = fig["ours"], fig["raw"]
        rows.append(
            _ratio_row(
                f"cold first session, {label}: POST /start → bot-ready (fresh process)",
                ours["first_ms"],
                raw["first_ms"],
                " ms",
            )
        )
        rows.append(
            _ratio_row(
                f"cold process, {label}: echo round trip after bot-ready (median of {requests})",
                ours["rtt_us"],
                raw["rtt_us"],
                " µs",
            )
        )
        rows.append(
            _figure_row(
                f"cold process, {label}: imports (ours: lifecycle + transport; raw: httpx + "
                "websockets/aiortc)",
                ours["import_ms"],
                raw["import_ms"],
                " ms",
            )
        )
        rows.append(
            _figure_row(
                f"cold process, {label}: whole process (start → imports → bot-ready → "
                f"{requests} requests → exit)",
                ours["process_ms"],
                raw["process_ms"],
                " ms",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Child entry point (the parent is :func:`run`, called by ``python -m benchmarks``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start")
    parser.add_argument("--child", choices=("ours", "raw"), required=True)
    parser.add_argument("--transport", choices=("ws", "webrtc"), default="ws")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    child(args.child, args.transport, args.base_url, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
