"""``SimulatedCaller``: a model plays the caller, with a persona and a goal, and is judged.

What pipecat.evals 1.14 does (``persona.py``, ``simulation_driver.py``), over any transport:

* The persona model (any OpenAI-compatible endpoint, :mod:`lifecycle.testing.model`) runs
  under pipecat.evals' instruction, with the bot's turns as ``user`` messages and its own as
  ``assistant`` ones, and one tool, ``end_call(success, reason)``: the only way to hang up.
* It answers the bot's whole turn: the bot's LLM text (``bot-llm-text`` joined at
  ``bot-llm-stopped``), held while one of the bot's function calls runs, so the persona answers
  the reply after the call rather than its "let me check". It speaks by ``send-text`` (text
  modality) or, with a ``voice``, through the voice's speech once the bot stopped speaking.
* The run ends on ``end_call`` (when the persona said something in the same turn, after the
  bot's reply to it or :data:`CLOSING_REPLY_WAIT_S`), ``bot`` (the session ended),
  ``max_turns`` (the persona's turns), ``max_duration`` (wall clock), ``silence`` (neither side
  did anything for ``max_silence_s``; the persona's own thinking is not silence) or ``error``
  (the persona model failed, or its answer was unusable).
* Then the judge decides ``success`` over the whole conversation and each metric
  (:mod:`lifecycle.testing.simulation_judge`). A run passes when it ended by ``end_call`` or
  ``bot``, the goal was judged met and every metric passed (pipecat.evals: "a run they end
  [the caps] has not succeeded").

The caller does not disconnect the client: its owner does, after :meth:`SimulatedCaller.run`.
Build the caller before connecting (or right after): it listens from when it is built, so a
bot's greeting is never missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from lifecycle.errors import PipecatClientError
from lifecycle.states import State
from lifecycle.testing.model import (
    ModelCallLimitError,
    ModelClient,
    ModelEndpoint,
    ModelError,
    ModelResponseError,
    ModelUnreachableError,
)
from lifecycle.testing.simulation_file import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MAX_MODEL_CALLS,
    DEFAULT_MAX_SILENCE_S,
    DEFAULT_MAX_TURNS,
    Metric,
    SimulationSpec,
)
from lifecycle.testing.simulation_judge import (
    CallableRunJudge,
    JudgeFn,
    ModelRunJudge,
    RunFacts,
    RunJudge,
    Verdict,
    judge_goal,
    judge_metric,
    measure,
)
from lifecycle.testing.simulation_turns import Heard, Transcript

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import ClientEvent, EventStream
    from lifecycle.testing.conversation import Conversation
    from lifecycle.testing.voice import Voice

__all__ = [
    "CLOSING_REPLY_WAIT_S",
    "END_CALL",
    "END_REASONS",
    "SimulatedCaller",
    "SimulationResult",
    "SimulationTurn",
]

END_CALL: Final = "end_call"
END_REASONS: Final = ("end_call", "bot", "max_turns", "max_duration", "silence", "error")
CLOSING_REPLY_WAIT_S: Final = 15.0
"""After the persona hangs up on a line of its own, how long the bot gets to answer it."""
MAX_UTTERANCE: Final = 4000  # characters of one persona turn; more is a hostile answer
_PASSING_ENDS: Final = frozenset({"end_call", "bot"})

END_CALL_TOOL: Final = {
    "type": "function",
    "function": {
        "name": END_CALL,
        "description": (
            "Hang up the phone. This is the only way to end the call; saying goodbye does "
            "not end it. Call it as soon as your goal is achieved, or as soon as it is clear "
            "the assistant cannot help you achieve it. A short goodbye may be spoken in the "
            "same turn."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "success": {
                    "type": "boolean",
                    "description": "Whether you achieved your goal on this call.",
                },
                "reason": {
                    "type": "string",
                    "description": "One sentence on why you are ending the call.",
                },
            },
            "required": ["success", "reason"],
        },
    },
}

# pipecat.evals' persona instruction (persona.py), word for word.
INSTRUCTION: Final = """\
You are playing a person on a phone call with a voice assistant. Stay in \
character throughout; never mention being simulated, a test, or an AI.

