"""Runs a validated scripted scenario (:mod:`lifecycle.testing.scenario`) on a READY client.

What pipecat.evals' scripted driver does (``script_driver.py``, ``matcher.py`` in
pipecat-ai 1.14), over RTVI on the bot's production transport; the events are
:mod:`lifecycle.testing.scripted_events`'.

* ``context:`` goes first, as pipecat.evals sends it: a ``client-message``
  ``eval-context`` ``{messages}``. A bot that does not answer it within 2 s is said (once
  per run) not to act on it; the scenario then runs on the bot's own context.
* A turn is sent once the bot has stopped speaking (at most 30 s), or with ``send_after:``
  ``delay_ms`` after its ``event`` last arrived in the run (waiting up to 30 s for it) or,
  with no event, after the previous turn's send. Text goes as ``send-text``, ``dtmf:`` as
  one ``dtmf`` message, ``audio:`` is played as the microphone, and an ``image:`` turn
  sends its text with the image as one RTVI 2.2 ``send-file`` (an older bot: the turn
  fails). Audio-modality turns go to the speaking caller (:func:`speak_turn`).
* All of a turn's expectations share one anchor, the moment its input was sent; each has
  ``within_ms`` (default 60 s) from it. Expectations are met in order (or from the turn's
  start with ``check_from: turn_start``); replies with ``text_contains``/``eval``
  aggregate their segments and a judge's ``continue`` waits for more; ``calls:`` match
  by name in any order with an ``args`` subset; ``absent: true`` passes when no such
  event arrives in time. The first failed turn ends the scenario unless
  ``stop_on_failure: false``.
* What a production bot cannot send fails at once, naming why: the ``image`` event
  (pipecat.evals' eval transport only), ``vad_user_*`` and ``llm_marker`` from a bot
  that has not enabled them (its ``RTVIObserverParams``), function calls reported
  without names or arguments (its ``function_call_report_level``).

One deliberate difference: events that arrived before a turn's send never satisfy that turn
(pipecat.evals keeps unread ones queued, so a previous turn's ``bot_stopped_speaking`` could).
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lifecycle.testing import audio
from lifecycle.testing import scripted_match as match
from lifecycle.testing.hearing import Hearing, Transcriber
from lifecycle.testing.judge import (
    CallableJudge,
    JudgeFn,
    JudgeUnavailableError,
    ScenarioJudge,
)
from lifecycle.testing.scenario_model import (
    Call,
    Expectation,
    ScriptedScenario,
    ScriptedTurn,
)
from lifecycle.testing.scenario_schema import FUNCTION_CALL_EVENTS
from lifecycle.testing.scripted_events import (
    MAX_QUEUED,
    WATCHED,
    BotEndedError,
    ScriptEvents,
    TooManyEventsError,
)
from lifecycle.testing.speaking import ScenarioRecording, speak_turn

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import EventStream

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "ExpectationResult",
    "Judge",
    "RunMemory",
    "ScenarioResult",
    "run_scenario",
]

DEFAULT_TIMEOUT_MS: Final = 60_000
"""An expectation's budget when it gives no ``within_ms`` (pipecat.evals' default)."""
BOT_QUIET_MAX_WAIT_S: Final = 30.0
SEND_AFTER_MAX_WAIT_S: Final = 30.0
JUDGE_NO_GRACE_S: Final = 2.0
CONTEXT_ANSWER_S: Final = 2.0
SETTING_GRACE_S: Final = 1.5  # how long after its trigger an opt-in event may still come

Judge = JudgeFn
"""``judge(criterion, text)`` -> ``bool`` or ``(bool, reason)``, or an awaitable of either."""


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
    """A scenario's outcome; ``failures`` are ``FILE:LINE: ...`` messages.

    ``error`` is set when the run could not go on for a reason outside the bot's answers
    (a judge that cannot be reached or run): the command exits 3.
    """

    scenario: ScriptedScenario
    expectations: list[ExpectationResult]
    failures: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether nothing failed."""
        return not self.failures and self.error is None


@dataclass
class RunMemory:
    """What one run of many scenarios learns about the bot, shared between them."""

    context_unanswered: bool = False
    recordings: set[Path] = field(default_factory=set)
    """The ``--record-dir`` files written so far (a second run gets another name)."""


