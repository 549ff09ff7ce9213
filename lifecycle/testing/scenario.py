"""pipecat.evals' scripted scenario files: the subset this toolkit runs, parsed and validated.

The format is ``pipecat.evals.script``'s (pipecat-ai 1.14). A file holds ``name:`` and a
``scenarios:`` list; each scenario has a ``name:`` and ``turns:`` (``turns:`` and
``stop_on_failure:`` may also sit at the top of the file as defaults). A turn sends
``user:`` text (RTVI ``send-text``), plays an ``audio:`` WAV file (relative to the scenario
file), or presses ``dtmf:`` keys, then expects events in order::

    name: greeting
    scenarios:
      - name: says_hello
        turns:
          - user: "hello"
            expect:
              - event: llm_response
                text_contains: "hello"
                within_ms: 5000

Supported expectation keys: ``event``, ``within_ms``, ``text_contains``, ``text_excludes``,
``calls`` (``name``/``args``), ``absent``, ``check_from`` (``previous``/``turn_start``), and
``eval`` (needs a judge). Everything else pipecat.evals knows (``judge:``, ``persona:``,
``user:`` blocks, ``context:``, ``send_after:``, ``image:``, ``marker:``, ``!include`` ...) is
rejected as unsupported, and a key nobody knows as unknown: :class:`ScenarioFileError`
names the file, the line and the key. The whole file is checked before anything runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Final

__all__ = [
    "EVENTS",
    "Call",
    "Expectation",
    "Scenario",
    "ScenarioFileError",
    "Turn",
    "load_scenarios",
    "load_session_hook",
]

EVENTS: Final = frozenset(
    {
        "user_started_speaking",
        "user_stopped_speaking",
        "user_transcription",
        "bot_started_speaking",
        "bot_stopped_speaking",
        "llm_started",
        "llm_response",
        "tts_response",
        "response",
        "function_call",
        "function_call_stopped",
    }
)
"""The scenario events supported (pipecat.evals' names)."""
FUNCTION_CALL_EVENTS: Final = frozenset({"function_call", "function_call_stopped"})
CHECK_FROM: Final = ("previous", "turn_start")
DTMF_KEYS: Final = frozenset("0123456789*#")

# What pipecat.evals accepts that this runner does not (an error saying "unsupported").
_UNSUPPORTED_FILE: Final = frozenset(
    {"judge", "user", "context", "persona", "goal", "success", "trigger_disconnect"}
    | {"simulation", "max_turns", "modality", "description", "tags"}
)
_UNSUPPORTED_TURN: Final = frozenset({"send_after", "image", "parts"})
_UNSUPPORTED_EXPECT: Final = frozenset(
    {"marker", "marker_first", "markers", "text_after", "name", "args"}
)
_UNSUPPORTED_EVENTS: Final = frozenset(
    {"vad_user_started_speaking", "vad_user_stopped_speaking", "llm_marker", "image"}
    | {"bot_backchannel", "user_backchannel", "bot_interrupted"}
)
_FILE_KEYS: Final = frozenset({"name", "scenarios", "turns", "stop_on_failure"})
_SCENARIO_KEYS: Final = frozenset({"name", "turns", "stop_on_failure"})
_TURN_KEYS: Final = frozenset({"user", "audio", "dtmf", "expect"})
_EXPECT_KEYS: Final = frozenset(
    {"event", "within_ms", "text_contains", "text_excludes", "calls", "absent", "check_from"}
    | {"eval"}
)
_CALL_KEYS: Final = frozenset({"name", "args"})


class ScenarioFileError(ValueError):
    """A scenario file that is not valid YAML or not the supported format.

    ``str()`` is ``FILE:LINE: KEY: problem``.
    """

    def __init__(self, path: str, line: int, key: str, problem: str) -> None:
        """Where (``path``, 1-based ``line``), which key, and what is wrong."""
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(frozen=True)
class Call:
    """One function call a ``calls:`` entry expects: ``name`` (None: any), ``args`` subset."""

    name: str | None
    args: Mapping[str, Any] | None = None

    @property
    def signature(self) -> str:
        """``name(arg=value, ...)``, as pipecat.evals shows it."""
        name = self.name or "any function"
        if not self.args:
            return name
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


@dataclass(frozen=True)
class Expectation:
    """One expected event of a turn (pipecat.evals' ``EvalExpectation``, the subset)."""

    event: str
    line: int
    within_ms: int | None = None
    text_contains: str | None = None
    text_excludes: str | None = None
    calls: tuple[Call, ...] = ()
    absent: bool = False
    check_from: str = "previous"
    eval: str | None = None

    @property
    def aggregates(self) -> bool:
        """Whether the check accumulates the reply's segments (pipecat.evals' rule)."""
        if self.event in ("response", "llm_response", "tts_response"):
            return self.text_contains is not None or self.eval is not None
        if self.event == "user_transcription":
            return self.text_contains is not None and self.eval is None
        return False

    @property
    def label(self) -> str:
        """The event with its main check, for tables and messages."""
        if self.absent:
            return f"{self.event} (absent)"
        if self.calls:
            return f"{self.event} {', '.join(c.signature for c in self.calls)}"
        if self.text_contains is not None:
            return f"{self.event} ~ {self.text_contains!r}"
        return self.event


@dataclass(frozen=True)
class Turn:
    """One turn: send ``user`` text, play ``audio``, press ``dtmf`` (or nothing), then expect."""

    line: int
    user: str | None = None
    audio: Path | None = None
    dtmf: str | None = None
    expect: tuple[Expectation, ...] = ()

    @property
    def label(self) -> str:
        """What the turn sends, for tables and messages."""
        if self.audio is not None:
            return f"audio {self.audio.name}"
        if self.dtmf is not None:
            return f"dtmf {self.dtmf!r}"
        if self.user is not None:
            return repr(self.user)
        return "(observe)"


@dataclass(frozen=True)
class Scenario:
    """One scripted scenario, named ``<file name>/<scenario name>`` as pipecat.evals does."""

    name: str
    path: Path
    line: int
    turns: tuple[Turn, ...]
    stop_on_failure: bool = True
    evals: tuple[Expectation, ...] = field(default=())
    """Its expectations with ``eval:`` (they need a judge)."""


# --------------------------------------------------------------------------- YAML with lines


class _Value:
    """A YAML value with the line it starts on (1-based)."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


def _compose(path: Path) -> Any:
    """The file as nested dict/list of :class:`_Value` (PyYAML's node marks give lines)."""
    import yaml

    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(name, 0, "", f"cannot read the file ({exc})") from None
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 0
            raise ScenarioFileError(name, line, "", f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ScenarioFileError(name, 0, "", f"not valid YAML: {exc}") from None
        if node is None:
            raise ScenarioFileError(name, 1, "", "the file is empty")
        return _convert(loader, node, name)
    finally:
        loader.dispose()


def _convert(loader: Any, node: Any, name: str) -> _Value:
    import yaml

    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        items: dict[str, _Value] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise ScenarioFileError(name, key_node.start_mark.line + 1, str(key), "not a name")
            if key in items:
                raise ScenarioFileError(name, key_node.start_mark.line + 1, key, "given twice")
            items[key] = _convert(loader, value_node, name)
            items[key].line = key_node.start_mark.line + 1
        return _Value(items, line)
    if isinstance(node, yaml.SequenceNode):
        return _Value([_convert(loader, item, name) for item in node.value], line)
    if not node.tag.startswith("tag:yaml.org,2002:"):
        raise ScenarioFileError(name, line, node.tag, "unsupported YAML tag (no !include here)")
    try:
        return _Value(loader.construct_object(node), line)
    except yaml.YAMLError as exc:
        raise ScenarioFileError(name, line, "", f"not valid YAML: {exc}") from None


# --------------------------------------------------------------------------- validation


class _Checker:
    """Validates one file's values and builds the dataclasses (errors name file/line/key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def error(self, line: int, key: str, problem: str) -> ScenarioFileError:
        return ScenarioFileError(self.name, line, key, problem)

    def keys(
        self, where: str, mapping: _Value, allowed: frozenset[str], unsupported: frozenset[str]
    ) -> dict[str, _Value]:
        if not isinstance(mapping.value, dict):
            raise self.error(mapping.line, where, "must be a mapping")
        items: dict[str, _Value] = mapping.value
        for key, value in items.items():
            if key in unsupported:
                raise self.error(
                    value.line, key, f"not supported by pipecat-lifecycle test (in {where})"
                )
            if key not in allowed:
                raise self.error(value.line, key, f"unknown key in {where}")
        return items

    def typed(self, items: Mapping[str, _Value], key: str, kind: type, what: str) -> Any:
        value = items.get(key)
        if value is None:
            return None
        ok = isinstance(value.value, kind) and not (kind is int and isinstance(value.value, bool))
        if not ok:
            raise self.error(value.line, key, f"must be {what}, not {value.value!r}")
        return value.value

    def text(self, items: Mapping[str, _Value], key: str) -> str | None:
        value: str | None = self.typed(items, key, str, "a string")
        return value

    def file(self, root: _Value) -> list[Scenario]:
        items = self.keys("the file", root, _FILE_KEYS, _UNSUPPORTED_FILE)
        file_name = self.text(items, "name") or self.path.stem
        default_stop = self.typed(items, "stop_on_failure", bool, "true or false")
        default_turns = items.get("turns")
        scenarios_value = items.get("scenarios")
        if scenarios_value is None:
            if default_turns is None:
                raise self.error(root.line, "scenarios", "missing (a list of scenarios)")
            # pipecat.evals' deprecated shape: one scenario's keys at the top of the file.
            return [self._scenario(items, root.line, file_name, None, None)]
        if not isinstance(scenarios_value.value, list) or not scenarios_value.value:
            raise self.error(scenarios_value.line, "scenarios", "must be a non-empty list")
        result = []
        names: set[str] = set()
        for entry in scenarios_value.value:
            entry_items = self.keys("a scenario", entry, _SCENARIO_KEYS, _UNSUPPORTED_FILE)
            if "name" not in entry_items:
                raise self.error(entry.line, "name", "missing (every scenario has a name)")
            scenario = self._scenario(
                entry_items, entry.line, file_name, default_turns, default_stop
            )
            if scenario.name in names:
                raise self.error(entry.line, "name", f"two scenarios named {scenario.name!r}")
            names.add(scenario.name)
            result.append(scenario)
        return result

    def _scenario(
        self,
        items: Mapping[str, _Value],
        line: int,
        file_name: str,
        default_turns: _Value | None,
        default_stop: bool | None,
    ) -> Scenario:
        name = self.text(items, "name") or file_name
        turns_value = items.get("turns", default_turns)
        if turns_value is None:
            raise self.error(line, "turns", "missing (a list of turns)")
        if not isinstance(turns_value.value, list) or not turns_value.value:
            raise self.error(turns_value.line, "turns", "must be a non-empty list")
        stop = self.typed(items, "stop_on_failure", bool, "true or false")
        turns = tuple(self._turn(t) for t in turns_value.value)
        full_name = name if name == file_name else f"{file_name}/{name}"
        return Scenario(
            name=full_name,
            path=self.path,
            line=line,
            turns=turns,
            stop_on_failure=(default_stop if default_stop is not None else True)
            if stop is None
            else stop,
            evals=tuple(e for t in turns for e in t.expect if e.eval is not None),
        )

    def _turn(self, entry: _Value) -> Turn:
        items = self.keys("a turn", entry, _TURN_KEYS, _UNSUPPORTED_TURN)
        user_value = items.get("user")
        if user_value is not None and isinstance(user_value.value, list):
            raise self.error(user_value.line, "user", "a list of text and pauses is not supported")
        user = self.text(items, "user")
        audio = self.text(items, "audio")
        dtmf_value = items.get("dtmf")
        if dtmf_value is not None and isinstance(dtmf_value.value, int):
            raise self.error(dtmf_value.line, "dtmf", 'quote the keys: dtmf: "123#"')
        dtmf = self.text(items, "dtmf")
        if dtmf is not None:
            dtmf_line = items["dtmf"].line
            if user is not None or audio is not None:
                raise self.error(dtmf_line, "dtmf", "a turn presses keys or talks, not both")
            if not dtmf or set(dtmf) - DTMF_KEYS:
                raise self.error(dtmf_line, "dtmf", f"keys are 0-9, * and # (got {dtmf!r})")
        audio_path: Path | None = None
        if audio is not None:
            audio_path = (self.path.parent / audio).resolve()
            if not audio_path.is_file():
                raise self.error(items["audio"].line, "audio", f"no such file: {audio_path}")
        expect_value = items.get("expect")
        expect: tuple[Expectation, ...] = ()
        if expect_value is not None:
            if not isinstance(expect_value.value, list):
                raise self.error(expect_value.line, "expect", "must be a list of expectations")
            expect = tuple(self._expectation(e) for e in expect_value.value)
        return Turn(line=entry.line, user=user, audio=audio_path, dtmf=dtmf, expect=expect)

    def _expectation(self, entry: _Value) -> Expectation:
        items = self.keys("an expectation", entry, _EXPECT_KEYS, _UNSUPPORTED_EXPECT)
        event = self.text(items, "event")
        if event is None:
            raise self.error(entry.line, "event", "missing (every expectation names an event)")
        line = items["event"].line
        if event in _UNSUPPORTED_EVENTS:
            raise self.error(line, "event", f"{event!r} is not supported by pipecat-lifecycle")
        if event not in EVENTS:
            raise self.error(line, "event", f"unknown event {event!r}")
        within = self.typed(items, "within_ms", int, "an integer (milliseconds)")
        if within is not None and within <= 0:
            raise self.error(items["within_ms"].line, "within_ms", "must be positive")
        absent = self.typed(items, "absent", bool, "true or false") or False
        check_from = self.text(items, "check_from") or "previous"
        if check_from not in CHECK_FROM:
            raise self.error(
                items["check_from"].line, "check_from", "must be previous or turn_start"
            )
        calls = self._calls(items.get("calls"), event)
        expectation = Expectation(
            event=event,
            line=line,
            within_ms=within,
            text_contains=self.text(items, "text_contains"),
            text_excludes=self.text(items, "text_excludes"),
            calls=calls,
            absent=absent,
            check_from=check_from,
            eval=self.text(items, "eval"),
        )
        if absent:
            for key in ("text_contains", "text_excludes", "eval", "calls"):
                if key in items:
                    raise self.error(
                        items[key].line, key, "cannot go with absent: true (it matches the type)"
                    )
        if expectation.eval is not None and event == "function_call_stopped":
            raise self.error(items["eval"].line, "eval", "function_call_stopped takes no eval")
        return expectation

    def _calls(self, value: _Value | None, event: str) -> tuple[Call, ...]:
        if value is None:
            return ()
        if event not in FUNCTION_CALL_EVENTS:
            raise self.error(value.line, "calls", "only function_call(_stopped) take calls")
        if not isinstance(value.value, list) or not value.value:
            raise self.error(value.line, "calls", "must be a non-empty list of calls")
        calls = []
        for entry in value.value:
            items = self.keys("a call", entry, _CALL_KEYS, frozenset())
            args = items.get("args")
            if args is not None and not isinstance(args.value, dict):
                raise self.error(args.line, "args", "must be a mapping")
            calls.append(
                Call(
                    name=self.text(items, "name"),
                    args=None if args is None else _plain(args),
                )
            )
        return tuple(calls)


def _plain(value: _Value) -> Any:
    """A :class:`_Value` tree back to plain Python values."""
    if isinstance(value.value, dict):
        return {k: _plain(v) for k, v in value.value.items()}
    if isinstance(value.value, list):
        return [_plain(v) for v in value.value]
    return value.value


def load_scenarios(path: str | PathLike[str]) -> list[Scenario]:
    """The scenarios of one file, validated; :class:`ScenarioFileError` when it is not valid."""
    file_path = Path(path)
    return _Checker(file_path).file(_compose(file_path))


class ScenarioFailedError(AssertionError):
    """A scenario run as a load session's hook failed (the message is its first failure)."""


def load_session_hook(path: str | PathLike[str]) -> Callable[[Any], Awaitable[None]]:
    """A ``pipecat-lifecycle load --scenario FILE`` hook: every scenario of the file, in turn.

    The hook takes the load run's session context (its ``client`` is READY) and raises
    :class:`ScenarioFailedError` when a scenario fails; the file is validated here, once.
    """
    scenarios = load_scenarios(path)

    async def run_file(context: Any) -> None:
        from lifecycle.testing.runner import run_scenario

        for scenario in scenarios:
            result = await run_scenario(scenario, context.client)
            if not result.passed:
                raise ScenarioFailedError(result.failures[0])

    return run_file