Who you are: {persona}

What you want from this call: {goal}

The assistant's words arrive as the user's messages. Reply with only what you \
would say next: one short spoken turn, in the first person, in plain sentences \
(no lists, markdown, or stage directions). Ask for or give one thing at a time, \
as a real caller would, and do not repeat what the assistant has already \
understood.

Saying goodbye does not hang up: the call ends only when you call the \
{end_call} tool. As soon as your goal is achieved, or it is clear the \
assistant cannot help, call {end_call} with whether you succeeded and why. You \
may say one short goodbye sentence in the same turn, but you must make the call."""


@dataclass(frozen=True)
class SimulationTurn:
    """One persona turn and the bot's reply to it (times in seconds from the run's start)."""

    index: int
    caller: str
    sent_at_s: float
    bot: str = ""
    first_token_ms: float | None = None
    """From the send (text) or the end of the speech (audio) to the bot's first word."""
    function_calls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "index": self.index,
            "caller": self.caller,
            "sent_at_s": round(self.sent_at_s, 3),
            "bot": self.bot,
            "first_token_ms": _rounded(self.first_token_ms),
            "function_calls": list(self.function_calls),
        }


@dataclass
class SimulationResult:
    """A simulated call's outcome."""

    name: str
    passed: bool
    end_reason: str
    turns: list[SimulationTurn]
    verdicts: list[Verdict]
    transcript: list[dict[str, Any]]
    """pipecat.evals' conversation file: ``user`` / ``assistant`` / ``tool_call`` messages
    in order (each with ``at``, seconds from the start)."""
    error: str | None = None
    unreachable: bool = False
    """The error is a model endpoint that could not be reached or run (CLI exit 3)."""
    end_call: dict[str, Any] | None = None
    """The persona's own claim (``success``, ``reason``); advisory, the judge decides."""
    duration_s: float = 0.0
    model_calls: int = 0
    reason: str = ""
    """Why the run passed or failed, in one line."""
    run: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latencies_ms(self) -> list[float]:
        """The bot's reply latency per persona turn that got one."""
        return [t.first_token_ms for t in self.turns if t.first_token_ms is not None]

    def to_json(self) -> dict[str, Any]:
        """The conversation file this project writes per run (``--logs-dir``)."""
        return {
            "name": self.name,
            "run": self.run,
            "passed": self.passed,
            "reason": self.reason,
            "end_reason": self.end_reason,
            "end_call": self.end_call,
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "model_calls": self.model_calls,
            "turns": [t.to_json() for t in self.turns],
            "verdicts": [v.to_json() for v in self.verdicts],
            "conversation": self.transcript,
            **self.extra,
        }


