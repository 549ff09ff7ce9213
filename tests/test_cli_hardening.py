"""Issue 20: odd command-line input is a usage error (exit 2) or printed safely, never a crash.

JSON typed by the user (``--start-data``, ``--request-data``, ``/msg`` in ``connect``) that
nests too deeply or holds numbers out of range; output paths whose directory does not exist;
bot text holding terminal escapes and control characters (``lifecycle.printable``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli import main
from lifecycle.cli.arguments import MAX_JSON_DEPTH, loads_json
from lifecycle.printable import json_line, printable

DEEP = "[" * 100_000 + "]" * 100_000
NASTY = "red \x1b[31mX\x1b[0m \r fake line\x07 c1\x9b bidi\u202e lone\ud800 é中\ttab"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (DEEP, "nested deeper"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        ("1e999", "out of range"),
        ("NaN", "not a JSON number"),
        ("9" * 5000, "too many digits"),
        ('{"a":', "not valid JSON"),
    ],
    ids=["100k-deep", "101-deep", "1e999", "NaN", "5000-digits", "truncated"],
)
def test_json_typed_by_the_user_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        loads_json(text)
    assert loads_json('{"a": [1, {"b": 2.5}]}') == {"a": [1, {"b": 2.5}]}


@pytest.mark.parametrize(
    "argv",
    [
        ["connect", "--start", "http://127.0.0.1:9/start", "--start-data", DEEP],
        ["connect", "--start", "http://127.0.0.1:9/start", "--start-data", "1e999"],
        ["load", "--start", "http://127.0.0.1:9/start", "--request", "x", "--request-data", DEEP],
        ["load", "--start", "http://127.0.0.1:9/start", "--start-data", "NaN"],
    ],
    ids=["connect-deep", "connect-inf", "load-deep", "load-nan"],
)
def test_bad_json_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and (
        "nested deeper" in err or "not a JSON" in err or "range" in err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["diagram", "-o", "/nonexistent-dir-rel/x.mmd"],
        ["diagram", "--format", "dot", "-o", "/nonexistent-dir-rel/sub/x.dot"],
        ["test", "--junit-xml", "/nonexistent-dir-rel/j.xml", "examples/scenarios"],
    ],
    ids=["diagram", "diagram-dot", "junit"],
)
def test_output_paths_in_missing_directories_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "/nonexistent-dir-rel" in capsys.readouterr().err


def test_printable_escapes_every_unsafe_character_visibly() -> None:
    text = printable(NASTY)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "\x9b" not in text and "\u202e" not in text and "\ud800" not in text
    assert "\\x1b[31mX" in text and "\\r fake line\\x07" in text and "\\u202e" in text
    assert "é中\ttab" in text  # letters and tabs stay as they are
    text.encode("utf-8")  # a lone surrogate can no longer fail the write
    assert "\n" not in printable("a\nb", newlines=False)
    line = json_line({"t": NASTY})
    assert json.loads(line)["t"] == NASTY and "\x1b" not in line and "\ud800" not in line


def test_junit_xml_with_bot_text_stays_parseable(tmp_path: Path) -> None:
    from lifecycle.testing.junit import Outcome, write_junit

    scenario: Any = type("S", (), {"path": Path("s.yaml"), "name": f"n{NASTY}", "line": 1})()
    path = tmp_path / "j.xml"
    write_junit(path, [Outcome(scenario, error=f"bot said {NASTY}")])
    root = ET.parse(path).getroot()  # raises on a control character
    case = root.find("testsuite/testcase")
    assert case is not None
    error = case.find("error")
    assert error is not None and "\\x1b[31mX" in (error.get("message") or "")


def test_connect_output_escapes_bot_text_in_text_and_json_mode() -> None:
    import io

    from lifecycle.cli.output import Output

    for json_mode in (False, True):
        stream = io.StringIO()
        out = Output(json_mode=json_mode, t0=0.0, stream=stream)
        out.emit("bot-llm-text", f"bot: {NASTY}", text=NASTY)
        out.say(NASTY)
        written = stream.getvalue()
        assert "\x1b" not in written and "\r" not in written and "\ud800" not in written
        written.encode("utf-8")
        if json_mode:
            assert json.loads(written.splitlines()[0])["text"] == NASTY


async def test_deeply_nested_json_typed_into_connect_is_a_usage_line() -> None:
    import io

    from lifecycle.cli.output import Output
    from lifecycle.cli.session import request

    stream = io.StringIO()
    client: Any = None  # never reached: the JSON is refused first
    await request(client, Output(json_mode=True, t0=0.0, stream=stream), f"/msg echo {DEEP}")
    line = json.loads(stream.getvalue())
    assert line["event"] == "usage" and "nested deeper" in line["message"]
