"""The HTML timeline: self-contained, every lane and turn drawn, bot strings escaped, bounded."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

from lifecycle import BotText, FunctionCall, RTVIError, SessionLifecycle, UserInput
from lifecycle.report import LANE_TITLES
from lifecycle.trace import SessionTrace
from tests.support.talk import talk
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.testing import TestingBotServer

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


async def scripted_page() -> tuple[str, SessionTrace]:
    client = await talk(
        LoopbackTransport(LoopbackBot()),
        ["hello bot", "what is the weather"],
        functions={"get_weather": {"temp": 21}},
    )
    return client.trace.to_html(), client.trace


async def test_a_real_sessions_page_has_every_lane_and_turn() -> None:
    page, trace = await scripted_page()
    assert page.startswith("<!DOCTYPE html>")
    lanes = re.findall(r'class="lane" data-lane="(\w+)"', page)
    assert lanes == ["state", "turns", *(lane for lane, _ in LANE_TITLES)]
    for _, heading in LANE_TITLES:
        assert f">{heading}</text>" in page
    turns = trace.turns()
    assert len(turns) == 2
    for turn in turns:
        assert f'data-turn="{turn.index}"' in page
        assert f"turn {turn.index}: {turn.answered_ms:.1f} ms" in page
    assert page.count('class="turn-row"') == 2
    assert 'data-state="ready"' in page and 'data-state="disconnected"' in page
    assert "get_weather" in page  # the function call's lane
    assert "<title>" in page  # details on hover


async def test_the_page_is_self_contained() -> None:
    page, _ = await scripted_page()
    for tag, attrs in tags_of(page):
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
    assert "@import" not in page and "url(" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert len(re.findall(r"<script\b", page)) == 1  # our own, inline


def test_every_bot_controlled_string_is_escaped() -> None:
    machine = SessionLifecycle()
    trace = SessionTrace()
    machine.add_transition_hook(trace.record_transition)
    for trigger in ("connect", "transport_connected", "bot_ready"):
        assert machine.fire(trigger)
    sid = machine.session_id
    trace.record_event(sid, "send_text", PAYLOAD)
    trace.record_event(sid, "on_user_input", UserInput(text=PAYLOAD))
    trace.record_event(sid, "on_bot_llm_text", BotText(PAYLOAD))
    trace.record_event(sid, "on_bot_tts_text", BotText(PAYLOAD))
    trace.record_event(sid, "on_llm_function_call_in_progress", FunctionCall("c", PAYLOAD))
    trace.record_event(sid, "on_error", RTVIError(PAYLOAD))
    trace.record_note(sid, "error", PAYLOAD)
    assert machine.transport_closed(reason=PAYLOAD)
    page = trace.to_html(title=PAYLOAD)
    assert PAYLOAD not in page
    assert len(re.findall(r"<script\b", page)) == 1
    assert not any(tag == "img" for tag, _ in tags_of(page))
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    (turn,) = trace.turns()
    assert turn.bot_text == PAYLOAD  # the data keeps it; only the page escapes


def test_the_page_is_bounded_like_the_trace() -> None:
    machine = SessionLifecycle()
    trace = SessionTrace()
    machine.add_transition_hook(trace.record_transition)
    for trigger in ("connect", "transport_connected", "bot_ready"):
        assert machine.fire(trigger)
    huge = "x" * 1_000_000
    for i in range(20_000):
        trace.record_event(machine.session_id, "on_error", RTVIError(huge if i % 2 else "e"))
        trace.record_event(machine.session_id, "send_text", huge)
    page = trace.to_html()
    assert len(page) < 3_000_000
    (record,) = trace.sessions()
    assert len(record.marks) <= 1000


def test_an_empty_trace_says_so() -> None:
    page = SessionTrace().to_html()
    assert "No sessions recorded." in page and page.rstrip().endswith("</html>")


async def run_cli(*args: str, text: str = "", until: str = "") -> tuple[int, str, str]:
    """Run the CLI; type ``text``, close its input once a stdout line contains ``until``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lifecycle",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdin is not None and process.stdout is not None
    lines: list[bytes] = []
    async with asyncio.timeout(30):
        process.stdin.write(text.encode())
        await process.stdin.drain()
        while until and not (lines and until.encode() in lines[-1]):
            line = await process.stdout.readline()
            assert line, b"".join(lines).decode()
            lines.append(line)
        out, err = await process.communicate(b"")  # closes its input
    assert process.returncode is not None
    return process.returncode, (b"".join(lines) + out).decode(), err.decode()


