"""Summaries and table rows shared by the benchmark sections.

Every comparison runs its two sides interleaved (A B A B ..., the order flipped every other
round) so machine noise lands on both; ratios are taken per interleaved pair, then summarised.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Summary:
    """Median, p99 and spread (quartiles, min, max) of a list of samples."""

    n: int
    median: float
    p99: float
    q1: float
    q3: float
    lo: float
    hi: float

    def fmt(self, unit: str = "", digits: int = 1) -> str:
        """``median [q1-q3] p99 x`` with ``digits`` decimals."""
        d = digits
        spread = f"[{self.q1:.{d}f}-{self.q3:.{d}f}]"
        return f"{self.median:.{d}f}{unit} {spread} p99 {self.p99:.{d}f}{unit}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def summarize(values: Sequence[float]) -> Summary:
    """Summarise ``values`` (at least one)."""
    return Summary(
        n=len(values),
        median=statistics.median(values),
        p99=percentile(values, 99),
        q1=percentile(values, 25),
        q3=percentile(values, 75),
        lo=min(values),
        hi=max(values),
    )


def ratios(ours: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-pair ratios ours/base of two interleaved sample lists."""
    return [a / b for a, b in zip(ours, base, strict=True) if b > 0]


@dataclass
class Row:
    """One line of the results table."""

    section: str
    measure: str
    ours: str
    base: str
    ratio: str
    goal: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``met`` / ``MISSED`` / ``-`` (no goal)."""
        if self.met is None:
            return "-"
        return "met" if self.met else "MISSED"


def ratio_text(r: Summary, p99_ratio: float | None = None) -> str:
    """``x1.03 [1.01-1.05]`` (paired ratios' median and IQR), plus the p99 ratio when given."""
    text = f"x{r.median:.2f} [{r.q1:.2f}-{r.q3:.2f}]"
    if p99_ratio is not None:
        text += f", p99 x{p99_ratio:.2f}"
    return text


def table(rows: Sequence[Row]) -> str:
    """The results as one Markdown table."""
    head = (
        "| # | measure | pipecat-lifecycle: median [IQR] p99 | baseline: median [IQR] p99 "
        "| ratio (paired median [IQR]) | goal | verdict |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row.section} | {row.measure} | {row.ours} | {row.base} | {row.ratio} "
            f"| {row.goal} | {row.verdict} |"
        )
    return "\n".join(lines)
