"""One name per thing: each old public name still works for one release, and warns."""

from __future__ import annotations

import importlib

import pytest

RENAMED = [
    ("lifecycle.load", "Scenario", "lifecycle.load", "SessionHook"),
    ("lifecycle.rtvi", "InboundEvent", "lifecycle.rtvi", "InboundMessage"),
    ("lifecycle.rtvi", "to_event", "lifecycle.rtvi", "classify"),
    ("lifecycle.transport", "TransportEvents", "lifecycle.transport", "TransportSink"),
    ("transports", "TransportEvents", "lifecycle.transport", "TransportSink"),
    ("transports.base", "TransportEvents", "lifecycle.transport", "TransportSink"),
]


@pytest.mark.parametrize(("module", "old", "home", "new"), RENAMED)
def test_an_old_name_warns_and_is_the_new_one(module: str, old: str, home: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: use .*{new}"):
        value = getattr(importlib.import_module(module), old)
    assert value is getattr(importlib.import_module(home), new)


@pytest.mark.parametrize("module", sorted({row[0] for row in RENAMED}))
def test_an_unknown_name_is_still_an_attribute_error(module: str) -> None:
    with pytest.raises(AttributeError):
        _ = importlib.import_module(module).NoSuchName
