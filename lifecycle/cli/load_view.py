"""What ``load`` shows: live progress on a terminal (rich) and the final table per phase."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from lifecycle.load.stats import PHASE_TITLES, LoadStats

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live


def progress_line(stats: LoadStats) -> str:
    """One line of live counts and the current connect→ready p50/p99."""
    line = (
        f"started {stats.started}/{stats.requested} ready {stats.ready} live {stats.live} "
        f"ok {stats.ok} failed {stats.failed}"
    )
    connect = stats.phases.get("connect")
    if connect is not None and connect.count:
        p50, p99 = connect.percentile_ms(50), connect.percentile_ms(99)
        line += f" | connect→ready p50 {p50:.1f} p99 {p99:.1f} ms"
    return line


class LiveProgress:
    """Redraws :func:`progress_line` a few times a second, only when stdout is a terminal."""

    def __init__(self, stats: LoadStats) -> None:
        self._stats = stats
        self._live: Live | None = None

    @staticmethod
    def wanted() -> bool:
        """Live progress shows only on a terminal (never when piped or with --json)."""
        return sys.stdout.isatty()

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(
            get_renderable=self._render, refresh_per_second=4, transient=True, redirect_stderr=False
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> RenderableType:
        from rich.text import Text

        return Text(progress_line(self._stats))


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(errors.items())) or "-"


def print_table(stats: LoadStats, title: str, console: Console | None = None) -> None:
    """The final table: per phase the count, errors by class and p50/p90/p99/max (ms)."""
    from rich.console import Console
    from rich.table import Table

    console = console if console is not None else Console(soft_wrap=False)
    table = Table(title=title, title_justify="left")
    table.add_column("phase")
    table.add_column("count", justify="right")
    table.add_column("errors")
    for column in ("p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    rows = [(PHASE_TITLES.get(name, name), stats.phases[name]) for name in stats.ordered_phases()]
    if stats.audio_send_lag.count:
        rows.append(("audio send lag (per frame)", stats.audio_send_lag))
    for title, phase in rows:
        cells: list[Any] = ["-", "-", "-", "-"]
        if phase.count:
            latency = phase.latency_ms()
            cells = [f"{latency[key]:.1f}" for key in ("p50", "p90", "p99", "max")]
        table.add_row(title, str(phase.count), _errors_text(dict(phase.errors)), *cells)
    console.print(table)
    failures = stats.failures()
    if failures:
        print_failures(failures, console)
    errors = _errors_text(dict(stats.errors()))
    console.print(
        f"sessions {stats.started}/{stats.requested}: ok {stats.ok}, failed {stats.failed}, "
        f"interrupted {stats.interrupted}; errors: {errors}; client CPU {stats.client_cpu_s:.2f} s",
        highlight=False,
    )


def print_failures(failures: list[dict[str, Any]], console: Console) -> None:
    """Locust's Failures table: occurrences, phase, error class and the first message."""
    from rich.table import Table

    table = Table(title="failures (first message of each)", title_justify="left")
    table.add_column("count", justify="right")
    table.add_column("phase")
    table.add_column("error")
    table.add_column("first message", overflow="fold")
    for row in failures:
        table.add_row(
            str(row["count"]),
            PHASE_TITLES.get(row["phase"], row["phase"]),
            row["error"],
            row["message"],
        )
    console.print(table, highlight=False)