class SimulatedCaller:
    """A model-played caller for a READY client's bot; ``await run()``.

    ``model`` plays the persona; ``judge`` (an endpoint) or ``judge_fn`` (a callable
    ``(criterion, text) -> bool | (verdict, reason)``) decides ``success`` and the judged
    ``metrics``. ``max_model_calls`` caps the persona's and the judge's calls together.
    """

    def __init__(
        self,
        client: PipecatClient,
        *,
        persona: str,
        goal: str,
        success: str | None = None,
        model: ModelEndpoint,
        judge: ModelEndpoint | None = None,
        voice: Voice | None = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        max_silence_s: float = DEFAULT_MAX_SILENCE_S,
        max_model_calls: int = DEFAULT_MAX_MODEL_CALLS,
        metrics: Sequence[Metric] = (),
        judge_fn: JudgeFn | None = None,
        name: str = "simulation",
        closing_reply_wait_s: float = CLOSING_REPLY_WAIT_S,
        model_timeout: float = 60.0,
    ) -> None:
        """Check the settings and start listening to ``client``'s events."""
        for what, text in (("persona", persona), ("goal", goal)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{what} must be a non-empty string")
        if not isinstance(model, ModelEndpoint):
            raise TypeError("model must be a ModelEndpoint")
        judged = success is not None or any(m.criterion for m in metrics)
        if judged and judge is None and judge_fn is None:
            raise ValueError("success: and judged metrics need a judge (judge= or judge_fn=)")
        for what, count in (("max_turns", max_turns), ("max_model_calls", max_model_calls)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{what} must be a positive integer, not {count!r}")
        for what, seconds in (
            ("max_duration_s", max_duration_s),
            ("max_silence_s", max_silence_s),
            ("closing_reply_wait_s", closing_reply_wait_s),
        ):
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise ValueError(f"{what} must be a positive number of seconds")
        self.client = client
        self.persona, self.goal, self.success = persona.strip(), goal.strip(), success
        self.model, self.judge, self.judge_fn, self.voice = model, judge, judge_fn, voice
        self.max_turns, self.max_model_calls = max_turns, max_model_calls
        self.max_duration_s, self.max_silence_s = float(max_duration_s), float(max_silence_s)
        self.closing_reply_wait_s = float(closing_reply_wait_s)
        self.metrics = tuple(metrics)
        self.name = name
        self.model_timeout = model_timeout
        self._stream: EventStream = client.events(*Heard.WATCHED)

    @classmethod
    def from_spec(
        cls,
        client: PipecatClient,
        spec: SimulationSpec,
        *,
        model: ModelEndpoint,
        judge: ModelEndpoint | None = None,
        judge_fn: JudgeFn | None = None,
        max_model_calls: int | None = None,
        voice: Voice | None = None,
    ) -> SimulatedCaller:
        """The caller a simulation file describes (``max_model_calls``: the file's if None)."""
        return cls(
            client,
            persona=spec.persona,
            goal=spec.goal,
            success=spec.success,
            model=model,
            judge=judge,
            judge_fn=judge_fn,
            voice=voice,
            max_turns=spec.max_turns,
            max_duration_s=spec.max_duration_s,
            max_silence_s=spec.max_silence_s,
            max_model_calls=max_model_calls or spec.max_model_calls,
            metrics=spec.metrics,
            name=spec.name,
        )

    @property
    def instruction(self) -> str:
        """The system instruction the persona model runs under."""
        return INSTRUCTION.format(persona=self.persona, goal=self.goal, end_call=END_CALL)

    def close(self) -> None:
        """Stop listening without running (``run`` does it when it ends)."""
        self._stream.close()

    async def run(self) -> SimulationResult:
        """Hold the conversation until it ends, judge it, and return the result."""
        run = _Run(self)
        try:
            return await run.go()
        finally:
            self._stream.close()


class _Ended(Exception):
    def __init__(self, reason: str, error: str | None = None, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.error, self.unreachable = reason, error, unreachable


class _Run:
    """One simulated call: the loop, the persona's context and the record."""

    def __init__(self, caller: SimulatedCaller) -> None:
        self.caller = caller
        self.started = time.monotonic()
        self.heard = Heard(audio=caller.voice is not None)
        self.transcript = Transcript(self.started)
        self.context: list[dict[str, Any]] = [{"role": "system", "content": caller.instruction}]
        self.turns: list[SimulationTurn] = []
        self.end_call: dict[str, Any] | None = None
        self.persona_calls = 0
        self.judge_calls = 0
        self.anchor: float | None = None  # audio: when the bot heard the caller's turn end
        self.speaker: Conversation | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    async def go(self) -> SimulationResult:
        caller = self.caller
        persona = ModelClient(
            caller.model, timeout=caller.model_timeout, max_calls=caller.max_model_calls
        )
        try:
            try:
                await self.converse(persona)
                raise AssertionError("unreachable")  # converse always ends by _Ended
            except _Ended as ended:
                finish = ended
        finally:
            self.persona_calls = persona.calls
            await persona.aclose()
            if self.speaker is not None:
                await self.speaker.close()
        duration = self.now()
        if finish.error is not None:
            return self.result(finish, duration, [], finish.error)
        from lifecycle.testing.judge import JudgeUnavailableError

        try:
            verdicts = await self.judged(duration)
        except (ModelError, JudgeUnavailableError) as exc:
            # The judge cannot be reached or run (CLI exit 3); the cap is the run's failure.
            unreachable = not isinstance(exc, ModelCallLimitError)
            failed = _Ended(finish.reason, f"judge: {exc}", unreachable)
            return self.result(failed, duration, [], failed.error)
        return self.result(finish, duration, verdicts, None)

    def result(
        self, ended: _Ended, duration: float, verdicts: list[Verdict], error: str | None
    ) -> SimulationResult:
        failed = [v for v in verdicts if not v.passed]
        if error is not None:
            reason, passed = error, False
        elif ended.reason not in _PASSING_ENDS:
            reason, passed = f"the call ended by {ended.reason}", False
        elif failed:
            first = failed[0]
            what = "goal not met" if first.kind == "goal" else first.name
            reason, passed = f"{what}: {first.reason}", False
        else:
            reason, passed = f"passed (ended by {ended.reason})", True
        return SimulationResult(
            name=self.caller.name,
            passed=passed,
            end_reason=ended.reason,
            turns=list(self.turns),
            verdicts=verdicts,
            transcript=self.transcript.messages,
            error=error,
            unreachable=ended.unreachable if error is not None else False,
            end_call=self.end_call,
            duration_s=duration,
            model_calls=self.persona_calls + self.judge_calls,
            reason=reason,
        )

    # ------------------------------------------------------------------ the conversation
    async def converse(self, persona: ModelClient) -> None:
        caller = self.caller
        deadline = self.started + caller.max_duration_s
        last_activity = time.monotonic()
        closing_ends: float | None = None
        events = caller._stream.__aiter__()
        while True:
            waits = [deadline, last_activity + caller.max_silence_s]
            if closing_ends is not None:
                waits.append(closing_ends)
            try:
                async with asyncio.timeout(max(0.0, min(waits) - time.monotonic())):
                    event = await anext(events)
            except StopAsyncIteration:
                raise _Ended("bot") from None  # the stream was closed: nothing more comes
            except TimeoutError:
                now = time.monotonic()
                if closing_ends is not None and now >= closing_ends:
                    raise _Ended("end_call") from None
                if now >= deadline:
                    raise _Ended("max_duration") from None
                if now >= last_activity + caller.max_silence_s:
                    raise _Ended("silence") from None
                continue
            last_activity = max(last_activity, event.at)
            if self.feed(event):
                raise _Ended("bot")
            if not self.heard.bot_turn_ready():
                continue
            bot_text = self.heard.take_turn()
            self.transcript.bot(bot_text)
            self.close_turn(bot_text)
            if closing_ends is not None:
                raise _Ended("end_call")
            hung_up, spoke = await self.persona_turn(persona, bot_text, deadline)
            last_activity = time.monotonic()
            if hung_up:
                if not spoke:
                    raise _Ended("end_call")
                closing_ends = time.monotonic() + caller.closing_reply_wait_s
            elif len(self.turns) >= caller.max_turns:
                raise _Ended("max_turns")

    def feed(self, event: ClientEvent) -> bool:
        """Take one event; True when the session ended."""
        happened = self.heard.feed(event)
        if happened is None:
            return False
        kind, detail = happened
        if kind == "ended":
            return True
        if kind == "heard_end":
            self.anchor = event.at  # audio: from the bot noticing the caller stop, as pipecat
        elif kind == "first_token" and self.turns and self.turns[-1].first_token_ms is None:
            last = self.turns[-1]
            anchor = self.anchor if self.anchor is not None else self.started + last.sent_at_s
            latency = (event.at - anchor) * 1000
            self.turns[-1] = replace(last, first_token_ms=max(0.0, latency))
        elif kind == "call":
            self.transcript.call(detail["name"], detail["args"])
        elif kind == "cancelled":
            self.transcript.cancel(detail["name"])
        return False

    def close_turn(self, bot_text: str) -> None:
        """The bot's reply belongs to the last persona turn (the first reply is a greeting)."""
        if self.turns and not self.turns[-1].bot:
            last = self.turns[-1]
            calls = tuple(self.transcript.calls_since(last.sent_at_s))
            self.turns[-1] = replace(last, bot=bot_text, function_calls=calls)

    async def persona_turn(
        self, persona: ModelClient, bot_text: str, deadline: float
    ) -> tuple[bool, bool]:
        """Ask the persona and speak its answer; (hung up, said something)."""
        self.context.append({"role": "user", "content": bot_text})
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                reply = await persona.complete(self.context, tools=[END_CALL_TOOL])
        except TimeoutError:
            raise _Ended("max_duration") from None
        except ModelCallLimitError as exc:
            raise _Ended("error", f"persona: {exc}") from None
        except ModelUnreachableError as exc:
            raise _Ended("error", f"persona: {exc}", unreachable=True) from None
        except ModelResponseError as exc:
            raise _Ended("error", f"persona: {exc}") from None
        text = " ".join(reply.text.split())
        if len(text) > MAX_UTTERANCE:
            raise _Ended("error", f"persona: a turn longer than {MAX_UTTERANCE} characters")
        hung_up = False
        for call in reply.tool_calls:
            if call.name == END_CALL:
                success = call.arguments.get("success")
                why = call.arguments.get("reason")
                self.end_call = {
                    "success": success if isinstance(success, bool) else False,
                    "reason": str(why)[:500] if why is not None else "",
                }
                hung_up = True
        if text:
            await self.say(text)
        return hung_up, bool(text)

    async def say(self, text: str) -> None:
        self.context.append({"role": "assistant", "content": text})
        try:
            if self.caller.voice is None:
                await self.caller.client.send_text(text)
            else:
                await self.speak(text)
        except PipecatClientError:
            # The bot ended the session while the persona was thinking.
            if self.caller.client.state is State.READY:
                raise
            raise _Ended("bot") from None
        sent_at = self.now()
        self.anchor = None
        self.heard.sent()
        self.transcript.user(text, sent_at)
        self.turns.append(SimulationTurn(len(self.turns) + 1, text, sent_at))

    async def speak(self, text: str) -> None:
        """Audio modality: ``Conversation.say(speak=True)`` with the caller's voice."""
        if self.speaker is None:
            from lifecycle.testing.conversation import Conversation

            self.speaker = Conversation(self.caller.client, voice=self.caller.voice, history=64)
        await self.speaker.say(text, speak=True)

    # ------------------------------------------------------------------ judging
    async def judged(self, duration: float) -> list[Verdict]:
        caller = self.caller
        messages = self.transcript.messages
        verdicts: list[Verdict] = []
        facts = RunFacts(
            turns=len(self.turns),
            duration_s=duration,
            bot_replies=[m["content"] for m in messages if m["role"] == "assistant"],
            latencies_s=[t.first_token_ms / 1000 for t in self.turns if t.first_token_ms],
            calls=[
                (m["name"], m["arguments"])
                for m in messages
                if m["role"] == "tool_call" and not m["cancelled"]
            ],
            audio=caller.voice is not None,
        )
        judged = caller.success is not None or any(m.criterion for m in caller.metrics)
        if not judged:
            return [measure(m, facts) for m in caller.metrics]
        left = caller.max_model_calls - self.persona_calls
        if left < 1:
            raise ModelCallLimitError(
                f"model call limit reached ({caller.max_model_calls}) before judging"
            )
        model_judge: ModelRunJudge | None = None
        judge: RunJudge
        if caller.judge_fn is not None:
            judge = CallableRunJudge(caller.judge_fn)
        else:
            assert caller.judge is not None
            judge = model_judge = ModelRunJudge(
                caller.judge, timeout=caller.model_timeout, max_calls=left
            )
        try:
            if caller.success is not None:
                verdicts.append(await judge_goal(judge, caller.success, messages))
            for metric in caller.metrics:
                if metric.criterion is not None:
                    verdicts.append(await judge_metric(judge, metric, messages))
                else:
                    verdicts.append(measure(metric, facts))
        finally:
            if model_judge is not None:
                self.judge_calls = model_judge.calls
                await model_judge.aclose()
        return verdicts


def _rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)
