"""Checks a scenario file's values and builds :mod:`lifecycle.testing.scenario`'s dataclasses.

pipecat.evals' rules (``script.py``, ``scenario.py``, ``scenario_config.py``), with every
problem of a file collected (not only the first), each at its file and line, and a
"did you mean" for near-miss keys and events. Referenced files (WAV, images, includes)
must exist and decode; nothing is imported and no endpoint is contacted.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from lifecycle.testing import scenario_schema as schema
from lifecycle.testing.scenario_check_base import CheckerBase
from lifecycle.testing.scenario_errors import ScenarioFileError, ScenarioFileErrors
from lifecycle.testing.scenario_media import media_problem
from lifecycle.testing.scenario_model import (
    MAX_WITHIN_MS,
    Call,
    Expectation,
    JudgeBlock,
    ScenarioFile,
    ScriptedScenario,
    ScriptedTurn,
    SendAfter,
    UserBlock,
    audio_support_missing,
)
from lifecycle.testing.yaml_source import Located, read_yaml

__all__ = ["check_file", "file_kind"]

_JUDGEABLE: Final = frozenset({"response", "llm_response", "tts_response", "function_call"})
_ABSENT_CONFLICTS: Final = (
    "text_contains",
    "text_excludes",
    "eval",
    "calls",
    "name",
    "args",
    "marker",
    "marker_first",
    "markers",
    "text_after",
)
_MARKER_KEYS: Final = ("marker", "marker_first", "markers", "text_after")
_SIMULATION_MODULE: Final = "lifecycle.testing.simulation_file"
NO_JUDGE: Final = (
    "'eval:' needs a judge: give the file a 'judge:' block (judge.eval with service: "
    "ollama|openai, an endpoint:, or a factory:), or run with --judge-url URL --judge-model "
    "NAME, or --judge MODULE:CALLABLE"
)


def file_kind(root: Located) -> str:
    """``scenario``, ``fragment`` (a top-level list, or no turns/scenarios/persona) or
    ``manifest`` (a suite of bots)."""
    if not isinstance(root.value, dict):
        return "fragment"
    keys = set(root.value)
    if keys & {"turns", "scenarios", "persona"}:
        return "scenario"
    if "suite" in keys or len(keys & schema.MANIFEST_KEYS) >= 2:
        return "manifest"
    return "fragment"


def check_file(path: Path, *, judge_given: bool, modality: str | None = None) -> ScenarioFile:
    """The file's scenarios; :class:`ScenarioFileErrors` with every problem when invalid.

    ``modality`` (``test --modality``) replaces every ``user:`` block's before the checks.
    """
    root = read_yaml(path)
    checker = _Checker(path, judge_given=judge_given, modality=modality)
    result = checker.file(root)
    if checker.problems:
        unique = {(e.path, e.line, e.key, e.problem): e for e in checker.problems}
        raise ScenarioFileErrors(sorted(unique.values(), key=lambda e: (e.path, e.line)))
    assert result is not None
    return result


class _Checker(CheckerBase):
    """One file's checks: problems collected, dataclasses built from what is valid."""

    # --- file and scenarios ---------------------------------------------------------
    def file(self, root: Located) -> ScenarioFile | None:
        kind = file_kind(root)
        if kind == "manifest":
            self.problem(
                root,
                "",
                "a manifest (a suite of bots) is not supported: run its scenario files "
                "(pipecat-lifecycle test DIR) against the bot",
            )
            return None
        if kind == "fragment":
            self.problem(
                root,
                "",
                "a fragment (no turns:, scenarios: or persona: at its top), not a scenario file",
            )
            return None
        top = self.mapping(root, "the file", schema.FILE_KEYS)
        assert top is not None
        name = self.text(top, "name")
        if not name:
            self.problem(root, "name", "missing (a scenario file has a name:)")
            name = self.path.stem
        scenarios: list[Any] = []
        entries = top.get("scenarios")
        if entries is None:
            # pipecat.evals' older shape: one scenario's keys at the top of the file.
            scenarios.append(self.scenario(top, root, name))
        elif not isinstance(entries.value, list) or not entries.value:
            self.problem(entries, "scenarios", "must be a non-empty list of scenarios")
        else:
            defaults = {k: v for k, v in top.items() if k != "scenarios"}
            seen: dict[str, int] = {}
            for entry in entries.value:
                own = self.mapping(entry, "a scenario", schema.FILE_KEYS - {"scenarios"})
                if own is None:
                    continue
                if "scenarios" in entry.value:
                    self.problem(entry, "scenarios", "a scenario holds no scenarios: list")
                entry_name = self.text(own, "name")
                if not entry_name:
                    self.problem(entry, "name", "missing (every scenario has a name)")
                    continue
                full = f"{name}/{entry_name}"
                if full in seen:
                    self.problem(own["name"], "name", f"two scenarios named {entry_name!r}")
                seen[full] = entry.line
                scenarios.append(self.scenario({**defaults, **own}, entry, full))
        return ScenarioFile(
            self.path, name, tuple(s for s in scenarios if s is not None), tuple(self.notices)
        )

    def scenario(self, keys: Mapping[str, Located], at: Located, name: str) -> Any:
        if "persona" in keys and "turns" in keys:
            self.problem(at, "persona", "a scenario is scripted (turns:) or a simulation, not both")
            return None
        if "persona" in keys:
            return self.simulation(keys, at, name)
        turns_value = keys.get("turns")
        if turns_value is None:
            self.problem(at, "turns", "missing (turns: for a scripted scenario, or persona:)")
            return None
        for key in sorted(schema.SIMULATION_KEYS & set(keys)):
            self.problem(keys[key], key, "belongs to a simulation (a scenario with persona:)")
        if "trigger_disconnect" in keys:
            self.notice(keys["trigger_disconnect"], "trigger_disconnect", "deprecated, ignored")
        if "metrics" in keys:
            self.notice(
                keys["metrics"], "metrics", "scores simulations; ignored on a scripted scenario"
            )
        user = self.user_block(keys.get("user"))
        judge = self.judge_block(keys.get("judge"))
        turns: list[ScriptedTurn] = []
        if not isinstance(turns_value.value, list) or not turns_value.value:
            self.problem(turns_value, "turns", "must be a non-empty list of turns")
        else:
            for entry in turns_value.value:
                turn = self.turn(entry, user)
                if turn is not None:
                    turns.append(turn)
        runs = self.typed(keys, "runs", int, "a whole number")
        if runs is not None and not 1 <= runs <= 1000:
            self.problem(keys["runs"], "runs", "must be 1 to 1000")
        stop = self.typed(keys, "stop_on_failure", bool, "true or false")
        scenario = ScriptedScenario(
            name=name,
            path=self.path,
            line=at.line,
            turns=tuple(turns),
            stop_on_failure=True if stop is None else stop,
            evals=tuple(e for t in turns for e in t.expect if e.eval is not None),
            context=self.context(keys.get("context")),
            user=user,
            judge=judge,
            runs=runs or 1,
        )
        if scenario.evals and judge is None and not self.judge_given:
            first = scenario.evals[0]
            self.problems.append(ScenarioFileError(first.path, first.line, "eval", NO_JUDGE))
        return scenario

    def simulation(self, keys: Mapping[str, Located], at: Located, name: str) -> Any:
        if importlib.util.find_spec(_SIMULATION_MODULE) is None:
            self.problem(
                at,
                "persona",
                "simulations (persona:) need the simulated caller, which this build does "
                "not have yet",
            )
            return None
        module = importlib.import_module(_SIMULATION_MODULE)
        data = {key: value.plain() for key, value in keys.items()}
        data["name"] = name

        def line_of(dotted: str) -> int:
            item: Located | None = keys.get(dotted.split(".")[0])
            for part in dotted.split(".")[1:]:
                if item is None:
                    break
                if isinstance(item.value, dict):
                    item = item.value.get(part)
                elif (
                    isinstance(item.value, list) and part.isdigit() and int(part) < len(item.value)
                ):
                    item = item.value[int(part)]
                else:
                    break
            return item.line if item is not None else at.line

        try:
            return module.parse_simulation(data, str(self.path), line_of=line_of)
        except ValueError as exc:  # its SimulationError: file:line: key: problem
            self.problems.append(
                ScenarioFileError(
                    getattr(exc, "path", str(self.path)),
                    getattr(exc, "line", at.line),
                    getattr(exc, "key", ""),
                    getattr(exc, "problem", str(exc)),
                )
            )
        return None

    def context(self, value: Located | None) -> tuple[Mapping[str, Any], ...]:
        if value is None or value.value is None:
            return ()
        if not isinstance(value.value, list):
            self.problem(value, "context", "must be a list of messages ({role, content})")
            return ()
        messages = []
        for item in value.value:
            if not isinstance(item.value, dict) or "role" not in item.value:
                self.problem(item, "context", "each message is a mapping with a role:")
                continue
            messages.append(item.plain())
        return tuple(messages)

    def user_block(self, value: Located | None) -> UserBlock:
        if value is None or value.value is None:
            return UserBlock(self.modality or "text")
        items = self.mapping(value, "the user: block", schema.USER_KEYS)
        if items is None:
            return UserBlock()
        modality = self.text(items, "modality") or "text"
        if modality not in ("text", "audio"):
            self.problem(items["modality"], "modality", "must be audio or text")
            return UserBlock()
        modality = self.modality or modality
        speech = items.get("speech")
        if speech is not None:
            self.mapping(speech, "the user.speech: block", schema.SPEECH_KEYS)
        if modality == "audio" and (missing := audio_support_missing()):
            self.problem(value, "user", f"modality: audio: {missing}")
        plain = speech.plain() if speech is not None and isinstance(speech.value, dict) else None
        return UserBlock(modality, plain, value.line, self.noise(items.get("noise")))

    def noise(self, value: Located | None) -> Any:
        """A ``user:`` block's ``noise:`` (this project's key: speech in noise) or None."""
        from lifecycle.testing.noise import noise_from_block

        if value is None or not isinstance(value.value, dict):
            if value is not None:
                self.problem(value, "noise", "must be a mapping: {kind, snr_db} or {file, snr_db}")
            return None
        from lifecycle.testing.audio import read_file

        try:
            noise = noise_from_block(value.plain(), Path(value.path).parent)
            if noise.path is not None:
                read_file(noise.path)  # it exists and decodes
        except ValueError as exc:
            self.problem(value, "noise", str(exc).removeprefix("noise: "))
            return None
        return noise

    def judge_block(self, value: Located | None) -> JudgeBlock | None:
        if value is None or value.value is None:
            return None
        items = self.mapping(value, "the judge: block", schema.JUDGE_KEYS)
        if items is None:
            return None
        modality = self.text(items, "modality") or "text"
        if modality not in ("text", "audio"):
            self.problem(items["modality"], "modality", "must be audio or text")
        eval_value = items.get("eval")
        eval_block: dict[str, Any] | None = None
        if eval_value is not None and eval_value.value is not None:
            eval_items = self.mapping(eval_value, "the judge.eval: block", schema.JUDGE_EVAL_KEYS)
            if eval_items is not None:
                self.judge_service(eval_items)
                eval_block = eval_value.plain()
        transcription = items.get("transcription")
        if modality == "audio":
            if transcription is None:
                self.problem(value, "judge", "modality: audio needs a transcription: block")
            elif missing := audio_support_missing():
                self.problem(value, "judge", f"modality: audio: {missing}")
        if transcription is not None:
            self.mapping(transcription, "the judge.transcription: block", schema.TRANSCRIPTION_KEYS)
            service = (
                transcription.plain().get("service")
                if isinstance(transcription.value, dict)
                else None
            )
            self.notice(
                transcription,
                "transcription",
                f"{service or 'the service'} is not run: the judge reads the bot's own words "
                "(its bot-output), not a transcription of its audio",
            )
        return JudgeBlock(
            modality,
            eval_block,
            transcription.plain() if transcription is not None else None,
            value.line,
            value.path,
        )

    def judge_service(self, items: Mapping[str, Located]) -> None:
        factory = self.text(items, "factory")
        if factory is not None and "." not in factory.strip(". "):
            self.problem(items["factory"], "factory", "must be a dotted path: module.callable")
        service = self.text(items, "service")
        if factory is None and service is not None and service.lower() not in ("ollama", "openai"):
            self.problem(
                items["service"],
                "service",
                f"unknown service {service!r} (ollama, openai; any other OpenAI-compatible "
                "endpoint: endpoint: URL, or --judge-url)",
            )
        for key in ("endpoint", "model", "api_key_env"):
            self.text(items, key)
        extra = items.get("extra")
        if extra is not None and not isinstance(extra.value, dict):
            self.problem(extra, "extra", "must be a mapping of request parameters")
        explainer = items.get("explainer")
        if explainer is not None and explainer.value is not False:
            self.mapping(explainer, "the explainer: block", schema.JUDGE_EVAL_KEYS)

    # --- turns and expectations -------------------------------------------------------
    def turn(self, entry: Located, user_block: UserBlock) -> ScriptedTurn | None:
        items = self.mapping(entry, "a turn", schema.TURN_KEYS)
        if items is None:
            return None
        user, parts = self.user(items.get("user"))
        dtmf = self.dtmf(items.get("dtmf"))
        if user is not None and dtmf is not None:
            self.problem(items["dtmf"], "dtmf", "a turn presses keys or talks, not both")
        audio = image = None
        if (audio_value := items.get("audio")) is not None:
            audio = self.media(audio_value, "audio")
            if dtmf is not None:
                self.problem(audio_value, "audio", "a turn plays audio or presses keys, not both")
            if parts is not None:
                self.problem(audio_value, "audio", "a recording has its own pauses")
        if parts is not None and user_block.modality != "audio":
            self.problem(
                items["user"], "user", "pauses need user.modality: audio (a text turn has none)"
            )
        if (image_value := items.get("image")) is not None:
            image = self.media(image_value, "image")
        send_after = None
        if (send_value := items.get("send_after")) is not None:
            send_after = self.send_after(send_value)
            if user is None and dtmf is None and audio is None:
                self.problem(send_value, "send_after", "schedules a send: the turn sends nothing")
        expect: list[Expectation] = []
        if (expect_value := items.get("expect")) is not None and expect_value.value is not None:
            if not isinstance(expect_value.value, list):
                self.problem(expect_value, "expect", "must be a list of expectations")
            else:
                for item in expect_value.value:
                    expectation = self.expectation(item)
                    if expectation is not None:
                        expect.append(expectation)
        return ScriptedTurn(
            line=entry.line,
            user=user,
            audio=audio,
            dtmf=dtmf,
            expect=tuple(expect),
            parts=parts,
            image=image,
            send_after=send_after,
            path=entry.path,
            noise=self.noise(items["noise"]) if "noise" in items else None,
        )

    def user(self, value: Located | None) -> tuple[str | None, tuple[str | int, ...] | None]:
        if value is None or value.value is None:
            return None, None
        if isinstance(value.value, str):
            return value.value, None
        if not isinstance(value.value, list):
            self.problem(value, "user", "must be text, or a list of text and pause_ms: pauses")
            return None, None
        parts: list[str | int] = []
        for item in value.value:
            pause = item.value.get("pause_ms") if isinstance(item.value, dict) else None
            if isinstance(item.value, str) and item.value.strip():
                parts.append(item.value.strip())
            elif (
                isinstance(item.value, dict)
                and set(item.value) == {"pause_ms"}
                and pause is not None
                and isinstance(pause.value, int)
                and not isinstance(pause.value, bool)
                and 0 < pause.value <= MAX_WITHIN_MS
            ):
                parts.append(pause.value)
            else:
                self.problem(item, "user", "items are text or pause_ms: <milliseconds>")
        texts = [p for p in parts if isinstance(p, str)]
        if not texts:
            self.problem(value, "user", "has pauses but no text")
            return None, None
        return " ".join(texts), tuple(parts)

    def dtmf(self, value: Located | None) -> str | None:
        if value is None or value.value is None:
            return None
        keys = value.value
        if isinstance(keys, int) and not isinstance(keys, bool):
            keys = str(keys)  # `dtmf: 123` reads as a number; the keys are its digits
        if not isinstance(keys, str) or not keys or set(keys) - schema.DTMF_KEYS:
            self.problem(value, "dtmf", f"keys are 0-9, * and # (got {value.value!r})")
            return None
        return keys

    def media(self, value: Located, key: str) -> Path | None:
        """An ``audio:`` or ``image:`` file: it exists and decodes (else a problem, None)."""
        path = self.local_file(value, key)
        if path is None:
            return None
        problem = media_problem(path, key)
        if problem is not None:
            self.problem(value, key, problem)
            return None
        return path

    def send_after(self, value: Located) -> SendAfter | None:
        items = self.mapping(value, "send_after:", schema.SEND_AFTER_KEYS)
        if items is None:
            return None
        event = self.text(items, "event")
        if event is not None and event not in schema.EVENTS:
            self.problem(
                items["event"],
                "event",
                f"unknown event {event!r}{schema.did_you_mean(event, schema.EVENTS)}",
            )
        delay = self.typed(items, "delay_ms", int, "a whole number of milliseconds")
        delay = delay or 0
        if not 0 <= delay <= MAX_WITHIN_MS:
            self.problem(items["delay_ms"], "delay_ms", f"must be 0 to {MAX_WITHIN_MS}")
        if event is None and delay == 0:
            self.problem(value, "send_after", "needs an event: or a positive delay_ms:")
        return SendAfter(event, delay, value.line)

    def expectation(self, entry: Located) -> Expectation | None:
        items = self.mapping(entry, "an expectation", schema.EXPECT_KEYS)
        if items is None:
            return None
        event = self.text(items, "event")
        if event is None:
            self.problem(entry, "event", "missing (every expectation names an event)")
            return None
        line = items["event"].line
        if event not in schema.EVENTS:
            hint = schema.did_you_mean(event, schema.EVENTS)
            self.problem(items["event"], "event", f"unknown event {event!r}{hint}")
            return None
        within = self.typed(items, "within_ms", int, "a whole number of milliseconds")
        if within is not None and not 0 < within <= MAX_WITHIN_MS:
            self.problem(items["within_ms"], "within_ms", f"must be 1 to {MAX_WITHIN_MS}")
            within = None
        absent = self.typed(items, "absent", bool, "true or false") or False
        check_from = self.text(items, "check_from") or "previous"
        if check_from not in schema.CHECK_FROM:
            self.problem(items["check_from"], "check_from", "must be previous or turn_start")
        if absent:
            if "check_from" in items:
                self.problem(items["check_from"], "check_from", "cannot go with absent: true")
            for key in _ABSENT_CONFLICTS:
                if key in items:
                    self.problem(
                        items[key], key, "cannot go with absent: true (it matches the type)"
                    )
        criterion = self.text(items, "eval")
        if criterion is not None and event == "function_call_stopped":
            self.problem(
                items["eval"],
                "eval",
                "a stopped call has no arguments to judge: put the eval: on the function_call",
            )
        elif criterion is not None and event not in _JUDGEABLE:
            self.notice(items["eval"], "eval", f"on {event!r} is unlikely to be meaningful")
        for key in _MARKER_KEYS:
            if key in items and event != "llm_marker":
                self.problem(items[key], key, f"only applies to llm_marker, not {event!r}")
        marker = self.text(items, "marker")
        if marker is not None and marker not in schema.MARKER_KINDS:
            self.problem(
                items["marker"], "marker", f"must be one of {', '.join(schema.MARKER_KINDS)}"
            )
        calls = self.calls(items, event) if not absent else ()
        return Expectation(
            event=event,
            line=line,
            within_ms=within,
            text_contains=self.text(items, "text_contains"),
            text_excludes=self.text(items, "text_excludes"),
            calls=calls,
            absent=absent,
            check_from=check_from if check_from in schema.CHECK_FROM else "previous",
            eval=criterion,
            marker=marker,
            marker_first=self.typed(items, "marker_first", bool, "true or false"),
            markers=self.typed(items, "markers", int, "a whole number"),
            text_after=self.typed(items, "text_after", bool, "true or false"),
            path=entry.path,
        )

    def calls(self, items: Mapping[str, Located], event: str) -> tuple[Call, ...]:
        if event not in schema.FUNCTION_CALL_EVENTS:
            for key in ("calls", "name", "args"):
                if key in items:
                    self.problem(items[key], key, "only function_call(_stopped) take calls")
            return ()
        raw = items.get("calls")
        if raw is None:
            # The name:/args: shorthand, or nothing: any one call.
            return (Call(self.text(items, "name"), self.args(items.get("args"))),)
        if not isinstance(raw.value, list) or not raw.value:
            self.problem(raw, "calls", "must be a non-empty list of calls")
            return ()
        calls = []
        for entry in raw.value:
            if isinstance(entry.value, str):
                calls.append(Call(entry.value))
                continue
            call = self.mapping(entry, "a call", schema.CALL_KEYS)
            if call is not None:
                calls.append(Call(self.text(call, "name"), self.args(call.get("args"))))
        return tuple(calls)

    def args(self, value: Located | None) -> Mapping[str, Any] | None:
        if value is None or value.value is None:
            return None
        if not isinstance(value.value, dict):
            self.problem(value, "args", "must be a mapping")
            return None
        plain: Mapping[str, Any] = value.plain()
        return plain
