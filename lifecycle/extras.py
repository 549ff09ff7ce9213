"""Optional extras: one error and one message for a feature whose extra is not installed.

Every command and the pytest plugin say the same thing when an extra is missing: what needs
it and the ``pip install "pipecat-lifecycle[EXTRA]"`` line that fixes it (the CLI exits 2).
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtraError", "install_line", "require"]


def install_line(extra: str) -> str:
    """``pip install "pipecat-lifecycle[EXTRA]"``."""
    return f'pip install "pipecat-lifecycle[{extra}]"'


class MissingExtraError(ImportError):
    """A feature needs an optional extra that is not installed.

    ``what`` names the feature (e.g. ``"--transport webrtc"``), ``extra`` the extra; the
    message ends with the :func:`install_line` that fixes it.
    """

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: {install_line(extra)}")
        self.what = what
        self.extra = extra


def require(what: str, extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every one of ``modules`` can be imported.

    Only looks the modules up (``importlib.util.find_spec``); nothing is imported.
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a broken one
            found = False
        if not found:
            raise MissingExtraError(what, extra)
