"""Judges for ``eval:`` criteria: pipecat.evals' verdicts, over any OpenAI-compatible endpoint.

A judge keeps the conversation as it happens (the user's turns, the bot's reply segments,
its tool calls) and answers a criterion about the bot's latest reply with a
:class:`Verdict`: ``yes``, ``no`` (always with a reason), or ``continue`` (the bot is
still working toward its answer: the runner waits for more of the reply and asks again;
``allow_continue: false`` turns it off), as pipecat.evals' judge does (its ``judge.py``).
A function call is judged yes or no on its name and arguments.

Where the judge comes from, first match wins:

1. ``--judge MODULE:CALLABLE``: ``judge(criterion, text)`` returning a bool, a verdict
   string, or ``(verdict, reason)``, or an awaitable of one (:class:`CallableJudge`);
2. ``--judge-url URL --judge-model NAME``: that endpoint, for every file;
3. the file's ``judge.eval:`` block: ``endpoint:`` / ``service: openai|ollama`` (see
   :func:`lifecycle.testing.model.endpoint_from_block`), or ``factory: module.callable``,
   imported at run time as pipecat.evals does; a factory that returns a judge callable
   works, one that returns a Pipecat classifier or service needs pipecat.evals.

:func:`judge_source` decides this at validation (no import, no network);
:meth:`JudgeSource.open` builds the judge for one scenario run. A judge that cannot be
reached or run raises :class:`JudgeUnavailableError` (the command exits 3); keys never
appear in any message.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lifecycle.testing.model import ModelEndpoint
    from lifecycle.testing.scenario_model import ScriptedScenario

__all__ = [
    "CallableJudge",
    "JudgeFn",
    "JudgeSource",
    "JudgeUnavailableError",
    "ModelJudge",
    "ScenarioJudge",
    "Verdict",
    "judge_from_factory",
    "judge_source",
    "verdict_of",
]

JudgeFn = Callable[[str, str], Any]
"""``judge(criterion, text)`` -> bool, ``yes|no|continue|not_applicable``, or
``(verdict, reason)``; or an awaitable of one."""

VERDICTS: Final = ("yes", "no", "continue", "not_applicable")
MAX_REASON: Final = 500
_REPLY_QUESTION: Final = (
    "Does `latest_bot_reply`, the bot's most recent reply, following `conversation`, satisfy "
    "this criterion?"
)
_CALL_QUESTION: Final = (
    "Does the bot's function `call`, judged by its name and arguments, satisfy this "
    "criterion? `conversation` is context only."
)
_OUTCOMES: Final = {
    "yes": "The bot has given its answer, and the answer satisfies the criterion.",
    "no": (
        "The bot has given its answer, and the answer does not satisfy the criterion. A "
        "reply that waits for the user instead of giving what the criterion asks for is a no."
    ),
    "continue": (
        "The bot is still working toward its answer: it only greets, says it is checking or "
        "looking something up and will report back, or the reply is an obviously "
        "incomplete fragment."
    ),
}


class JudgeUnavailableError(Exception):
    """The judge cannot be reached or run (the message says which, and the way out)."""


@dataclass(frozen=True)
class Verdict:
    """One answer: ``verdict`` (``yes``/``no``/``continue``/``not_applicable``), ``reason``."""

    verdict: str
    reason: str = ""

    @property
    def passed(self) -> bool:
        """A ``yes``, or a criterion that does not apply."""
        return self.verdict in ("yes", "not_applicable")


def verdict_of(result: Any) -> Verdict:
    """A judge callable's answer as a :class:`Verdict` (bools, strings, pairs)."""
    reason = ""
    if isinstance(result, tuple) and result:
        result, reason = result[0], str(result[1]) if len(result) > 1 else ""
    if isinstance(result, Verdict):
        return result
    verdict: str | None = None
    if isinstance(result, bool):
        verdict = "yes" if result else "no"
    elif isinstance(result, str) and result.strip().lower().replace(" ", "_") in VERDICTS:
        verdict = result.strip().lower().replace(" ", "_")
    if verdict is None:
        raise JudgeUnavailableError(f"the judge answered {str(result)[:80]!r}, not a verdict")
    reason = " ".join(reason.split())[:MAX_REASON]
    if verdict == "no" and not reason:
        reason = "(the judge gave no reason)"
    return Verdict(verdict, reason)


@runtime_checkable
class ScenarioJudge(Protocol):
    """What the scripted runner asks of a judge (one per scenario run)."""

    def add_user_message(self, text: str | None) -> None:
        """A user turn, so a later reply is judged in context."""

    def add_assistant_message(self, text: str | None) -> None:
        """A segment of the bot's current reply."""

    def add_tool_call(self, text: str | None) -> None:
        """A function call the bot made, on one line."""

    async def evaluate(self, criterion: str) -> Verdict:
        """Whether the bot's latest reply meets ``criterion``."""

    async def evaluate_call(
        self, name: str, args: Mapping[str, Any] | None, criterion: str
    ) -> Verdict:
        """Whether a function call meets ``criterion`` (yes or no)."""

    async def aclose(self) -> None:
        """Release what the judge holds."""


