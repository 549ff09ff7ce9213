"""Our state changes print no `transitions` lines, at any level; other machines' are untouched.

`transitions` logs three INFO lines per state change it runs; an application that shows INFO
(Locust by default) printed 3,507 of them in an 8 s load run. Our triggers look their move up
in the table's `transitions` machine and never run its event processing.
"""

from __future__ import annotations

import logging

import pytest
from transitions import Machine

from lifecycle import SessionLifecycle


def run_a_session() -> None:
    machine = SessionLifecycle()
    machine.connect()
    machine.transport_connected()
    machine.bot_ready()
    machine.disconnect()
    machine.disconnected()


def transitions_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("transitions")]


def test_at_info_our_state_changes_print_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    run_a_session()
    assert transitions_records(caplog) == []


def test_at_debug_they_print_nothing_either(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="transitions")
    run_a_session()
    assert transitions_records(caplog) == []


def test_other_machines_keep_their_info_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    class Light:
        pass

    light = Light()
    Machine(light, states=["off", "on"], initial="off", transitions=[["flip", "off", "on"]])
    light.flip()  # type: ignore[attr-defined]
    assert any(r.levelno == logging.INFO for r in transitions_records(caplog))
