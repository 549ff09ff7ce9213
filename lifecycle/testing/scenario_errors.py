"""The errors a scenario file gets: each names the file, the line and the key."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ScenarioFileError", "ScenarioFileErrors"]


class ScenarioFileError(ValueError):
    """A scenario file that is not valid YAML or not valid pipecat.evals format.

    ``str()`` is ``FILE:LINE: KEY: problem``.
    """

    def __init__(self, path: str, line: int, key: str, problem: str) -> None:
        """Where (``path``, 1-based ``line``; 0 when unknown), which key, and what is wrong."""
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


class ScenarioFileErrors(ScenarioFileError):
    """Every problem found in one file (``errors``, in file order); the first one leads.

    ``str()`` lists them, one ``FILE:LINE: KEY: problem`` per line.
    """

    def __init__(self, errors: Sequence[ScenarioFileError]) -> None:
        """At least one error; ``path``/``line``/``key``/``problem`` are the first one's."""
        first = errors[0]
        super().__init__(first.path, first.line, first.key, first.problem)
        self.errors: tuple[ScenarioFileError, ...] = tuple(errors)
        self.args = ("\n".join(str(error) for error in self.errors),)

    def __str__(self) -> str:
        """Every problem, one per line."""
        return str(self.args[0])