class _Run:
    """One scenario on one client (the driver and matcher of pipecat.evals, in one)."""

    def __init__(
        self,
        scenario: ScriptedScenario,
        client: PipecatClient,
        judge: ScenarioJudge | None,
        default_timeout_ms: int,
        memory: RunMemory,
        recording: ScenarioRecording | None = None,
        transcriber: Transcriber | None = None,
    ) -> None:
        self.scenario, self.client, self.judge, self.memory = scenario, client, judge, memory
        self.recording = recording
        self.events = ScriptEvents()
        # In audio modality a transcriber's text of the bot's speech is the response.
        self._hearing: Hearing | None = None
        if transcriber is not None and scenario.user.modality == "audio":
            self._hearing = Hearing(transcriber, self.events.heard, self._heard_failed)
        self.events.hears = self._hearing is not None
        self.results = [
            ExpectationResult(t, i, e, e.within_ms or default_timeout_ms)
            for t, turn in enumerate(scenario.turns)
            for i, e in enumerate(turn.expect)
        ]
        self.failures: list[str] = []
        self.notices: list[str] = []
        self._last_match_at = 0.0
        self._last_send_at = time.monotonic()

    async def run(self, stream: EventStream | None) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if stream is None:
                names = (*WATCHED, "on_bot_audio") if self._hearing else WATCHED
                stream = await stack.enter_async_context(self.client.events(*names))
            pump = asyncio.create_task(self._pump(stream))
            try:
                await self._send_context()
                for t, turn in enumerate(self.scenario.turns):
                    if not await self._turn(t, turn) and self.scenario.stop_on_failure:
                        break
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
                if self._hearing is not None:
                    await self._hearing.aclose()

    async def _pump(self, stream: Any) -> None:
        async for event in stream:
            self.events.feed(event)
            if self._hearing is not None:
                self._hearing.feed(event)

    def _heard_failed(self, exc: Exception) -> None:
        notice = f"the transcriber failed: {type(exc).__name__}: {exc}"
        if notice not in self.notices:  # the user's transcriber: said once, the turn times out
            self.notices.append(notice)

    async def _send_context(self) -> None:
        if not self.scenario.context:
            return
        from lifecycle.errors import MessageError, RequestTimeoutError

        data = {"messages": [dict(m) for m in self.scenario.context]}
        if self.memory.context_unanswered:
            self.client.send_client_message("eval-context", data)
            return
        try:
            await self.client.send_client_request("eval-context", data, timeout=CONTEXT_ANSWER_S)
        except (RequestTimeoutError, MessageError):
            self.memory.context_unanswered = True
            self.notices.append(
                "context: the bot does not answer pipecat.evals' eval-context message (only "
                "its eval transport, or a bot with an on_client_message handler for it, acts "
                "on it); the scenarios run on the bot's own context"
            )

    # --- turns -------------------------------------------------------------------------
    async def _turn(self, t: int, turn: ScriptedTurn) -> bool:
        if turn.send_after is not None:
            try:
                await self._wait_send_after(turn)
            except (TimeoutError, BotEndedError) as exc:
                event = turn.send_after.event
                reason = (
                    f"send_after never fired: {event!r} not seen within "
                    f"{int(SEND_AFTER_MAX_WAIT_S * 1000)}ms"
                    if isinstance(exc, TimeoutError)
                    else f"the bot ended the call before {event!r} fired"
                )
                self._fail(turn, turn.send_after.line or turn.line, f"turn {t + 1}: {reason}")
                return False
        was_speaking = not self.events.quiet.is_set()
        if turn.send_after is None and (turn.sends or t > 0):
            # A caller waits for the end of the bot's sentence (bounded, as pipecat.evals).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BOT_QUIET_MAX_WAIT_S):
                    await self.events.quiet.wait()
        # A turn that only observes keeps what the bot sent since the last match (the
        # greeting, a reply to a tool result), unless that was the rest of a reply it was
        # still speaking (pipecat.evals drops that).
        self.events.begin_turn(sent=turn.sends, keep=not turn.sends and not was_speaking)
        anchor = time.monotonic()
        if turn.sends:
            self._last_send_at = anchor
        sending = asyncio.create_task(self._send(turn))
        try:
            if turn.audio is None:
                await sending  # text and keys go at once: a send error is the turn's
            ok = await self._expectations(t, turn, anchor)
            if ok:
                await sending
        except JudgeUnavailableError:
            raise
        except Exception as exc:
            self._fail(turn, turn.line, f"turn {t + 1} ({turn.label}): could not send: {exc}")
            return False
        finally:
            if not sending.done():
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
        return ok

    async def _wait_send_after(self, turn: ScriptedTurn) -> None:
        assert turn.send_after is not None
        delay = turn.send_after.delay_ms / 1000
        if turn.send_after.event is None:
            wait = self._last_send_at + delay - time.monotonic()
        else:
            deadline = time.monotonic() + SEND_AFTER_MAX_WAIT_S
            seen_at = await self.events.seen(turn.send_after.event, deadline)
            wait = seen_at + delay - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # the scenario asks for this pause: it is the test

    async def _send(self, turn: ScriptedTurn) -> None:
        client = self.client
        send = self.recording.send if self.recording is not None else client.send_audio
        if self.judge is not None:
            self.judge.add_user_message(turn.user)
        if turn.image is not None:
            mime = mimetypes.guess_type(turn.image.name)[0] or "image/jpeg"
            data = await asyncio.to_thread(turn.image.read_bytes)
            await client.send_file(turn.user or "", data, mime, name=turn.image.name)
        elif turn.audio is not None:
            rate, channels = audio.input_format(client.transport)
            frames = audio.prepare(turn.audio, rate, channels)
            frames += audio.silence(1.0, rate, channels)  # the microphone stays open
            await audio.stream_to(send, frames)
        elif turn.user is not None and self.scenario.user.modality == "audio":
            await speak_turn(client, turn, self.scenario.user, send=send, notices=self.notices)
        elif turn.user is not None:
            await client.send_text(turn.user)
        elif turn.dtmf is not None:
            await client.send_dtmf(turn.dtmf)

    async def _expectations(self, t: int, turn: ScriptedTurn, anchor: float) -> bool:
        for result in (r for r in self.results if r.turn == t):
            exp = result.expectation
            deadline = anchor + result.budget_ms / 1000
            try:
                item, detail = await self._match(exp, deadline, result.budget_ms, turn, anchor)
            except match.Failed as exc:
                reason = str(exc)
            except TimeoutError:
                reason = f"no matching {exp.event!r} event arrived within {result.budget_ms}ms"
            except BotEndedError:
                reason = f"the bot ended the call before a matching {exp.event!r} event"
            except TooManyEventsError:
                reason = f"the bot sent more than {MAX_QUEUED} events in one turn"
            else:
                result.status, result.detail = "passed", detail
                if item is not None:
                    result.latency_ms = max(0, round(1000 * (item["at"] - anchor)))
                continue
            result.status, result.detail = "failed", reason
            self._fail(
                exp, exp.line, f"turn {t + 1} ({turn.label}), expectation {exp.label}: {reason}"
            )
            return False
        return True

    def _fail(self, where: Any, line: int, message: str) -> None:
        path = getattr(where, "path", "") or str(self.scenario.path)
        self.failures.append(f"{path}:{line}: {message}")

    # --- matching (pipecat.evals' matcher) ---------------------------------------------
    async def _match(
        self,
        exp: Expectation,
        deadline: float,
        budget_ms: int,
        turn: ScriptedTurn,
        anchor: float,
    ) -> tuple[dict[str, Any] | None, str]:
        kind = "llm_response" if exp.event == "response" else exp.event
        if kind == "image":
            raise match.Failed(
                "the 'image' event comes only from pipecat.evals' eval transport (its "
                "eval-bot-image message); a bot on a production transport sends none"
            )
        if (
            kind.startswith("vad_")
            and turn.sends
            and turn.audio is None
            and (self.scenario.user.modality != "audio")
        ):
            raise match.Failed("a text turn sends no audio: the bot's VAD has nothing to hear")
        if exp.absent:
            return None, await self._absent(kind, deadline, budget_ms)
        since = 0 if exp.check_from == "turn_start" else len(self.events.turn_log)
        item: dict[str, Any] | None
        if exp.aggregates:
            item, text = await self._aggregate(exp, kind, deadline, budget_ms, since)
        elif kind in FUNCTION_CALL_EVENTS:
            item, text = await self._calls(exp, kind, deadline, since)
        else:
            item = await self._opt_in(kind, deadline, since, anchor)
            text = match.summary(item)
            self._check_payload(item, exp)
            if exp.eval is not None:
                judge = self._judge()
                judge.add_assistant_message(match.event_text(item))
                await self._verdict(exp.eval, match.event_text(item))
        self._last_match_at = time.monotonic()
        return item, text

    async def _opt_in(
        self, kind: str, deadline: float, since: int, anchor: float
    ) -> dict[str, Any]:
        """The next ``kind`` event; for one a bot sends only on request, fail at once when
        what would come with it arrived and it has never been seen."""
        opt_in = match.OPT_IN.get(kind)
        waiting = asyncio.ensure_future(self.events.next_event(kind, deadline, since=since))
        if opt_in is None:
            return await waiting
        watcher = asyncio.ensure_future(self._watch_opt_in(kind, opt_in, anchor, deadline))
        try:
            done, _ = await asyncio.wait({waiting, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if waiting in done:
                return waiting.result()
            watcher.result()  # raises match.Failed
            return await waiting
        finally:
            for task in (waiting, watcher):
                task.cancel()
            await asyncio.gather(waiting, watcher, return_exceptions=True)

    async def _watch_opt_in(
        self, kind: str, opt_in: tuple[str, str], anchor: float, deadline: float
    ) -> None:
        trigger, setting = opt_in
        while self.events.latest.get(trigger, 0.0) < anchor:
            await self.events.seen(trigger, deadline)
            if self.events.latest.get(trigger, 0.0) < anchor:
                await self.events.changed()
        await asyncio.sleep(SETTING_GRACE_S)  # the event may trail its trigger a little
        if kind not in self.events.latest:
            raise match.Failed(
                f"the bot sent {trigger!r} but has never sent {kind!r}: it sends those only "
                f"on request ({setting} on the bot; pipecat.evals' eval transport asks for it)"
            )
        await asyncio.Event().wait()  # seen before: leave it to the wait itself

    async def _absent(self, kind: str, deadline: float, budget_ms: int) -> str:
        while True:
            try:
                item = await self.events.next_event(kind, deadline)
            except (TimeoutError, BotEndedError):
                return f"no {kind!r} for {budget_ms}ms"
            began = max(
                self.events.latest.get("llm_started", 0.0),
                self.events.latest.get("bot_started_speaking", 0.0),
            )
            if kind == "llm_response" and began <= self._last_match_at:
                continue  # the rest of the reply already matched, not a new one
            raise match.Failed(
                f"expected no {kind!r} within {budget_ms}ms, but one arrived: {match.summary(item)}"
            )

    async def _aggregate(
        self, exp: Expectation, kind: str, deadline: float, budget_ms: int, since: int
    ) -> tuple[dict[str, Any], str]:
        aggregate, last, reason = "", None, ""
        pending: dict[str, Any] | None = None
        while True:
            if pending is not None:
                item, pending = pending, None
            else:
                try:
                    item = await self.events.next_event(kind, deadline, since=since)
                except TimeoutError:
                    if last is None:
                        raise
                    raise match.Failed(
                        f"not satisfied within {budget_ms}ms: "
                        f"{aggregate.strip()[: match.SHOWN]!r} {reason}".rstrip()
                    ) from None
            last = item
            delta = match.event_text(item)
            aggregate += delta
            self._check_excludes(aggregate, exp)
            if exp.eval is not None:
                self._judge().add_assistant_message(delta)
            if exp.text_contains is not None and not match.contains(aggregate, exp.text_contains):
                reason = f"does not contain {exp.text_contains!r}"
            elif exp.eval is not None and aggregate.strip():
                verdict = await self._judge().evaluate(exp.eval)
                if verdict.passed:
                    return last, aggregate.strip()[: match.SHOWN]
                reason = f"judge said {verdict.verdict}: {verdict.reason}".rstrip(": ")
                if verdict.verdict == "no":
                    # A "no" stands once the reply is over: the bot stopped speaking and
                    # no more of it came within a short grace (pipecat.evals' rule).
                    pending = await self._rest_of_reply(kind, deadline, since)
                    if pending is None:
                        raise match.Failed(f"eval {exp.eval!r}: {reason}")
            elif exp.eval is None:
                return last, aggregate.strip()[: match.SHOWN]
            aggregate += " "

    async def _rest_of_reply(self, kind: str, deadline: float, since: int) -> dict[str, Any] | None:
        until = deadline
        if self.events.quiet.is_set():
            until = min(deadline, time.monotonic() + JUDGE_NO_GRACE_S)
        try:
            return await self.events.next_event(kind, until, since=since)
        except (TimeoutError, BotEndedError):
            return None

    async def _calls(
        self, exp: Expectation, kind: str, deadline: float, since: int
    ) -> tuple[dict[str, Any] | None, str]:
        matched: list[str] = []
        last: dict[str, Any] | None = None
        for call in exp.calls or (Call(None),):

            def accept(item: dict[str, Any], call: Call = call) -> bool:
                return match.call_matches(item, call)

            try:
                last = await self.events.next_event(kind, deadline, since=since, accept=accept)
            except TimeoutError:
                near = [
                    e.get("args")
                    for e in self.events.unclaimed_since(since, kind)
                    if call.name is None or e.get("name") == call.name
                ]
                if call.args and near:
                    raise match.Failed(
                        f"no {call.name!r} call had args {dict(call.args)!r} (saw {near!r})"
                    ) from None
                seen = ", ".join(matched) or "none"
                raise match.Failed(
                    f"function call {call.name or 'any function'!r} not seen (matched: {seen})"
                ) from None
            if exp.eval is not None:
                verdict = await self._judge().evaluate_call(
                    str(last.get("name")), last.get("args"), exp.eval
                )
                if not verdict.passed:
                    shown = match.summary(last)
                    raise match.Failed(
                        f"eval {exp.eval!r} on {shown}: judge said no: {verdict.reason}"
                    )
            matched.append(match.summary(last))
        return last, ", ".join(matched)

    def _check_payload(self, item: Mapping[str, Any], exp: Expectation) -> None:
        text = match.event_text(item)
        if exp.text_contains is not None and not match.contains(text, exp.text_contains):
            raise match.Failed(
                f"text {text[: match.SHOWN]!r} does not contain {exp.text_contains!r}"
            )
        self._check_excludes(text, exp)
        if exp.marker is not None:
            wanted = ("short", "long") if exp.marker == "incomplete" else (exp.marker,)
            if item.get("kind") not in wanted:
                raise match.Failed(
                    f"marker {text!r} is {item.get('kind') or 'of no known kind'}, "
                    f"expected {exp.marker}"
                )
        problem = match.marker_format(item, exp)
        if problem is not None:
            raise match.Failed(problem)

    def _check_excludes(self, text: str, exp: Expectation) -> None:
        if exp.text_excludes is not None and match.contains(text, exp.text_excludes):
            raise match.Failed(
                f"text {text.strip()[: match.SHOWN]!r} contains {exp.text_excludes!r}"
            )

    def _judge(self) -> ScenarioJudge:
        if self.judge is None:
            raise match.Failed(
                "'eval:' needs a judge: run with --judge-url URL --judge-model NAME or "
                "--judge MODULE:CALLABLE"
            )
        return self.judge

    async def _verdict(self, criterion: str, text: str) -> None:
        verdict = await self._judge().evaluate(criterion)
        if not verdict.passed:
            raise match.Failed(
                f"eval {criterion!r} on {text[: match.SHOWN]!r}: judge said no: {verdict.reason}"
            )


async def run_scenario(
    scenario: ScriptedScenario,
    client: PipecatClient,
    *,
    judge: ScenarioJudge | JudgeFn | None = None,
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    stream: EventStream | None = None,
    memory: RunMemory | None = None,
    recording: ScenarioRecording | None = None,
    transcriber: Transcriber | None = None,
) -> ScenarioResult:
    """Play ``scenario`` on a READY ``client`` and check its expectations (see the module).

    ``judge``: a :class:`~lifecycle.testing.judge.ScenarioJudge` (closed by the caller) or a
    plain ``judge(criterion, text)`` callable. ``stream``: the client's event stream of
    :data:`~lifecycle.testing.scripted_events.WATCHED`, opened before connecting so the
    bot's greeting is not missed. A judge that cannot be reached or run stops the scenario
    with ``error`` set. ``recording``: the caller's audio also goes to it (``--record-dir``).
    ``transcriber``: in audio modality, the bot's speech of each utterance transcribed by it
    is the ``response`` (:mod:`lifecycle.testing.hearing`); ``stream`` must then also carry
    ``on_bot_audio``.
    """
    started = time.monotonic()
    scenario_judge: ScenarioJudge | None
    if judge is None or isinstance(judge, ScenarioJudge):
        scenario_judge = judge
    else:
        scenario_judge = CallableJudge(judge)
    run = _Run(
        scenario,
        client,
        scenario_judge,
        default_timeout_ms,
        memory or RunMemory(),
        recording,
        transcriber,
    )
    error = None
    try:
        await run.run(stream)
    except JudgeUnavailableError as exc:
        error = str(exc)
    return ScenarioResult(
        scenario,
        run.results,
        run.failures,
        time.monotonic() - started,
        error=error,
        notices=run.notices,
    )
