"""Runs a validated scenario (:mod:`lifecycle.testing.scenario`) on a READY client.

What pipecat.evals' scripted driver does (``pipecat/evals/script_driver.py``, ``events.py``,
``matcher.py`` in pipecat-ai 1.14), over RTVI instead of the eval transport's frames:

* Events are the bot's RTVI messages under pipecat.evals' names (its ``events.py`` table):
  ``user-started-speaking`` / ``user-stopped-speaking``; ``user_transcription`` is a final
  ``user-input`` of type ``transcription``; ``llm_started`` is ``bot-llm-started``;
  ``llm_response`` is the ``bot-llm-text`` tokens joined at ``bot-llm-stopped``;
  ``tts_response`` one ``bot-tts-text``; ``response`` is ``llm_response`` (no transcription
  of the bot's audio here, as pipecat.evals in text modality); ``function_call`` is
  ``llm-function-call-in-progress`` (name, arguments); ``function_call_stopped`` is
  ``llm-function-call-stopped`` with ``args`` ``{tool_call_id, cancelled}``. LLM text that
  arrives after a send (or an interruption) and before the next ``bot-llm-started`` belongs
  to the reply before and is dropped, as there.
* A turn is sent once the bot has stopped speaking (at most 30 s). All of a turn's
  expectations share one anchor, the moment its input was sent (for an audio turn, when the
  audio starts): each has ``within_ms`` (default 60 s) from it, and an event counts only if
  it arrived before that deadline. Each expectation's latency is its event's arrival time
  minus the anchor.
* Expectations are met in order, each looking from where the one above it matched (or from
  the start of the turn with ``check_from: turn_start``), passing over other events; replies
  with ``text_contains``/``eval`` aggregate their segments; ``calls:`` match by name in any
  order with an ``args`` subset; ``absent: true`` passes when no such event arrives in time.
  The first failed turn ends the scenario unless ``stop_on_failure: false``.

One deliberate difference: events that arrived before a turn's send never satisfy that turn
(pipecat.evals keeps unread ones queued, so a previous turn's ``bot_stopped_speaking`` could).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from lifecycle.testing import audio
from lifecycle.testing.scenario import FUNCTION_CALL_EVENTS, Call, Expectation, Scenario, Turn

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import ClientEvent

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "ExpectationResult",
    "Judge",
    "ScenarioResult",
    "run_scenario",
]

DEFAULT_TIMEOUT_MS: Final = 60_000
"""An expectation's budget when it gives no ``within_ms`` (pipecat.evals' default)."""
BOT_QUIET_MAX_WAIT_S: Final = 30.0
JUDGE_NO_GRACE_S: Final = 2.0
MAX_QUEUED: Final = 10_000  # events kept unread (past that the oldest go), and per turn
_SHOWN: Final = 120

Judge = Callable[[str, str], Any]
"""``judge(criterion, text)`` -> ``bool`` or ``(bool, reason)``, or an awaitable of either."""

_WATCHED: Final = (
    "on_user_started_speaking",
    "on_user_stopped_speaking",
    "on_user_input",
    "on_bot_started_speaking",
    "on_bot_stopped_speaking",
    "on_bot_interrupted",
    "on_bot_llm_started",
    "on_bot_llm_text",
    "on_bot_llm_stopped",
    "on_bot_tts_text",
    "on_llm_function_call_in_progress",
    "on_llm_function_call",
    "on_llm_function_call_stopped",
    "on_disconnected",
)
_SIMPLE: Final = {
    "on_user_started_speaking": "user_started_speaking",
    "on_user_stopped_speaking": "user_stopped_speaking",
    "on_bot_started_speaking": "bot_started_speaking",
    "on_bot_stopped_speaking": "bot_stopped_speaking",
    "on_bot_interrupted": "bot_interrupted",
}
_INTERRUPTIONS: Final = frozenset({"user_started_speaking", "bot_interrupted"})
_USER_EVENTS: Final = frozenset(
    {"user_started_speaking", "user_stopped_speaking", "user_transcription"}
)


@dataclass
class ExpectationResult:
    """How one expectation went: ``status`` is ``passed``, ``failed`` or ``not run``."""

    turn: int
    index: int
    expectation: Expectation
    budget_ms: int
    status: str = "not run"
    latency_ms: int | None = None
    """Its event's arrival after the turn's anchor (None when nothing matched)."""
    detail: str = ""
    """The matched text, or why it failed."""


@dataclass
class ScenarioResult:
    """A scenario's outcome; ``failures`` are ``FILE:LINE: ...`` messages."""

    scenario: Scenario
    expectations: list[ExpectationResult]
    failures: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether nothing failed."""
        return not self.failures


class _Failed(Exception):
    """An expectation failed; the message says why."""


class _BotEndedError(Exception):
    """The session ended and no queued event is left."""


class _Events:
    """The bot's RTVI events as pipecat.evals' events (its ``EvalEventStream``, over RTVI)."""

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUED)
        self.turn_log: list[dict[str, Any]] = []
        self.claimed: set[int] = set()
        self.latest: dict[str, float] = {}
        self.ended = False
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._arrived = asyncio.Event()
        self._awaiting_reply = False
        self._text: list[str] = []
        self._text_at: float | None = None
        self._calls_seen: deque[Any] = deque(maxlen=256)
        self._cutoff = 0.0

    # --- feeding ---------------------------------------------------------------------
    def feed(self, event: ClientEvent) -> None:
        """Translate one client event; queue what it maps to."""
        mapped = self._map(event)
        if mapped is None or event.at < self._cutoff:
            return
        mapped["at"] = event.at
        self.latest[mapped["type"]] = event.at
        if mapped["type"] in _INTERRUPTIONS:
            # The bot's pending output is not the reply to what interrupted it; what the user
            # did stays (pipecat.evals pops events as they come, so it never loses those).
            kept = [e for e in self.queue if e["type"] in _USER_EVENTS]
            self.queue.clear()
            self.queue.extend(kept)
            self._awaiting_reply = True
            self.quiet.set()
        self.queue.append(mapped)
        self._arrived.set()

    def _map(self, event: ClientEvent) -> dict[str, Any] | None:
        name, data = event.name, event.data
        if name in _SIMPLE:
            kind = _SIMPLE[name]
            if kind == "bot_started_speaking":
                self.quiet.clear()
            elif kind == "bot_stopped_speaking":
                self.quiet.set()
            return {"type": kind}
        if name == "on_user_input":
            if data.input_type == "transcription" and data.final:
                return {"type": "user_transcription", "transcript": data.text or ""}
            return None
        if name == "on_bot_llm_started":
            self._awaiting_reply, self._text, self._text_at = False, [], None
            return {"type": "llm_started"}
        if name == "on_bot_llm_text":
            if not self._awaiting_reply and data.text:
                self._text.append(data.text)
            return None
        if name == "on_bot_llm_stopped":
            text, self._text = "".join(self._text), []
            return None if self._awaiting_reply else {"type": "llm_response", "text": text}
        if name == "on_bot_tts_text":
            return {"type": "tts_response", "text": data.text or ""}
        if name in ("on_llm_function_call_in_progress", "on_llm_function_call"):
            # A bot may send both messages for one call; it is one call.
            if data.tool_call_id is not None and data.tool_call_id in self._calls_seen:
                return None
            self._calls_seen.append(data.tool_call_id)
            return {
                "type": "function_call",
                "name": data.function_name,
                "args": dict(data.arguments or {}),
            }
        if name == "on_llm_function_call_stopped":
            return {
                "type": "function_call_stopped",
                "name": data.function_name,
                "args": {"tool_call_id": data.tool_call_id, "cancelled": bool(data.cancelled)},
            }
        if name == "on_disconnected":
            self.ended = True
            self.quiet.set()
            self._arrived.set()
        return None

    # --- turns -----------------------------------------------------------------------
    def begin_turn(self, *, sent: bool) -> None:
        """A new turn: forget the last one's log and what arrived before its send."""
        self.turn_log, self.claimed = [], set()
        self.queue.clear()
        self._cutoff = time.monotonic()
        if sent:
            self._awaiting_reply = True

    async def next_event(
        self,
        kind: str,
        deadline: float,
        *,
        since: int | None = None,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The next unclaimed ``kind`` event that arrived before ``deadline`` (see above)."""

        def wanted(item: dict[str, Any]) -> bool:
            return item["type"] == kind and (accept is None or accept(item))

        if since is not None:
            for i in range(since, len(self.turn_log)):
                if i not in self.claimed and wanted(self.turn_log[i]):
                    self.claimed.add(i)
                    return self.turn_log[i]
        while True:
            if not self.queue:
                if self.ended:
                    raise _BotEndedError
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._arrived.clear()
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
                continue
            if self.queue[0]["at"] > deadline:
                raise TimeoutError
            if len(self.turn_log) >= MAX_QUEUED:
                raise _Failed(f"the bot sent more than {MAX_QUEUED} events in one turn")
            item = self.queue.popleft()
            self.turn_log.append(item)
            if wanted(item):
                self.claimed.add(len(self.turn_log) - 1)
                return item

    def unclaimed_since(self, since: int) -> list[dict[str, Any]]:
        """The turn's events from ``since`` no expectation has claimed."""
        return [e for i, e in enumerate(self.turn_log) if i >= since and i not in self.claimed]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _contains(text: str, needle: str) -> bool:
    return _squash(needle) in _squash(text)


def _event_text(item: dict[str, Any]) -> str:
    return str(item.get("text") or item.get("transcript") or "")


def _call_matches(item: dict[str, Any], call: Call) -> bool:
    if call.name is not None and item.get("name") != call.name:
        return False
    actual = item.get("args") or {}
    return all(actual.get(k) == v for k, v in (call.args or {}).items())


def _summary(item: dict[str, Any]) -> str:
    if item["type"] in FUNCTION_CALL_EVENTS:
        args = ", ".join(f"{k}={v}" for k, v in (item.get("args") or {}).items())
        return f"{item.get('name') or '?'}({args})"
    return _event_text(item)[:_SHOWN]


async def _verdict(judge: Judge, criterion: str, text: str) -> tuple[bool, str]:
    try:
        result = judge(criterion, text)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the user's judge: its failure fails the expectation
        raise _Failed(f"the judge raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, tuple):
        return bool(result[0]), str(result[1]) if len(result) > 1 else ""
    return bool(result), ""


class _Run:
    """One scenario on one client (the driver and matcher of pipecat.evals, in one)."""

    def __init__(
        self,
        scenario: Scenario,
        client: PipecatClient,
        judge: Judge | None,
        default_timeout_ms: int,
    ) -> None:
        self.scenario = scenario
        self.client = client
        self.judge = judge
        self.events = _Events()
        self.results = [
            ExpectationResult(t, i, e, e.within_ms or default_timeout_ms)
            for t, turn in enumerate(scenario.turns)
            for i, e in enumerate(turn.expect)
        ]
        self.failures: list[str] = []
        self._last_match_at = 0.0

    async def run(self) -> None:
        async with self.client.events(*_WATCHED) as stream:
            pump = asyncio.create_task(self._pump(stream))
            try:
                for t, turn in enumerate(self.scenario.turns):
                    if not await self._turn(t, turn) and self.scenario.stop_on_failure:
                        break
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, stream: Any) -> None:
        async for event in stream:
            self.events.feed(event)

    async def _turn(self, t: int, turn: Turn) -> bool:
        sends = turn.user is not None or turn.audio is not None or turn.dtmf is not None
        if sends or t > 0:
            # A caller waits for the end of the bot's sentence (bounded, as pipecat.evals).
            try:
                async with asyncio.timeout(BOT_QUIET_MAX_WAIT_S):
                    await self.events.quiet.wait()
            except TimeoutError:
                pass
        self.events.begin_turn(sent=sends)
        anchor = time.monotonic()
        sending = asyncio.create_task(self._send(turn))
        try:
            if turn.audio is None:
                await sending  # text and keys go at once: a send error is the turn's
            ok = await self._expectations(t, turn, anchor)
            if ok:
                await sending
        except Exception as exc:
            self._fail(turn.line, f"turn {t + 1} ({turn.label}): could not send: {exc}")
            return False
        finally:
            if not sending.done():
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
        return ok

    async def _send(self, turn: Turn) -> None:
        client = self.client
        if turn.audio is not None:
            rate, channels = audio.input_format(client.transport)
            frames = audio.prepare(turn.audio, rate, channels)
            frames += audio.silence(1.0, rate, channels)  # the microphone stays open
            await audio.stream_to(client.send_audio, frames)
        elif turn.user is not None:
            await client.send_text(turn.user)
        elif turn.dtmf is not None:
            await client.send_dtmf(turn.dtmf)

    async def _expectations(self, t: int, turn: Turn, anchor: float) -> bool:
        results = [r for r in self.results if r.turn == t]
        for result in results:
            exp = result.expectation
            deadline = anchor + result.budget_ms / 1000
            try:
                item, detail = await self._match(exp, deadline, result.budget_ms)
            except _Failed as exc:
                reason = str(exc)
            except TimeoutError:
                reason = f"no matching {exp.event!r} event arrived within {result.budget_ms}ms"
            except _BotEndedError:
                reason = f"the bot ended the call before a matching {exp.event!r} event"
            else:
                result.status, result.detail = "passed", detail
                if item is not None:
                    result.latency_ms = round(1000 * (item["at"] - anchor))
                continue
            result.status, result.detail = "failed", reason
            self._fail(exp.line, f"turn {t + 1} ({turn.label}), expectation {exp.label}: {reason}")
            return False
        return True

    def _fail(self, line: int, message: str) -> None:
        self.failures.append(f"{self.scenario.path}:{line}: {message}")

    # --- matching (pipecat.evals' matcher) -------------------------------------------
    async def _match(
        self, exp: Expectation, deadline: float, budget_ms: int
    ) -> tuple[dict[str, Any] | None, str]:
        kind = "llm_response" if exp.event == "response" else exp.event
        if exp.absent:
            return None, await self._absent(kind, deadline, budget_ms)
        since = 0 if exp.check_from == "turn_start" else len(self.events.turn_log)
        item: dict[str, Any] | None
        if exp.aggregates:
            item, text = await self._aggregate(exp, kind, deadline, budget_ms, since)
        elif kind in FUNCTION_CALL_EVENTS:
            item, text = await self._calls(exp, kind, deadline, since)
        else:
            item = await self.events.next_event(kind, deadline, since=since)
            text = _summary(item)
            self._check_excludes(text, exp)
            if exp.eval is not None:
                await self._judge(exp.eval, text)
        self._last_match_at = time.monotonic()
        return item, text

    async def _absent(self, kind: str, deadline: float, budget_ms: int) -> str:
        while True:
            try:
                item = await self.events.next_event(kind, deadline)
            except (TimeoutError, _BotEndedError):
                return f"no {kind!r} for {budget_ms}ms"
            began = max(
                self.events.latest.get("llm_started", 0.0),
                self.events.latest.get("bot_started_speaking", 0.0),
            )
            if kind == "llm_response" and began <= self._last_match_at:
                continue  # the rest of the reply already matched, not a new one
            raise _Failed(
                f"expected no {kind!r} within {budget_ms}ms, but one arrived: {_summary(item)}"
            )

    async def _aggregate(
        self, exp: Expectation, kind: str, deadline: float, budget_ms: int, since: int
    ) -> tuple[dict[str, Any], str]:
        aggregate, last, reason = "", None, ""
        while True:
            try:
                item = await self.events.next_event(kind, deadline, since=since)
            except TimeoutError:
                if last is None:
                    raise
                raise _Failed(
                    f"not satisfied within {budget_ms}ms: {aggregate.strip()[:_SHOWN]!r} {reason}"
                ) from None
            last = item
            aggregate += _event_text(item)
            self._check_excludes(aggregate, exp)
            if exp.text_contains is not None and not _contains(aggregate, exp.text_contains):
                reason = f"does not contain {exp.text_contains!r}"
            elif (
                exp.eval is not None
                and not (verdict := await self._verdict(exp.eval, aggregate))[0]
            ):
                reason = f"judge said no to {exp.eval!r} {verdict[1]}".rstrip()
                # A "no" stands once the reply is over: the bot stopped speaking and no more
                # of it came within a short grace (pipecat.evals' JUDGE_NO_GRACE_S).
                if self.events.quiet.is_set():
                    deadline = min(deadline, time.monotonic() + JUDGE_NO_GRACE_S)
            else:
                return last, aggregate.strip()[:_SHOWN]
            aggregate += " "

    async def _calls(
        self, exp: Expectation, kind: str, deadline: float, since: int
    ) -> tuple[dict[str, Any] | None, str]:
        matched: list[str] = []
        last: dict[str, Any] | None = None
        for call in exp.calls or (Call(None),):
            accept: Callable[[dict[str, Any]], bool] = partial(_call_matches, call=call)
            try:
                last = await self.events.next_event(kind, deadline, since=since, accept=accept)
            except TimeoutError:
                near = [
                    e.get("args")
                    for e in self.events.unclaimed_since(since)
                    if e["type"] == kind and (call.name is None or e.get("name") == call.name)
                ]
                if call.args and near:
                    raise _Failed(
                        f"no {call.name!r} call had args {call.args!r} (saw {near!r})"
                    ) from None
                seen = ", ".join(matched) or "none"
                raise _Failed(
                    f"function call {call.name or 'any function'!r} not seen (matched: {seen})"
                ) from None
            if exp.eval is not None:
                await self._judge(exp.eval, _summary(last))
            matched.append(_summary(last))
        return last, ", ".join(matched)

    def _check_excludes(self, text: str, exp: Expectation) -> None:
        if exp.text_excludes is not None and _contains(text, exp.text_excludes):
            raise _Failed(f"text {text.strip()[:_SHOWN]!r} contains {exp.text_excludes!r}")

    async def _verdict(self, criterion: str, text: str) -> tuple[bool, str]:
        if self.judge is None:
            raise _Failed("'eval:' needs a judge: run with --judge MODULE:CALLABLE")
        return await _verdict(self.judge, criterion, text)

    async def _judge(self, criterion: str, text: str) -> None:
        passed, reason = await self._verdict(criterion, text)
        if not passed:
            raise _Failed(f"eval {criterion!r} on {text[:_SHOWN]!r}: judge said no {reason}")


async def run_scenario(
    scenario: Scenario,
    client: PipecatClient,
    *,
    judge: Judge | None = None,
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> ScenarioResult:
    """Play ``scenario`` on a READY ``client`` and check its expectations (see the module).

    A scenario with ``eval:`` expectations and no ``judge`` fails before it runs, with a
    message saying so.
    """
    started = time.monotonic()
    run = _Run(scenario, client, judge, default_timeout_ms)
    if judge is None and scenario.evals:
        lines = ", ".join(str(e.line) for e in scenario.evals)
        run.failures.append(
            f"{scenario.path}:{scenario.evals[0].line}: 'eval:' needs a judge (lines {lines}): "
            "run with --judge MODULE:CALLABLE"
        )
    else:
        await run.run()
    return ScenarioResult(scenario, run.results, run.failures, time.monotonic() - started)
