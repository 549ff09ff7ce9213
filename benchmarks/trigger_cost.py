"""Trigger cost: µs per transition of `SessionLifecycle` against a dict FSM and bare `transitions`.

Every variant walks the same full session through the table, seven transitions a cycle:
start_bot, bot_started, connect, transport_connected, bot_ready, disconnect, disconnected.
A sample is one batch of ``CYCLES`` cycles, timed with ``perf_counter_ns`` and divided by
the number of transitions; the variants' batches are interleaved, their order rotated.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from transitions import Machine
from transitions.extensions.asyncio import AsyncMachine

from benchmarks._stats import Row, ratio_text, ratios, summarize
from lifecycle import TRANSITIONS, SessionLifecycle, State, TransitionEvent
from lifecycle.logs import get_logger
from lifecycle.table import SESSION_START_STATES

CYCLE = (
    "start_bot",
    "bot_started",
    "connect",
    "transport_connected",
    "bot_ready",
    "disconnect",
    "disconnected",
)
CYCLES = 10
PER_BATCH = CYCLES * len(CYCLE)
GOAL_US = 30.0

Batch = Callable[[], Awaitable[int]]
"""Runs one batch; returns the elapsed nanoseconds."""


class _Discard(io.StringIO):
    """A text sink that drops what is written (the line is still rendered in full)."""

    def write(self, text: str) -> int:
        return len(text)


def json_logger(level: int = logging.INFO) -> Any:
    """A production-like structlog logger: level, ISO time, JSON, to a discarding sink.

    Built with ``wrap_logger`` (the global structlog configuration is never touched).
    """
    return structlog.wrap_logger(
        structlog.PrintLogger(_Discard()),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )


def logging_hook(logger: Any) -> Callable[[TransitionEvent], None]:
    """The hook the client installs, reduced to its log line (redacted, via SafeLogger)."""
    log = get_logger(logger)

    def hook(event: TransitionEvent) -> None:
        log.info(
            "transition",
            session_id=event.session_id,
            trigger=event.trigger,
            source=event.source.value,
            dest=event.dest.value,
            reason=event.reason,
        )

    return hook


class DictFSM:
    """The same table as a plain ``{(trigger, state): dest}`` dict, optionally with hooks."""

    def __init__(self) -> None:
        self.table = {
            (row["trigger"], source): row["dest"] for row in TRANSITIONS for source in row["source"]
        }
        self.state = State.IDLE
        self.session_id = 0
        self.hooks: list[Callable[[TransitionEvent], object]] = []

    def fire(self, trigger: str) -> bool:
        source = self.state
        dest = self.table.get((trigger, source))
        if dest is None:
            return False
        self.state = dest
        if self.hooks:
            if source in SESSION_START_STATES:
                self.session_id += 1
            event = TransitionEvent(source, dest, trigger, self.session_id, time.monotonic())
            for hook in self.hooks:
                hook(event)
        return True


class _Model:
    state: Any


def _table_rows() -> list[dict[str, Any]]:
    return [dict(row) for row in TRANSITIONS]


def variants(with_async_machine: bool = True) -> dict[str, Batch]:
    """Every variant as a batch runner, each with its own machine."""
    out: dict[str, Batch] = {}
    user_calls = [0]

    def user_callback(_event: TransitionEvent) -> None:
        user_calls[0] += 1

    def sync_batch(fire: Callable[[str], object]) -> Batch:
        async def run() -> int:
            t0 = time.perf_counter_ns()
            for _ in range(CYCLES):
                for trigger in CYCLE:
                    fire(trigger)
            return time.perf_counter_ns() - t0

        return run

    bare = SessionLifecycle(logger=json_logger())
    out["SessionLifecycle, no hooks"] = sync_batch(bare.fire)

    hooked = SessionLifecycle(logger=json_logger())
    hooked.add_transition_hook(logging_hook(json_logger()))
    hooked.add_transition_hook(user_callback)
    out["SessionLifecycle + log hook (JSON rendered) + callback"] = sync_batch(hooked.fire)

    quiet = SessionLifecycle(logger=json_logger())
    quiet.add_transition_hook(logging_hook(json_logger(logging.WARNING)))
    quiet.add_transition_hook(user_callback)
    out["SessionLifecycle + log hook (info filtered) + callback"] = sync_batch(quiet.fire)

    plain = DictFSM()
    out["dict FSM, no hooks"] = sync_batch(plain.fire)

    plain_hooked = DictFSM()
    plain_hooked.hooks = [logging_hook(json_logger()), user_callback]
    out["dict FSM + same hooks (JSON rendered)"] = sync_batch(plain_hooked.fire)

    model = _Model()
    Machine(
        model=model,
        states=list(State),
        transitions=_table_rows(),
        initial=State.IDLE,
        auto_transitions=False,
    )
    out["transitions Machine (sync), bare"] = sync_batch(lambda t: model.trigger(t))  # type: ignore[attr-defined]

    if with_async_machine:
        amodel = _Model()
        AsyncMachine(
            model=amodel,
            states=list(State),
            transitions=_table_rows(),
            initial=State.IDLE,
            auto_transitions=False,
        )

        async def async_batch() -> int:
            trigger = amodel.trigger  # type: ignore[attr-defined]
            t0 = time.perf_counter_ns()
            for _ in range(CYCLES):
                for name in CYCLE:
                    await trigger(name)
            return time.perf_counter_ns() - t0

        out["transitions AsyncMachine, bare"] = async_batch
    return out


async def measure(rounds: int) -> dict[str, list[float]]:
    """µs per transition of every variant, ``rounds`` interleaved batches each."""
    runners = variants()
    names = list(runners)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        await runners[name]()
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            ns = await runners[name]()
            samples[name].append(ns / 1000 / PER_BATCH)
    return samples


def rows(samples: dict[str, list[float]]) -> list[Row]:
    """Table rows: each SessionLifecycle variant against the dict FSM and AsyncMachine."""
    dict_fsm = samples["dict FSM, no hooks"]
    amachine = samples["transitions AsyncMachine, bare"]
    out: list[Row] = []
    for name, values in samples.items():
        s = summarize(values)
        ours = s.fmt(" µs", 2)
        if name.startswith("SessionLifecycle"):
            hooked = "hook" in name
            r_dict = summarize(ratios(values, dict_fsm))
            r_async = summarize(ratios(values, amachine))
            out.append(
                Row(
                    "1",
                    f"trigger: {name}",
                    ours,
                    f"dict FSM {summarize(dict_fsm).median:.2f} µs; "
                    f"AsyncMachine {summarize(amachine).median:.2f} µs (spreads: rows below)",
                    f"vs dict {ratio_text(r_dict)}; vs AsyncMachine {ratio_text(r_async)}",
                    f"≤ {GOAL_US:.0f} µs" if hooked else "",
                    (s.median <= GOAL_US) if hooked else None,
                )
            )
        else:
            out.append(Row("1", f"trigger (reference): {name}", ours, "", "", "", None))
    return out


def run(quick: bool = False) -> list[Row]:
    """Run the trigger-cost section; ``quick``: a few rounds only."""
    return rows(asyncio.run(measure(20 if quick else 600)))


def profile_target(cycles: int = 3000) -> None:
    """The hooked SessionLifecycle, for the profiler."""
    lc = SessionLifecycle(logger=json_logger())
    lc.add_transition_hook(logging_hook(json_logger()))
    lc.add_transition_hook(lambda _e: None)
    for _ in range(cycles):
        for trigger in CYCLE:
            lc.fire(trigger)
