"""The scenario file's typed values: turns, expectations, blocks and the file itself.

Read and checked by :mod:`lifecycle.testing.scenario_check`, run by
:mod:`lifecycle.testing.scripted`; :mod:`lifecycle.testing.scenario` is the public face that
loads a file (it re-exports every name here). Kept apart so the checker and the runner import
these values without importing the loader back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from lifecycle.testing.scenario_errors import ScenarioFileError, ScenarioFileErrors
from lifecycle.testing.scenario_schema import EVENTS, FUNCTION_CALL_EVENTS

__all__ = [
    "EVENTS",
    "FUNCTION_CALL_EVENTS",
    "MAX_WITHIN_MS",
    "Call",
    "Expectation",
    "JudgeBlock",
    "ScenarioFile",
    "ScenarioFileError",
    "ScenarioFileErrors",
    "ScriptedScenario",
    "ScriptedTurn",
    "SendAfter",
    "UserBlock",
    "audio_support_missing",
]

MAX_WITHIN_MS: Final = 3_600_000
"""The largest ``within_ms`` accepted (one hour); more is a mistake, not a budget."""


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
    """One expected event of a turn (pipecat.evals' ``EvalExpectation``)."""

    event: str
    line: int
    within_ms: int | None = None
    text_contains: str | None = None
    text_excludes: str | None = None
    calls: tuple[Call, ...] = ()
    absent: bool = False
    check_from: str = "previous"
    eval: str | None = None
    marker: str | None = None
    marker_first: bool | None = None
    markers: int | None = None
    text_after: bool | None = None
    path: str = ""
    """The file the expectation is written in (an included fragment, maybe)."""

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
        if self.calls and any(c.name or c.args for c in self.calls):
            return f"{self.event} {', '.join(c.signature for c in self.calls)}"
        if self.marker is not None:
            return f"{self.event} {self.marker}"
        if self.text_contains is not None:
            return f"{self.event} ~ {self.text_contains!r}"
        if self.eval is not None:
            return f"{self.event} (eval)"
        return self.event


@dataclass(frozen=True)
class SendAfter:
    """When a turn's input goes: ``delay_ms`` after ``event`` was seen (None: the last send)."""

    event: str | None
    delay_ms: int
    line: int = 0


@dataclass(frozen=True)
class UserBlock:
    """A scenario's ``user:`` block: ``modality`` ``text`` or ``audio``, and its ``speech``.

    The hook for the speaking caller: in audio modality the runner hands each spoken turn,
    with this block, to it.
    """

    modality: str = "text"
    speech: Mapping[str, Any] | None = None
    line: int = 0
    noise: Any = None
    """A :class:`~lifecycle.testing.noise.Noise` mixed into the speech (``noise:``)."""


@dataclass(frozen=True)
class JudgeBlock:
    """A scenario's ``judge:`` block: ``modality``, its ``eval`` service, ``transcription``.

    ``eval`` is None when the block names none (pipecat.evals then uses Ollama's default
    model); ``path`` is the file the block was read from (a ``factory`` is relative to
    nothing, but messages name it).
    """

    modality: str = "text"
    eval: Mapping[str, Any] | None = None
    transcription: Mapping[str, Any] | None = None
    line: int = 0
    path: str = ""


@dataclass(frozen=True)
class ScriptedTurn:
    """One turn: send ``user`` text (or ``parts`` with pauses), play ``audio``, press
    ``dtmf`` or send an ``image`` with its text (or nothing), maybe ``send_after`` an
    event, then expect events in order."""

    line: int
    user: str | None = None
    audio: Path | None = None
    dtmf: str | None = None
    expect: tuple[Expectation, ...] = ()
    parts: tuple[str | int, ...] | None = None
    """The text and ``pause_ms`` silences of a ``user:`` list (audio modality)."""
    image: Path | None = None
    send_after: SendAfter | None = None
    path: str = ""
    """The file the turn is written in (an included fragment, maybe)."""
    noise: Any = None
    """A :class:`~lifecycle.testing.noise.Noise` for this spoken turn (``noise:``), in place
    of the ``user:`` block's."""

    @property
    def sends(self) -> bool:
        """Whether the turn sends anything (else it only observes)."""
        return self.user is not None or self.audio is not None or self.dtmf is not None

    @property
    def label(self) -> str:
        """What the turn sends, for tables and messages."""
        if self.audio is not None:
            return f"audio {self.audio.name}"
        if self.dtmf is not None:
            return f"dtmf {self.dtmf!r}"
        if self.image is not None:
            return f"image {self.image.name} {self.user!r}"
        if self.user is not None:
            return repr(self.user)
        return "(observe)"


@dataclass(frozen=True)
class ScriptedScenario:
    """One scripted scenario, named ``<file name>/<scenario name>`` as pipecat.evals does."""

    name: str
    path: Path
    line: int
    turns: tuple[ScriptedTurn, ...]
    stop_on_failure: bool = True
    evals: tuple[Expectation, ...] = field(default=())
    """Its expectations with ``eval:`` (they need a judge)."""
    context: tuple[Mapping[str, Any], ...] = ()
    """LLM messages the bot's context starts from (sent as pipecat.evals' ``eval-context``)."""
    user: UserBlock = field(default_factory=UserBlock)
    judge: JudgeBlock | None = None
    runs: int = 1


@dataclass(frozen=True)
class ScenarioFile:
    """A file's ``name``, its scenarios in file order, and notices about keys it ignores."""

    path: Path
    name: str
    scenarios: tuple[Any, ...]
    """:class:`ScriptedScenario` items, and simulations where that support is installed."""
    notices: tuple[str, ...] = ()


def audio_support_missing() -> str | None:
    """Why audio-modality ``user:``/``judge:`` blocks cannot run here (None: they can).

    They speak with the local voice: the ``voice`` extra (espeak-ng).
    """
    import importlib.util

    if importlib.util.find_spec("espeakng_loader") is None:
        return 'needs the local voice: pip install "pipecat-lifecycle[voice]"'
    return None
