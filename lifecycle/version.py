"""The package version, in a module of its own so any module can read it without a cycle."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.3.0.dev0"
"""This release's version (PEP 440)."""
