"""Simulation files: pipecat.evals 1.14's ``persona:`` scenarios, parsed and checked.

A simulation describes a caller instead of a script (pipecat.evals' ``simulation.py``):
``persona``, ``goal``, ``success``, ``simulator`` (the persona model: ``service``, ``model``,
``endpoint``, ``extra``, or ``factory``), ``metrics`` (``criterion`` + ``min_score``, or
``measure`` + ``min_value``/``max_value``, or ``measure: function_calls`` + ``calls``),
``judge``, ``user``, ``max_turns`` (20), ``max_duration_s`` (300), ``max_silence_s`` (30),
``runs`` (1) and this project's ``max_model_calls`` (100).

The scenario loader (:mod:`lifecycle.testing.scenario`) reads the YAML, resolves
``!include`` and merges a file's top-level defaults into each entry of ``scenarios:``, as
pipecat.evals does; it hands each merged mapping that has a ``persona:`` to
:func:`parse_simulation`. Problems raise :class:`~lifecycle.testing.scenario.ScenarioFileError`
naming the file, the line (when ``line_of`` knows it) and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_DURATION_S",
    "DEFAULT_MAX_MODEL_CALLS",
    "DEFAULT_MAX_SILENCE_S",
    "DEFAULT_MAX_TURNS",
    "MEASURES",
    "ExpectedCall",
    "Metric",
    "SimulationError",
    "SimulationSpec",
    "parse_simulation",
]

DEFAULT_MAX_TURNS: Final = 20
DEFAULT_MAX_DURATION_S: Final = 300.0
DEFAULT_MAX_SILENCE_S: Final = 30.0
DEFAULT_MAX_MODEL_CALLS: Final = 100
MEASURES: Final = ("turns", "duration", "words", "latency", "function_calls")
"""What a measured metric can measure (pipecat.evals' ``SIMULATION_MEASURES``)."""
MAX_RUNS: Final = 1000
MAX_TEXT: Final = 20_000  # characters of persona, goal, success or a criterion

_KEYS: Final = frozenset(
    {
        "name",
        "persona",
        "goal",
        "success",
        "simulator",
        "metrics",
        "judge",
        "user",
        "max_turns",
        "max_duration_s",
        "max_silence_s",
        "runs",
        "max_model_calls",
        "trigger_disconnect",
        "description",
    }
)
# Scripted-scenario keys a file's defaults may carry into its simulations (ignored there,
# as pipecat.evals ignores them).
_SCRIPT_DEFAULTS: Final = frozenset({"context", "stop_on_failure"})
_MODEL_KEYS: Final = frozenset(
    {"service", "model", "endpoint", "extra", "factory", "api_key_env", "explainer"}
)
_METRIC_KEYS: Final = frozenset(
    {"name", "criterion", "min_score", "measure", "min_value", "max_value", "calls"}
)


class SimulationError(ValueError):
    """A simulation mapping is invalid: ``file:line: key: problem``."""

    def __init__(self, path: str, line: int, key: str, problem: str) -> None:
        """Where (``path``, 1-based ``line`` or 0), which key, and what is wrong."""
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(frozen=True)
class ExpectedCall:
    """A call a ``function_calls`` metric expects: a name, and optionally an ``args`` subset."""

    name: str
    args: Mapping[str, Any] | None = None

    @property
    def signature(self) -> str:
        """``name`` or ``name(k=v, ...)`` for messages."""
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


@dataclass(frozen=True)
class Metric:
    """A judged criterion (``criterion``, ``min_score``) or a measure with bounds or calls."""

    name: str
    criterion: str | None = None
    min_score: float | None = None
    measure: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    calls: tuple[ExpectedCall, ...] | None = None


@dataclass(frozen=True)
class SimulationSpec:
    """One simulation as a file describes it (defaults as pipecat.evals 1.14)."""

    name: str
    persona: str
    goal: str
    success: str | None
    simulator: Mapping[str, Any] = field(default_factory=dict)
    judge: Mapping[str, Any] = field(default_factory=dict)
    """The ``judge.eval:`` model block (empty: none given)."""
    metrics: tuple[Metric, ...] = ()
    user_audio: bool = False
    bot_audio: bool = False
    max_turns: int = DEFAULT_MAX_TURNS
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_silence_s: float = DEFAULT_MAX_SILENCE_S
    runs: int = 1
    max_model_calls: int = DEFAULT_MAX_MODEL_CALLS
    path: str = ""
    line: int = 0


LineOf = Callable[[str], int]
"""``line_of("metrics.0.min_score")`` -> the 1-based line of that key, or 0 when unknown."""


def parse_simulation(
    data: Mapping[str, Any], path: str, *, line_of: LineOf | None = None
) -> SimulationSpec:
    """Check one merged simulation mapping (``persona:`` set) and build its spec.

    The scenario loader's hook: ``data`` is plain YAML data (includes resolved, the file's
    defaults merged in, ``name`` the full ``file/scenario`` name); ``path`` names the file in
    messages; ``line_of`` maps a dotted key (``metrics.0.min_score``) to its line.
    """
    return _Parser(path, line_of or (lambda _key: 0)).simulation(data)


class _Parser:
    def __init__(self, path: str, line_of: LineOf) -> None:
        self.path = path
        self.line_of = line_of

    def error(self, key: str, problem: str) -> SimulationError:
        return SimulationError(self.path, self.line_of(key), key, problem)

    def simulation(self, data: Mapping[str, Any]) -> SimulationSpec:
        if not isinstance(data, Mapping):
            raise self.error("", "a simulation must be a mapping")
        if "turns" in data:
            raise self.error("turns", "a scenario is scripted (turns:) or simulated (persona:)")
        for key in data:
            if not isinstance(key, str) or key not in _KEYS | _SCRIPT_DEFAULTS:
                raise self.error(str(key), "unknown key in a simulation")
        simulator = self.model_block(data.get("simulator"), "simulator")
        user_audio = self.user(data.get("user"))
        bot_audio, judge = self.judge(data.get("judge"))
        success = data.get("success")
        return SimulationSpec(
            name=self.text(data, "name"),
            persona=self.text(data, "persona"),
            goal=self.text(data, "goal"),
            success=None if success is None else self.text(data, "success"),
            simulator=simulator,
            judge=judge,
            metrics=self.metrics(data.get("metrics")),
            user_audio=user_audio,
            bot_audio=bot_audio,
            max_turns=self.positive_int(data, "max_turns", DEFAULT_MAX_TURNS, 10_000),
            max_duration_s=self.positive_number(data, "max_duration_s", DEFAULT_MAX_DURATION_S),
            max_silence_s=self.positive_number(data, "max_silence_s", DEFAULT_MAX_SILENCE_S),
            runs=self.positive_int(data, "runs", 1, MAX_RUNS),
            max_model_calls=self.positive_int(
                data, "max_model_calls", DEFAULT_MAX_MODEL_CALLS, 100_000
            ),
            path=self.path,
            line=self.line_of(""),
        )

    def text(self, data: Mapping[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "missing or not a non-empty string")
        if len(value) > MAX_TEXT:
            raise self.error(key, f"longer than {MAX_TEXT} characters")
        return value.strip()

    def positive_int(self, data: Mapping[str, Any], key: str, default: int, most: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise self.error(key, f"must be a whole number from 1 to {most}, not {value!r}")
        return value

    def positive_number(self, data: Mapping[str, Any], key: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
            raise self.error(key, f"must be a positive number of seconds, not {value!r}")
        return float(value)

    def model_block(self, block: Any, where: str) -> Mapping[str, Any]:
        if block is None:
            return {}
        if not isinstance(block, Mapping):
            raise self.error(where, "must be a mapping naming the model")
        for key, value in block.items():
            if key not in _MODEL_KEYS:
                raise self.error(f"{where}.{key}", "unknown key in a model block")
            if key in ("service", "model", "endpoint", "factory", "api_key_env") and (
                not isinstance(value, str) or not value.strip()
            ):
                raise self.error(f"{where}.{key}", "must be a non-empty string")
            if key == "extra" and value is not None and not isinstance(value, Mapping):
                raise self.error(f"{where}.{key}", "must be a mapping of request parameters")
        service = str(block.get("service", "ollama")).lower()
        if (
            "endpoint" not in block
            and "factory" not in block
            and service
            not in (
                "ollama",
                "openai",
            )
        ):
            raise self.error(
                f"{where}.service", f"unknown service {service!r} (ollama, openai, or endpoint:)"
            )
        return dict(block)

    def user(self, block: Any) -> bool:
        if block is None:
            return False
        if not isinstance(block, Mapping):
            raise self.error("user", "must be a mapping")
        modality = block.get("modality", "text")
        if modality not in ("text", "audio"):
            raise self.error("user.modality", f"must be text or audio, not {modality!r}")
        speech = block.get("speech")
        if speech is not None and not isinstance(speech, Mapping):
            raise self.error("user.speech", "must be a mapping")
        return bool(modality == "audio")

    def judge(self, block: Any) -> tuple[bool, Mapping[str, Any]]:
        if block is None:
            return False, {}
        if not isinstance(block, Mapping):
            raise self.error("judge", "must be a mapping")
        modality = block.get("modality", "text")
        if modality not in ("text", "audio"):
            raise self.error("judge.modality", f"must be text or audio, not {modality!r}")
        transcription = block.get("transcription")
        if transcription is not None and not isinstance(transcription, Mapping):
            raise self.error("judge.transcription", "must be a mapping")
        return modality == "audio", self.model_block(block.get("eval"), "judge.eval")

    def metrics(self, raw: Any) -> tuple[Metric, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise self.error("metrics", "must be a list")
        metrics: list[Metric] = []
        for index, item in enumerate(raw):
            where = f"metrics.{index}"
            if not isinstance(item, Mapping):
                raise self.error(where, "a metric must be a mapping")
            for key in item:
                if key not in _METRIC_KEYS:
                    raise self.error(f"{where}.{key}", "unknown key in a metric")
            metric = self.metric(item, where)
            if metric.name in {m.name for m in metrics}:
                raise self.error(f"{where}.name", f"metric {metric.name!r} is listed twice")
            metrics.append(metric)
        return tuple(metrics)

    def metric(self, item: Mapping[str, Any], where: str) -> Metric:
        criterion, measure = item.get("criterion"), item.get("measure")
        if (criterion is None) == (measure is None):
            raise self.error(where, "a metric is judged (criterion:) or measured (measure:)")
        name = item.get("name", measure)
        if not isinstance(name, str) or not name:
            raise self.error(f"{where}.name", "missing (a judged metric needs a name)")
        if criterion is not None:
            if not isinstance(criterion, str) or not criterion.strip():
                raise self.error(f"{where}.criterion", "must be a non-empty string")
            for key in ("min_value", "max_value", "calls"):
                if key in item:
                    raise self.error(f"{where}.{key}", "belongs to a measured metric")
            score = item.get("min_score")
            if score is not None and (
                isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
            ):
                raise self.error(f"{where}.min_score", "must be a number in 0..1")
            return Metric(name, criterion.strip(), None if score is None else float(score))
        if measure not in MEASURES:
            raise self.error(f"{where}.measure", f"must be one of {', '.join(MEASURES)}")
        if "min_score" in item:
            raise self.error(f"{where}.min_score", "a measured metric takes a range")
        if measure == "function_calls":
            if "min_value" in item or "max_value" in item:
                raise self.error(where, "function_calls compares calls:, not a range")
            return Metric(name, measure=measure, calls=self.calls(item.get("calls"), where))
        if "calls" in item:
            raise self.error(f"{where}.calls", "belongs to measure: function_calls")
        bounds: dict[str, float | None] = {}
        for key in ("min_value", "max_value"):
            value = item.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise self.error(f"{where}.{key}", "must be a number")
            bounds[key] = None if value is None else float(value)
        if bounds["min_value"] is None and bounds["max_value"] is None:
            raise self.error(where, "a measured metric needs min_value: or max_value:")
        low, high = bounds["min_value"], bounds["max_value"]
        return Metric(name, measure=measure, min_value=low, max_value=high)

    def calls(self, raw: Any, where: str) -> tuple[ExpectedCall, ...]:
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise self.error(f"{where}.calls", "must be a list of calls ([] for none)")
        calls = []
        for index, entry in enumerate(raw):
            if isinstance(entry, str) and entry:
                calls.append(ExpectedCall(entry))
            elif isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                args = entry.get("args")
                if args is not None and not isinstance(args, Mapping):
                    raise self.error(f"{where}.calls.{index}.args", "must be a mapping")
                calls.append(ExpectedCall(entry["name"], dict(args) if args else None))
            else:
                raise self.error(f"{where}.calls.{index}", "must be a name or {name:, args:}")
        return tuple(calls)
