"""Judging a simulated conversation: its ``success``, each metric on every bot reply, measures.

As pipecat.evals' ``simulation_judge.py`` and ``simulation_driver.py``: the goal is one
question over the whole conversation with the bot's function calls in place; a ``criterion``
is asked of every bot turn, in the light of the conversation before it, and its score is the
share of turns that passed (``yes`` or ``not_applicable``), failing the run below
``min_score``; a ``measure`` is computed from the run and bounded by ``min_value`` /
``max_value`` (``function_calls``: the listed calls, all made, no other). Every verdict keeps
its reason.

A judge is a callable ``(criterion, text) -> bool | (verdict, reason)`` (or an awaitable of
one) with verdict ``yes``/``no``/``not_applicable`` or a bool, as ``--judge`` takes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lifecycle.testing.model import ModelClient
from lifecycle.testing.simulation_file import ExpectedCall, Metric

__all__ = [
    "JudgeFn",
    "TurnVerdict",
    "Verdict",
    "conversation_text",
    "judge_goal",
    "judge_metric",
    "measure",
    "model_judge",
]

JudgeFn = Callable[[str, str], Any]
"""``judge(criterion, text)`` -> ``bool`` | ``(verdict, reason)``, or an awaitable of one."""
JUDGE_CONCURRENCY: Final = 4


@dataclass(frozen=True)
class TurnVerdict:
    """A criterion's verdict on one bot turn (1-based)."""

    turn: int
    verdict: str
    reason: str

    @property
    def passed(self) -> bool:
        """``yes`` and ``not_applicable`` pass; ``no`` and ``none`` (no answer) do not."""
        return self.verdict in ("yes", "not_applicable")


