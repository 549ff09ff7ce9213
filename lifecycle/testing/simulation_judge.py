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
from typing import TYPE_CHECKING, Any, Final, Protocol

from lifecycle.testing.simulation_file import ExpectedCall, Metric

if TYPE_CHECKING:
    from lifecycle.testing.model import ModelEndpoint

__all__ = [
    "CallableRunJudge",
    "JudgeFn",
    "ModelRunJudge",
    "RunJudge",
    "TurnVerdict",
    "Verdict",
    "conversation_text",
    "judge_goal",
    "judge_metric",
    "judged_conversation",
    "measure",
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


class RunJudge(Protocol):
    """Answers a simulation's two kinds of question with ``(verdict, reason)``."""

    async def goal(self, success: str, messages: Sequence[Mapping[str, Any]]) -> Answer:
        """The goal over the whole conversation (the bot's calls in place)."""
        ...

    async def turn(self, criterion: str, before: Sequence[Mapping[str, Any]], reply: str) -> Answer:
        """A criterion on one bot reply, the conversation before it as context."""
        ...


Answer = tuple[str, str]


class CallableRunJudge:
    """A ``judge(criterion, text)`` callable (``--judge``): the conversation as text lines."""

    def __init__(self, fn: JudgeFn) -> None:
        """Wrap ``fn`` (sync or async)."""
        self.fn = fn

    async def _ask(self, criterion: str, text: str) -> Answer:
        result = self.fn(criterion, text)
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

    async def goal(self, success: str, messages: Sequence[Mapping[str, Any]]) -> Answer:
        """``fn(success, the whole conversation as lines)``."""
        return await self._ask(success, f"The whole conversation:\n{conversation_text(messages)}")

    async def turn(self, criterion: str, before: Sequence[Mapping[str, Any]], reply: str) -> Answer:
        """``fn(criterion, the conversation before, then the reply to judge)``."""
        text = (
            f"The conversation so far:\n{conversation_text(before) or '(nothing yet)'}\n\n"
            f"The bot's reply to judge:\n{reply}"
        )
        return await self._ask(criterion, text)


def conversation_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation as text: ``Caller:`` / ``Bot:`` lines, the bot's calls in place."""
    return "\n".join(
        f"{'Caller' if e['speaker'] == 'user' else 'Bot' if e['speaker'] == 'bot' else 'Tool'}: "
        f"{e['text']}"
        for e in judged_conversation(messages)
    )


def judged_conversation(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pipecat.evals' judge state: ``{speaker: user|bot|tool, turn?, text}``, bot turns numbered.

    A call is ``name({"arg": ...})`` (and a line more when it was cancelled), as pipecat.evals'
    ``call_lines``.
    """
    entries: list[dict[str, Any]] = []
    turn = 0
    for message in messages:
        role = message.get("role")
        if role == "user":
            entries.append({"speaker": "user", "text": message["content"]})
        elif role == "assistant":
            turn += 1
            entries.append({"speaker": "bot", "turn": turn, "text": message["content"]})
        elif role == "tool_call":
            args = message.get("arguments") or {}
            shown = json.dumps(args, ensure_ascii=False) if args else ""
            entries.append({"speaker": "tool", "text": f"{message['name']}({shown})"})
            if message.get("cancelled"):
                entries.append({"speaker": "tool", "text": f"{message['name']} was cancelled"})
    return entries


async def judge_goal(
    judge: RunJudge, success: str, messages: Sequence[Mapping[str, Any]]
) -> Verdict:
    """The ``success`` criterion over the whole conversation."""
    verdict, reason = await judge.goal(success, messages)
    return Verdict("success", "goal", verdict == "yes", reason or verdict)


async def judge_metric(
    judge: RunJudge, metric: Metric, messages: Sequence[Mapping[str, Any]]
) -> Verdict:
    """A criterion on every bot turn, each with the conversation before it as context."""
    assert metric.criterion is not None
    criterion = metric.criterion
    bot_turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    limit = asyncio.Semaphore(JUDGE_CONCURRENCY)

    async def one(turn: int, index: int) -> TurnVerdict:
        async with limit:
            verdict, reason = await judge.turn(
                criterion, messages[:index], str(messages[index]["content"])
            )
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


# pipecat.evals' questions (judge.py), asked in this project's judge format (judge.py's
# ModelJudge: instructions with the allowed answers, the state as JSON, a JSON verdict).
GOAL_QUESTION: Final = (
    "Does the conversation as a whole achieve this goal? A `tool` entry is a function the bot "
    "called at that point; a completed call is stronger evidence of an action than the bot "
    "saying it did it."
)
TURN_QUESTION: Final = (
    "`latest_bot_reply` is the bot's reply following `conversation`. How does it stand "
    "against this criterion?"
)
GOAL_ANSWERS: Final = {
    "yes": "The conversation achieves the goal.",
    "no": "It does not.",
}
TURN_ANSWERS: Final = {
    "yes": "The reply does what the criterion asks.",
    "no": "The criterion applies to this reply, and the reply does not do what it asks.",
    "not_applicable": (
        "The criterion only asks something of replies in a particular situation (it says "
        "'when', 'if', or similar), and that situation does not arise in this reply."
    ),
}


class ModelRunJudge:
    """A judge model behind an OpenAI-compatible endpoint, one call per question.

    The state is pipecat.evals': ``conversation`` (``{speaker, turn?, text}`` entries, the bot's
    calls as ``tool`` entries) and, for a turn, ``latest_bot_reply``. ``max_calls`` caps its
    calls (:class:`~lifecycle.testing.model.ModelCallLimitError` past it).
    """

    def __init__(self, endpoint: ModelEndpoint, *, timeout: float, max_calls: int) -> None:
        """One judge model client for one run."""
        from lifecycle.testing.judge import ModelJudge

        self._judge = ModelJudge(endpoint, allow_continue=False, timeout=timeout)
        self._judge._client.max_calls = max_calls  # the run's cap, shared with the persona

    @property
    def calls(self) -> int:
        """How many calls it made."""
        return self._judge._client.calls

    async def _ask(
        self, question: str, criterion: str, answers: Mapping[str, str], state: Any
    ) -> Answer:
        from lifecycle.testing.model import ModelCallLimitError

        if self.calls >= (self._judge._client.max_calls or 0):
            raise ModelCallLimitError(
                f"model call limit reached ({self._judge._client.max_calls}) while judging"
            )
        verdict = await self._judge._ask(question, criterion, answers, state)
        return verdict.verdict, verdict.reason

    async def goal(self, success: str, messages: Sequence[Mapping[str, Any]]) -> Answer:
        """The goal over the whole conversation: yes or no."""
        state = {"conversation": judged_conversation(messages)}
        return await self._ask(GOAL_QUESTION, success, GOAL_ANSWERS, state)

    async def turn(self, criterion: str, before: Sequence[Mapping[str, Any]], reply: str) -> Answer:
        """A criterion on one reply: yes, no, or not applicable."""
        state = {"conversation": judged_conversation(before), "latest_bot_reply": reply}
        return await self._ask(TURN_QUESTION, criterion, TURN_ANSWERS, state)

    async def aclose(self) -> None:
        """Close its HTTP connections."""
        await self._judge.aclose()
