"""What a load run measured: per-phase latency histograms (HDR) and errors by class.

Latencies go into one HdrHistogram per phase (1 µs to 1 hour, 3 significant digits), so
percentiles cost the same whether a run had ten sessions or a million. ``hdrhistogram`` is
part of the ``load`` extra and is imported when the first histogram is made.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

PHASES: Final = ("start", "connect", "request", "speak", "first_output", "disconnect")
"""The phases every session may go through, in order (``connect`` is connect→ready)."""

TURN_PHASES: Final = {
    "turn_llm_first": "llm_first_ms",
    "turn_tts_first": "tts_first_ms",
    "turn_audio_first": "audio_first_ms",
    "turn_bot_speaking": "bot_speaking_ms",
    "turn_answered": "answered_ms",
    "barge_in_interrupted": "barge_in_to_interrupted_ms",
    "barge_in_bot_stopped": "barge_in_to_bot_stopped_ms",
}
"""Phase name -> the :class:`~lifecycle.turns.Turn` figure recorded under it (ms from the
end of the user's input; the ``barge_in_*`` ones from the start of input that talked over
the bot), one value per turn that has it."""

PHASE_TITLES: Final = {
    "start": "start",
    "connect": "connect→ready",
    "request": "request",
    "speak": "speak",
    "first_output": "first bot output",
    "disconnect": "disconnect",
    "hold": "hold",
    "scenario": "scenario",
    "turn_llm_first": "turn: first LLM text",
    "turn_tts_first": "turn: first TTS text",
    "turn_audio_first": "turn: first bot audio",
    "turn_bot_speaking": "turn: bot speaking",
    "turn_answered": "turn: answered",
    "barge_in_interrupted": "barge-in → bot-interrupted",
    "barge_in_bot_stopped": "barge-in → bot stopped speaking",
}
"""How the summary table names each phase (others are shown as named)."""

PERCENTILES: Final = (50.0, 90.0, 99.0)
FAILURE_MESSAGE_LIMIT: Final = 600
"""Characters kept of a failure's first message."""
_FAILURE_KINDS_LIMIT: Final = 200
"""(phase, error class) pairs whose first message is kept; later new pairs are only counted."""
TALLY_US: Final = 10
"""The resolution of :meth:`PhaseStats.record` (µs)."""
_LOWEST_US: Final = 1
_HIGHEST_US: Final = 3_600_000_000
_DIGITS: Final = 3


def _new_histogram() -> Any:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@dataclass
class PhaseStats:
    """One phase: a latency histogram of its successes and its errors by class."""

    histogram: Any = field(default_factory=_new_histogram)
    errors: Counter[str] = field(default_factory=Counter)
    _tallied: Counter[int] = field(default_factory=Counter, repr=False)

    def record(self, ms: float) -> None:
        """One success that took ``ms`` milliseconds (kept to :data:`TALLY_US` µs).

        Recording in the HDR histogram costs ~10 µs in Python, which thousands of audio
        frames a second (and every phase of hundreds of sessions) would add to the very
        load they measure: values are counted in a dict and folded into the histogram
        when read.
        """
        self._tallied[round(ms * (1000.0 / TALLY_US))] += 1

    def _fold(self) -> None:
        if self._tallied:
            tallied, self._tallied = self._tallied, Counter()
            for step, count in tallied.items():
                us = min(max(step * TALLY_US, _LOWEST_US), _HIGHEST_US)
                self.histogram.record_value(us, count)

    def add(self, other: PhaseStats) -> None:
        """Add ``other``'s values and errors to this one's (e.g. to merge runs)."""
        self._fold()
        other._fold()
        self.histogram.add(other.histogram)
        self.errors.update(other.errors)

    @property
    def count(self) -> int:
        """How many successes were recorded."""
        self._fold()
        total: int = self.histogram.get_total_count()
        return total

    def percentile_ms(self, percentile: float) -> float:
        """The latency below which ``percentile`` percent of the successes fell (ms)."""
        self._fold()
        return round(float(self.histogram.get_value_at_percentile(percentile)) / 1000.0, 3)

    def latency_ms(self) -> dict[str, float | int]:
        """``{"count", "p50", "p90", "p99", "max"}`` in milliseconds."""
        summary: dict[str, float | int] = {"count": self.count}
        for percentile in PERCENTILES:
            summary[f"p{percentile:g}"] = self.percentile_ms(percentile)
        summary["max"] = round(float(self.histogram.get_max_value()) / 1000.0, 3)
        return summary


