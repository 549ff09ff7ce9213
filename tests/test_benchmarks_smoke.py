"""The benchmark code runs (quick trigger-cost and footprint parts); no timing is asserted."""

from __future__ import annotations

from benchmarks import _stats, footprint, trigger_cost


def test_trigger_cost_quick_runs_every_variant() -> None:
    rows = trigger_cost.rows(_run_trigger_rounds())
    names = " ".join(row.measure for row in rows)
    assert "SessionLifecycle + log hook" in names
    assert "AsyncMachine" in names
    assert "|" in _stats.table(rows)


def _run_trigger_rounds() -> dict[str, list[float]]:
    import asyncio

    return asyncio.run(trigger_cost.measure(2))


def test_trigger_variants_walk_the_whole_table() -> None:
    # Every variant must really transition: the cycle returns each machine to DISCONNECTED.
    from lifecycle import SessionLifecycle, State

    lc = SessionLifecycle(logger=trigger_cost.json_logger())
    for trigger in trigger_cost.CYCLE:
        assert lc.fire(trigger), trigger
    assert lc.state is State.DISCONNECTED
    fsm = trigger_cost.DictFSM()
    for trigger in trigger_cost.CYCLE:
        assert fsm.fire(trigger), trigger
    assert fsm.state is State.DISCONNECTED


def test_footprint_quick_parts() -> None:
    assert footprint.idle_clients(20) > 0
    live, raw = footprint.live_sessions(20)
    assert live > 0 and raw > 0
    footprint.check_no_aiortc()
    ours, base = footprint.import_time(1)
    assert len(ours) == len(base) == 1


def test_summary_statistics() -> None:
    s = _stats.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.median == 3.0 and s.lo == 1.0 and s.hi == 100.0
    assert s.q1 == 2.0 and s.q3 == 4.0
    assert _stats.ratios([2.0, 3.0], [1.0, 3.0]) == [2.0, 1.0]


def test_event_path_quick_parts() -> None:
    import asyncio

    from benchmarks import event_path
    from benchmarks.bots import BotProcess

    rates = asyncio.run(event_path._loopback_rounds(2))
    assert sorted(rates) == ["ours", "raw", "raw_orjson"]
    assert all(len(side) == 2 for side in rates.values())
    assert event_path._rate_row("loopback", rates["ours"], rates["raw"]).met is not None
    assert event_path._orjson_row("loopback", rates["ours"], rates["raw_orjson"]).met is None
    with BotProcess("ws", 50) as bot:
        rates, base, cpu, base_cpu = asyncio.run(event_path._ws_rounds(bot.start_url, 2))
    assert len(rates) == len(base) == len(cpu) == len(base_cpu) == 2
    assert event_path._cpu_row("ws", cpu, base_cpu).met is None


def test_flood_figures_quick() -> None:
    import asyncio

    from benchmarks import flood

    assert asyncio.run(flood.client_path_us(1, "on_bot_llm_text")) > 0
    assert asyncio.run(flood.bus_us(1, stream=True)) > 0
    case = asyncio.run(flood.flood_case(2000, 0.001, seconds=0.2, drain_timeout=0.2))
    assert case["disconnect_s"] < 5


def test_many_sessions_quick() -> None:
    from benchmarks import many_sessions

    runs = many_sessions.measure("ws", [1, 3], [3], repeats_single=2, processes=2)
    assert set(runs) == {"ours", "raw"}  # the raw client runs the same counts beside ours
    for burst, ramp in runs.values():
        assert [r.failed for r in burst] == [0, 0] and [r.failed for r in ramp] == [0, 0]
    (burst, ramp), (raw_burst, raw_ramp) = runs["ours"], runs["raw"]
    assert len(many_sessions.rows("ws", burst, raw=raw_burst)) == 3
    largest = many_sessions.rows("ws", ramp, many_sessions.RAMP["ws"], raw=raw_ramp)[-1]
    assert largest.met is not None  # the ramped WebSocket count has the goal
    assert largest.base.startswith("raw client: ")
    ours, raw = many_sessions.connect_cpu(2, 2)
    assert len(ours) == len(raw) == 2
    assert many_sessions.connect_cpu_row(2, ours, raw).met is not None


def test_talking_quick_both_transports() -> None:
    from benchmarks import talking

    ours, raw, swept = talking.measure("ws", 2, 2, sweep=(3,), speech_s=0.2, processes=2)
    assert [s.failed for s in (*ours, *raw)] == [0, 0, 0, 0]
    assert all(s.lag_p99_ms >= 0 and s.cpu_s > 0 for s in (*ours, *raw))
    rows = talking.rows("ws", 2, ours, raw, swept)
    assert [row.met is None for row in rows] == [False, False, True]
    per_frame = talking.frame_cpu(1, 20)
    assert all(len(values) == 1 and values[0] > 0 for values in per_frame.values())
    assert talking.frame_cpu_row(per_frame).met is None
    ours, raw, _ = talking.measure("webrtc", 1, 1, speech_s=0.2, processes=1)
    assert [s.failed for s in (*ours, *raw)] == [0, 0]
    assert talking.rows("webrtc", 1, ours, raw, [])[0].met is not None


def test_cold_start_child_against_the_testing_bot() -> None:
    import asyncio

    from benchmarks import cold_start
    from transports.testing import TestingBotServer

    async def serve_and_measure() -> dict[str, dict[str, list[float]]]:
        async with TestingBotServer() as server:
            return await asyncio.to_thread(cold_start.measure, "ws", server.base_url, 1, 3)

    figures = asyncio.run(serve_and_measure())
    for side in ("ours", "raw"):
        assert set(figures[side]) == {"import_ms", "first_ms", "rtt_us", "process_ms"}