async def test_connect_prints_turns_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "session.html"
    async with TestingBotServer() as server:
        code, out, err = await run_cli(
            "connect",
            "--start",
            server.start_url,
            "--report",
            str(report),
            text="hi\n",
            until="bot: You said: hi",
        )
        assert code == 0, out + err
        turn_lines = [line for line in out.splitlines() if " turn 1 (text): llm " in line]
        assert len(turn_lines) == 1 and "llm -" not in turn_lines[0], out
        assert f"report written to {report}" in out
        page = report.read_text(encoding="utf-8")
        assert 'data-turn="1"' in page and 'data-lane="transport"' in page

        code, out, err = await run_cli(
            "connect", "--start", server.start_url, "--json", text="hi\n", until='"metrics"'
        )
        assert code == 0, out + err
        rows = [json.loads(line) for line in out.splitlines()]
        (turn,) = [row for row in rows if row["event"] == "turn"]
        assert turn["index"] == 1 and turn["source"] == "text"
        assert turn["ttfb"] == {"TestingLLMService#0": 1.0} and turn["llm_first_ms"] >= 0
        assert rows[-1]["event"] == "exit"


async def test_a_report_that_cannot_be_written_is_said(tmp_path: Path) -> None:
    async with TestingBotServer() as server:
        code, out, err = await run_cli(
            "connect", "--start", server.start_url, "--report", str(tmp_path / "no" / "x.html")
        )
    assert code == 0, out + err
    assert "could not write the report" in out


# ------------------------------------------------------ labels, waterfalls, one naming scheme

LABEL = re.compile(r'<text class="turn-label" x="([\d.]+)" y="([\d.]+)">([^<]*)</text>')


async def test_turn_labels_never_overlap_however_close_the_turns() -> None:
    from dataclasses import replace

    from lifecycle.report import render_html

    _, trace = await scripted_page()
    (record,) = trace.sessions()
    first = trace.turns()[0]
    # Twelve turns 2 ms apart on the session's axis: far closer than any label is wide.
    crowded = [
        replace(first, index=i + 1, started_at=first.started_at + i * 0.002) for i in range(12)
    ]
    page = render_html([record], crowded)
    labels = [(float(x), float(y), text) for x, y, text in LABEL.findall(page)]
    assert labels, "no turn label drawn"
    assert any(text.startswith("turn 1: ") for _, _, text in labels)
    for i, (x1, y1, t1) in enumerate(labels):
        for x2, y2, t2 in labels[i + 1 :]:
            if y1 == y2:  # same row: the boxes (7 px a character at most) must not touch
                assert x1 + 7 * len(t1) <= x2 or x2 + 7 * len(t2) <= x1, (t1, t2)
    # Every turn keeps its bracket and tooltip, labelled or not.
    assert len(re.findall(r'<g class="turn" data-turn=', page)) == 12


async def test_every_turn_has_a_waterfall_on_its_own_axis() -> None:
    page, trace = await scripted_page()
    for turn in trace.turns():
        figure = re.search(
            rf'<figure class="turn-waterfall" data-turn="{turn.index}">(.*?)</figure>', page
        )
        assert figure is not None
        assert f"answered in {turn.answered_ms:.1f} ms" in figure.group(1)
        assert f"llm_first_ms {turn.llm_first_ms:.1f} ms" in figure.group(1)
        # The axis spans the turn (its last figure plus 15 %), not the session.
        ticks = [float(t) for t in re.findall(r'class="axis">([\d.]+) ms<', figure.group(1))]
        assert max(ticks) <= max(turn.llm_first_ms or 0, turn.bot_speaking_ms or 0) * 1.15 + 1


async def test_tooltips_use_one_naming_scheme() -> None:
    page, _ = await scripted_page()
    tips = re.findall(r"<title>([^<]*)</title>", page)[1:]  # [0] is the page's
    assert tips
    scheme = re.compile(
        r"^(on_[a-z_]+|send_text\(\)|send_audio\(\)|state [a-z]+|transition [a-z_]+"
        r"|transport [a-z]+|turn \d+ \(\w+\)|[a-z_]+_ms|(ttfb|processing)\[) ?"
    )
    for tip in tips:
        assert scheme.match(tip), tip
