"""A griffe extension for the docs site: Sphinx roles in docstrings become cross-references.

The docstrings use Sphinx's inline roles (``:meth:`connect```, ``:class:`~lifecycle.State```);
mkdocstrings renders Markdown, where they would show as raw text. Each role becomes an
autorefs cross-reference to the object it names, resolved in the scope of the docstring's
object (as Sphinx resolves it). The reference is optional: one that names no page of the site
(a private module, the standard library) shows as code, without a link and without a warning.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:meth|class|func|attr|mod|exc|data|obj|const):`(~?)([^`<>]+)`")
"""``:role:`target``` or ``:role:`~target``` (``~`` shows the last component only)."""


def canonical(obj: griffe.Object | griffe.Alias, path: str) -> str:
    """Where ``path`` is defined (``lifecycle.PipecatClient`` -> ``lifecycle.client...``)."""
    try:
        return str(obj.modules_collection[path].canonical_path)
    except (griffe.AliasResolutionError, griffe.CyclicAliasError, KeyError, ValueError):
        return path


def resolve(obj: griffe.Object | griffe.Alias, target: str) -> str:
    """The full dotted path of ``target`` as seen from ``obj``; ``target`` itself when unknown."""
    target = target.lstrip(".")
    head, _, rest = target.partition(".")
    scope: Any = obj
    while scope is not None:
        try:
            found = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError, ValueError):
            scope = scope.parent
            continue
        return canonical(obj, f"{found}.{rest}" if rest else str(found))
    return canonical(obj, target)


def convert(obj: griffe.Object | griffe.Alias, text: str) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs reference."""

    def one(match: re.Match[str]) -> str:
        short, target = match.group(1) == "~", match.group(2).strip()
        title = target.lstrip(".").rsplit(".", 1)[-1] if short else target.lstrip(".")
        identifier = html.escape(resolve(obj, target), quote=True)
        code = f"<code>{html.escape(title)}</code>"
        return f'<autoref identifier="{identifier}" optional>{code}</autoref>'

    return ROLE.sub(one, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the package's objects (not aliases: their targets are walked themselves)."""
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = convert(obj, obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)  # type: ignore[misc]