@dataclass
class LoadStats:
    """Counts and per-phase statistics of one load run (updated while it runs)."""

    requested: int = 0
    started: int = 0
    ready: int = 0
    ok: int = 0
    failed: int = 0
    interrupted: int = 0
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    first_messages: dict[tuple[str, str], str] = field(default_factory=dict)
    """(phase, error class) -> the first such error's message (redacted, bounded)."""
    audio_send_lag: PhaseStats = field(default_factory=PhaseStats)
    """How late each speech frame went out against its real-time schedule (ms)."""
    client_cpu_s: float = 0.0
    """CPU seconds (user + system, every thread) this process spent running the load."""

    @property
    def live(self) -> int:
        """Sessions started and not finished yet."""
        return self.started - self.ok - self.failed - self.interrupted

    def phase(self, name: str) -> PhaseStats:
        """The statistics of phase ``name``, made on first use."""
        stats = self.phases.get(name)
        if stats is None:
            stats = self.phases[name] = PhaseStats()
        return stats

    def record(self, phase: str, ms: float, error: BaseException | None = None) -> None:
        """One phase outcome: a latency, or an error counted by its class name."""
        if error is None:
            self.phase(phase).record(ms)
            return
        kind = type(error).__name__
        self.phase(phase).errors[kind] += 1
        key = (phase, kind)
        if key not in self.first_messages and len(self.first_messages) < _FAILURE_KINDS_LIMIT:
            self.first_messages[key] = _message(error)

    def failures(self) -> list[dict[str, Any]]:
        """Locust's Failures table: per phase and error class the count and the first
        message, most frequent first (``{"phase", "error", "count", "message"}``)."""
        rows = [
            {
                "phase": name,
                "error": kind,
                "count": count,
                "message": self.first_messages.get((name, kind), ""),
            }
            for name in self.ordered_phases()
            for kind, count in self.phases[name].errors.items()
        ]
        return sorted(rows, key=lambda row: -row["count"])

    def errors(self) -> Counter[str]:
        """Errors by class over every phase."""
        total: Counter[str] = Counter()
        for stats in self.phases.values():
            total.update(stats.errors)
        return total

    def ordered_phases(self) -> list[str]:
        """Phase names seen: the standard ones in session order, the turn figures, the rest."""
        order = (*PHASES, *TURN_PHASES)
        known = [name for name in order if name in self.phases]
        return known + sorted(name for name in self.phases if name not in order)

    def summary(self) -> dict[str, Any]:
        """The run as one JSON-ready mapping (the ``--json`` output).

        ``audio_send_lag_ms`` is there when speech was sent; ``client_cpu_s`` always.
        """
        names = self.ordered_phases()
        speech: dict[str, Any] = {}
        if self.audio_send_lag.count:
            speech["audio_send_lag_ms"] = self.audio_send_lag.latency_ms()
        return {
            "sessions": self.started,
            "requested": self.requested,
            "ok": self.ok,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "errors": dict(self.errors()),
            "errors_by_phase": {
                name: dict(self.phases[name].errors) for name in names if self.phases[name].errors
            },
            "latency_ms": {
                name: self.phases[name].latency_ms() for name in names if self.phases[name].count
            },
            "failures": self.failures(),
            **speech,
            "client_cpu_s": round(self.client_cpu_s, 3),
        }


def _message(error: BaseException) -> str:
    """An error's message for the failures table: redacted, one line, bounded."""
    from lifecycle.redact import redact_text

    text = " ".join(str(error).split()) or type(error).__name__
    text = redact_text(text)
    if len(text) > FAILURE_MESSAGE_LIMIT:
        text = text[: FAILURE_MESSAGE_LIMIT - 1] + "…"
    return text