class _Transcript:
    """The conversation a judge sees: user turns, bot segments, tool calls."""

    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    def add_user_message(self, text: str | None) -> None:
        """A user turn, so a later reply is judged in context."""
        if text and text.strip():
            self.entries.append({"role": "user", "content": text})

    def add_assistant_message(self, text: str | None) -> None:
        """A segment of the bot's current reply."""
        if text and text.strip():
            self.entries.append({"role": "assistant", "content": text})

    def add_tool_call(self, text: str | None) -> None:
        """A function call the bot made, on one line."""
        if text and text.strip():
            self.entries.append({"role": "tool", "content": text})

    def split(self) -> tuple[list[dict[str, str]], str]:
        """The conversation before the bot's latest reply, and that reply (its segments)."""
        talk = [e for e in self.entries if e["role"] != "tool"]
        latest: list[str] = []
        while talk and talk[-1]["role"] == "assistant":
            latest.insert(0, talk.pop()["content"])
        return talk, " ".join(latest)


class CallableJudge(_Transcript):
    """``--judge MODULE:CALLABLE``: ``fn(criterion, text)`` on the latest reply or the call."""

    def __init__(self, fn: JudgeFn) -> None:
        """Wrap ``fn`` (sync or async)."""
        super().__init__()
        self.fn = fn

    async def _ask(self, criterion: str, text: str) -> Verdict:
        try:
            result = self.fn(criterion, text)
            if inspect.isawaitable(result):
                result = await result
        except JudgeUnavailableError:
            raise
        except Exception as exc:  # the user's judge failed: it cannot be run
            raise JudgeUnavailableError(f"the judge raised {type(exc).__name__}: {exc}") from None
        return verdict_of(result)

    async def evaluate(self, criterion: str) -> Verdict:
        """``fn(criterion, latest reply)``."""
        return await self._ask(criterion, self.split()[1])

    async def evaluate_call(
        self, name: str, args: Mapping[str, Any] | None, criterion: str
    ) -> Verdict:
        """``fn(criterion, "name(arguments as JSON)")``."""
        return await self._ask(criterion, f"{name}({json.dumps(dict(args or {}))})")

    async def aclose(self) -> None:
        """Nothing to release."""