@dataclass(frozen=True)
class Verdict:
    """The outcome of the goal (``kind="goal"``) or of one metric."""

    name: str
    kind: str
    """``goal``, ``criterion`` or ``measure``."""
    passed: bool
    reason: str
    score: float | None = None
    min_score: float | None = None
    value: float | None = None
    turns: tuple[TurnVerdict, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "reason": self.reason,
        }
        for key in ("score", "min_score", "value"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.turns:
            data["turns"] = [
                {"turn": t.turn, "verdict": t.verdict, "reason": t.reason} for t in self.turns
            ]
        return data


async def ask(judge: JudgeFn, criterion: str, text: str) -> tuple[str, str]:
    """One judge call, normalised to ``(verdict, reason)``; a bad answer is verdict ``none``."""
    result = judge(criterion, text)
    if inspect.isawaitable(result):
        result = await result
    reason = ""
    if isinstance(result, tuple) and result:
        result, reason = result[0], str(result[1]) if len(result) > 1 else ""
    if isinstance(result, bool):
        return ("yes" if result else "no"), reason
    if isinstance(result, str) and result.strip().lower() in ("yes", "no", "not_applicable"):
        return result.strip().lower(), reason
    return "none", f"the judge gave no verdict ({type(result).__name__})"


def conversation_text(messages: Sequence[Mapping[str, Any]], *, upto: int | None = None) -> str:
    """The conversation as the judge reads it: ``Caller:`` / ``Bot:`` lines, calls in place."""
    lines = []
    for message in messages[:upto]:
        role = message.get("role")
        if role == "user":
            lines.append(f"Caller: {message['content']}")
        elif role == "assistant":
            lines.append(f"Bot: {message['content']}")
        elif role == "tool_call":
            args = json.dumps(message.get("arguments") or {}, ensure_ascii=False)
            lines.append(f"[the bot called {message['name']}({args})]")
            if message.get("cancelled"):
                lines.append(f"[{message['name']} was cancelled]")
    return "\n".join(lines)


async def judge_goal(
    judge: JudgeFn, success: str, messages: Sequence[Mapping[str, Any]]
) -> Verdict:
    """The ``success`` criterion over the whole conversation."""
    text = conversation_text(messages)
    verdict, reason = await ask(judge, success, f"The whole conversation:\n{text}")
    return Verdict("success", "goal", verdict == "yes", reason or verdict)


async def judge_metric(
    judge: JudgeFn, metric: Metric, messages: Sequence[Mapping[str, Any]]
) -> Verdict:
    """A criterion on every bot turn, each with the conversation before it as context."""
    assert metric.criterion is not None
    criterion = metric.criterion
    bot_turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    limit = asyncio.Semaphore(JUDGE_CONCURRENCY)

    async def one(turn: int, index: int) -> TurnVerdict:
        before = conversation_text(messages, upto=index)
        text = (
            f"The conversation so far:\n{before or '(nothing yet)'}\n\n"
            f"The bot's reply to judge:\n{messages[index]['content']}"
        )
        async with limit:
            verdict, reason = await ask(judge, criterion, text)
        return TurnVerdict(turn, verdict, reason)

    turns = tuple(await asyncio.gather(*(one(t, i) for t, i in enumerate(bot_turns, 1))))
    if not turns:
        no_turn = "no bot turn to judge"
        return Verdict(metric.name, "criterion", True, no_turn, None, metric.min_score)
    score = sum(t.passed for t in turns) / len(turns)
    failed = [t for t in turns if not t.passed]
    reason = (
        f"all {len(turns)} turn(s)"
        if not failed
        else "; ".join(f"turn {t.turn}: {t.reason or t.verdict}" for t in failed)
    )
    passed = metric.min_score is None or score >= metric.min_score
    return Verdict(metric.name, "criterion", passed, reason, score, metric.min_score, None, turns)


@dataclass(frozen=True)
class RunFacts:
    """What a measure reads from a run."""

    turns: int
    duration_s: float
    bot_replies: Sequence[str]
    latencies_s: Sequence[float]
    calls: Sequence[tuple[str, Mapping[str, Any]]]
    audio: bool = False


def measure(metric: Metric, facts: RunFacts) -> Verdict:
    """A measured metric (no judge): its value against its range, or the calls against the list."""
    if metric.measure == "function_calls":
        return _calls_verdict(metric, facts.calls)
    value, described = _value(metric.measure or "", facts)
    low, high = metric.min_value, metric.max_value
    if low is not None and high is not None:
        bound = f"between {low:g} and {high:g}"
    elif high is not None:
        bound = f"at most {high:g}"
    else:
        bound = f"at least {low:g}"
    if value is None:
        return Verdict(metric.name, "measure", True, f"{described}, {bound}")
    inside = (low is None or value >= low) and (high is None or value <= high)
    score = 1.0 if inside else 0.0
    return Verdict(metric.name, "measure", inside, f"{described}, {bound}", score, None, value)


def _value(name: str, facts: RunFacts) -> tuple[float | None, str]:
    if name == "turns":
        return float(facts.turns), f"{facts.turns} caller turn(s)"
    if name == "duration":
        return facts.duration_s, f"{facts.duration_s:.1f} s"
    if name == "words":
        longest = max((len(r.split()) for r in facts.bot_replies), default=None)
        if longest is None:
            return None, "no reply to measure"
        return float(longest), f"longest reply {longest} words"
    slowest = max(facts.latencies_s, default=None)
    if slowest is None:
        return None, "no reply to time"
    timed = "to the bot starting to speak" if facts.audio else "to the first token"
    return slowest, f"slowest reply {slowest:.2f} s {timed}"


def _matches(spec: ExpectedCall, name: str, args: Mapping[str, Any]) -> bool:
    return spec.name == name and all(args.get(k) == v for k, v in (spec.args or {}).items())


def _calls_verdict(metric: Metric, made: Sequence[tuple[str, Mapping[str, Any]]]) -> Verdict:
    expected = metric.calls or ()
    missing = [s for s in expected if not any(_matches(s, n, a) for n, a in made)]
    unlisted = [n for n, a in made if not any(_matches(s, n, a) for s in expected)]
    described = ", ".join(n for n, _ in made) or "no calls"
    wanted = ", ".join(s.signature for s in expected) or "none"
    passed = not missing and not unlisted
    reason = f"{described}, expected {wanted}"
    if missing:
        reason += f"; missing {', '.join(s.signature for s in missing)}"
    if unlisted:
        reason += f"; not listed {', '.join(unlisted)}"
    score = 1.0 if passed else 0.0
    return Verdict(metric.name, "measure", passed, reason, score, None, float(len(made)))


VERDICT_TOOL: Final = "give_verdict"
_JUDGE_SYSTEM: Final = (
    "You judge a phone conversation between a caller and a voice bot against one criterion. "
    "Decide only from the text you are given. Answer by calling give_verdict: verdict 'yes' "
    "when the criterion is met, 'no' when it is not, 'not_applicable' when the criterion "
    "covers a situation that does not arise here; reason: one sentence citing the evidence."
)
_VERDICT_SCHEMA: Final = {
    "type": "function",
    "function": {
        "name": VERDICT_TOOL,
        "description": "Give the verdict on the criterion.",
        "parameters": {
            "type": "object",
            "properties": {
                "verdict": {"type": "string", "enum": ["yes", "no", "not_applicable"]},
                "reason": {"type": "string"},
            },
            "required": ["verdict", "reason"],
        },
    },
}


def model_judge(client: ModelClient) -> JudgeFn:
    """A judge asking a chat-completions model (one call per question, a tool-call verdict).

    A model that answers in text instead is read by its first word (yes/no/not_applicable).
    """

    async def judge(criterion: str, text: str) -> tuple[str, str]:
        messages = [
            {"role": "system", "content": _JUDGE_SYSTEM},
            {"role": "user", "content": f"Criterion: {criterion}\n\n{text}"},
        ]
        reply = await client.complete(messages, tools=[_VERDICT_SCHEMA])
        for call in reply.tool_calls:
            verdict = call.arguments.get("verdict")
            if isinstance(verdict, str):
                return verdict.strip().lower(), str(call.arguments.get("reason", ""))[:500]
        words = reply.text.strip().lower().split(maxsplit=1)
        first = words[0].strip(".,:;!") if words else ""
        return first, reply.text.strip()[:500]

    return judge
