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
