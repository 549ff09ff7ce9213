"""The simulated caller's loop: turns per second against the testing bot and the OpenAI stand-in.

``python -m benchmarks.simulation_loop [--turns N] [--sessions N] [--concurrency C]``

One call of ``--turns`` persona turns (the stand-in answers at once, never hangs up; the
testing bot answers every send-text with no token delay): the loop's turns per second, and
the same with the persona model's time taken out (each ``ModelClient.complete`` is timed:
what is left is the bot's answer plus this project's per-turn overhead). Then ``--sessions``
simulated conversations of 4 turns, ``--concurrency`` at once, as ``load --scenario`` runs
them: pass rate and per-turn latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from lifecycle import PipecatClient
from lifecycle.testing import ModelEndpoint
from lifecycle.testing.model import ModelClient
from lifecycle.testing.simulation import SimulatedCaller, SimulationResult
from tests.support.openai_stub import OpenAIStub, StubReply, Tool
from transports.testing import Dialogue, TestingBotServer
from transports.websocket import WebSocketTransport

GREETING = "Hello, how can I help?"


class _Timed:
    """Times every ModelClient.complete (the persona model's own time, HTTP included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._original = ModelClient.complete

    def __enter__(self) -> _Timed:
        original, seconds = self._original, self.seconds

        async def complete(client: ModelClient, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(client, *args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - t0)

        ModelClient.complete = complete  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        ModelClient.complete = self._original  # type: ignore[method-assign]


async def one_call(bot: TestingBotServer, endpoint: ModelEndpoint, turns: int) -> SimulationResult:
    client = PipecatClient(WebSocketTransport(), connect_timeout=30)
    caller = SimulatedCaller(
        client,
        persona="A patient caller.",
        goal="Keep talking.",
        model=endpoint,
        max_turns=turns,
        max_model_calls=turns + 1,
        max_silence_s=30,
    )
    try:
        await client.start_bot_and_connect(bot.start_url)
        return await caller.run()
    finally:
        await client.disconnect()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def main(turns: int, sessions: int, concurrency: int) -> None:
    def persona(request: dict[str, Any]) -> StubReply:
        return StubReply(text="Tell me more about that, please.")

    with OpenAIStub(persona) as stub:
        endpoint = ModelEndpoint(stub.base_url, "stand-in")
        async with TestingBotServer(dialogue=Dialogue(greeting=GREETING)) as bot:
            with _Timed() as timed:
                t0 = time.perf_counter()
                result = await one_call(bot, endpoint, turns)
                total = time.perf_counter() - t0
            model = sum(timed.seconds)
            done = len(result.turns)
            print(f"one call: {done} turns in {total:.2f} s: {done / total:.1f} turns/s")
            print(
                f"  persona model time {model:.2f} s ({1000 * model / done:.2f} ms a turn); "
                f"without it {done / (total - model):.1f} turns/s, "
                f"{1000 * (total - model) / done:.2f} ms a turn (bot answer + our overhead)"
            )
            lat = result.latencies_ms
            print(
                f"  send -> first token: p50 {statistics.median(lat):.2f} ms, "
                f"p90 {_pct(lat, 0.9):.2f} ms, max {max(lat):.2f} ms"
            )
            stub.handler = lambda request: (
                StubReply(tool_calls=(Tool("end_call", {"success": True, "reason": "ok"}),))
                if sum(m["role"] == "assistant" for m in request["messages"]) >= 4
                else StubReply(text="Tell me more about that, please.")
            )
            await _load(bot, endpoint, sessions, concurrency)


async def _load(
    bot: TestingBotServer, endpoint: ModelEndpoint, sessions: int, concurrency: int
) -> None:
    """``load --scenario`` as the command runs it: LoadRun with the simulation hook."""
    from lifecycle.load import LoadPlan, LoadRun
    from lifecycle.testing.simulation_file import parse_simulation
    from lifecycle.testing.simulation_load import SimulationHook

    spec = parse_simulation(
        {"name": "bench/caller", "persona": "A patient caller.", "goal": "Keep talking."},
        "bench.yaml",
    )
    hook = SimulationHook([spec], lambda spec: (endpoint, None, None))
    plan = LoadPlan(start=bot.start_url, sessions=sessions, concurrency=concurrency)
    t0 = time.perf_counter()
    stats = await LoadRun(plan, WebSocketTransport, scenario=hook).run()
    total = time.perf_counter() - t0
    summary = stats.summary()
    print(
        f"load: {summary['sessions']} simulated conversations, {concurrency} at once, "
        f"{total:.2f} s; pass rate {hook.pass_rate:.2%} ({summary['ok']} ok, "
        f"{summary['failed']} failed)"
    )
    for phase in ("connect", "turn_llm_first", "turn_answered", "scenario"):
        figures = summary["latency_ms"].get(phase)
        if figures:
            print(
                f"  {phase:<15} n={figures['count']:<4} p50 {figures['p50']:.1f} ms, "
                f"p90 {figures['p90']:.1f} ms, p99 {figures['p99']:.1f} ms, "
                f"max {figures['max']:.1f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    options = parser.parse_args()
    asyncio.run(main(options.turns, options.sessions, options.concurrency))