class ModelJudge(_Transcript):
    """A judge LLM behind an OpenAI-compatible chat-completions endpoint.

    Each question is one call: the instructions (question, criterion, the allowed answers)
    and the conversation as JSON; the answer is a JSON object ``{"verdict", "reason"}``.
    Verdicts are cached by question and conversation, as pipecat.evals does.
    """

    def __init__(
        self, endpoint: ModelEndpoint, *, allow_continue: bool = True, timeout: float = 60.0
    ) -> None:
        """Judge with ``endpoint``; ``allow_continue=False``: a reply is yes or no only."""
        from lifecycle.testing.model import ModelClient

        super().__init__()
        self.endpoint = endpoint
        self.allow_continue = allow_continue
        self._client = ModelClient(endpoint, timeout=timeout)
        self._cache: dict[str, Verdict] = {}

    async def evaluate(self, criterion: str) -> Verdict:
        """Whether the latest reply meets ``criterion``: yes, no, or continue."""
        conversation, latest = self.split()
        options = dict(_OUTCOMES)
        if not self.allow_continue:
            del options["continue"]
        state = {"conversation": conversation, "latest_bot_reply": latest}
        return await self._ask(_REPLY_QUESTION, criterion, options, state)

    async def evaluate_call(
        self, name: str, args: Mapping[str, Any] | None, criterion: str
    ) -> Verdict:
        """Whether the call meets ``criterion``: yes or no."""
        state = {
            "conversation": self.split()[0],
            "call": {"name": name, "arguments": dict(args or {})},
        }
        options = {"yes": "The call satisfies the criterion.", "no": "It does not."}
        return await self._ask(_CALL_QUESTION, criterion, options, state)

    async def _ask(
        self, question: str, criterion: str, options: Mapping[str, str], state: Any
    ) -> Verdict:
        from lifecycle.testing.model import ModelError, ModelUnreachableError

        body = json.dumps(state, ensure_ascii=False)
        key = json.dumps([question, criterion, sorted(options), body])
        if key in self._cache:
            return self._cache[key]
        choices = "\n".join(f"- {name}: {text}" for name, text in options.items())
        system = (
            f"You are a judge of a voice bot's conversation.\n{question}\n\n"
            f"Criterion: {criterion}\n\nAnswer with one of:\n{choices}\n\n"
            'Reply with a JSON object only: {"verdict": "<one of the answers>", '
            '"reason": "<one sentence: what in the conversation supports the verdict>"}.'
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": body}]
        try:
            reply = await self._client.complete(messages)
        except ModelUnreachableError as exc:
            raise JudgeUnavailableError(f"the judge cannot be reached: {exc}") from None
        except ModelError as exc:
            raise JudgeUnavailableError(f"the judge's answer is not usable: {exc}") from None
        verdict = _parse_verdict(reply.text, tuple(options))
        self._cache[key] = verdict
        return verdict

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()


def _parse_verdict(text: str, allowed: tuple[str, ...]) -> Verdict:
    """The ``{"verdict", "reason"}`` object in a model's answer (code fences tolerated)."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    answer: Any = None
    if match is not None:
        try:
            answer = json.loads(match.group(0))
        except ValueError:
            answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("verdict"), str):
        shown = " ".join(text.split())[:120]
        raise JudgeUnavailableError(
            f'the judge did not answer {{"verdict": ..., "reason": ...}}: {shown!r}'
        )
    verdict = answer["verdict"].strip().lower().replace(" ", "_")
    if verdict not in allowed:
        raise JudgeUnavailableError(
            f"the judge answered {verdict[:40]!r}, not one of {', '.join(allowed)}"
        )
    reason = answer.get("reason")
    return verdict_of((verdict, reason if isinstance(reason, str) else ""))


@dataclass(frozen=True)
class JudgeSource:
    """Where one scenario's judge comes from: a callable, an endpoint, or a factory."""

    kind: str
    """``callable``, ``endpoint`` or ``factory``."""
    describe: str
    """For messages: ``--judge x:y``, the endpoint's URL and model, or ``factory:path``."""
    fn: JudgeFn | None = None
    endpoint: ModelEndpoint | None = None
    factory: str | None = None
    block: Mapping[str, Any] = field(default_factory=dict)

    @property
    def allow_continue(self) -> bool:
        """``allow_continue:`` of the file's block (default true)."""
        return self.block.get("allow_continue", True) is not False

    async def open(self) -> ScenarioJudge:
        """A fresh judge for one scenario run; :class:`JudgeUnavailableError` if none."""
        if self.kind == "callable" and self.fn is not None:
            return CallableJudge(self.fn)
        if self.kind == "endpoint" and self.endpoint is not None:
            return ModelJudge(self.endpoint, allow_continue=self.allow_continue)
        return judge_from_factory(str(self.factory), self.block)


def judge_from_factory(path: str, block: Mapping[str, Any]) -> ScenarioJudge:
    """The judge that ``factory: module.callable`` builds, as pipecat.evals does.

    The callable is imported and called with a copy of the judge block. A result with
    ``evaluate``/``add_assistant_message`` is returned as is; a plain callable is wrapped in
    :class:`CallableJudge`. Raises :class:`JudgeUnavailableError` when the import or the call
    fails, or the result needs pipecat.evals.
    """
    module_name, _, attr = path.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
        built = factory(dict(block))
    except Exception as exc:  # an import or a factory failing: the judge cannot run
        raise JudgeUnavailableError(
            f"judge factory {path!r} cannot be run ({type(exc).__name__}: {exc}); give "
            "--judge-url URL --judge-model NAME to judge with an OpenAI-compatible endpoint"
        ) from None
    if hasattr(built, "evaluate") and hasattr(built, "add_assistant_message"):
        judge: ScenarioJudge = built
        return judge
    kind = type(built).__module__
    if kind.startswith("pipecat.") or not callable(built):
        raise JudgeUnavailableError(
            f"judge factory {path!r} returned a {type(built).__name__}, which needs "
            "pipecat.evals; give --judge-url URL --judge-model NAME instead"
        )
    return CallableJudge(built)


def judge_source(
    scenario: ScriptedScenario,
    *,
    fn: JudgeFn | None = None,
    fn_name: str = "",
    url: str | None = None,
    model: str | None = None,
) -> JudgeSource | None:
    """The judge ``scenario`` runs with (see the module), or None when it needs none or has none.

    Raises ``ValueError`` for a block that names no usable endpoint (e.g. a ``model``
    missing with ``--judge-url``). Imports nothing, contacts nothing.
    """
    block: Mapping[str, Any] = {}
    if scenario.judge is not None:
        block = scenario.judge.eval or {}
    if fn is not None:
        return JudgeSource("callable", f"--judge {fn_name}", fn=fn, block=block)
    from lifecycle.testing.model import endpoint_from_block

    if url is not None:
        endpoint = endpoint_from_block(dict(block, factory=None), url=url, model=model)
        return JudgeSource(
            "endpoint", f"{endpoint.base_url} ({endpoint.model})", endpoint=endpoint, block=block
        )
    if scenario.judge is None:
        return None
    factory = block.get("factory")
    if isinstance(factory, str) and factory.strip():
        return JudgeSource("factory", f"factory:{factory}", factory=factory.strip(), block=block)
    endpoint = endpoint_from_block(block, model=model)
    return JudgeSource(
        "endpoint", f"{endpoint.base_url} ({endpoint.model})", endpoint=endpoint, block=block
    )
