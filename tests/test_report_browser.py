"""The HTML timeline of a real session, opened in headless Chromium as a person would see it.

Chromium comes from the distribution's packages (``make chromium`` installs Debian's with
apt-get when it is missing and we are root). Without it the test is skipped locally, and
fails in CI (``CI`` set): a browser check that silently skips checks nothing. The page and
a screenshot are kept in ``test-artifacts/`` (``timeline.html``, ``timeline.png``).
"""

from __future__ import annotations

import re
from pathlib import Path

from lifecycle.report import LANE_TITLES
from tests.support.browser import ARTIFACTS, browse, chromium, console_errors, png_size
from tests.support.talk import talk
from transports.testing import Dialogue, TestingBotServer


async def test_the_timeline_of_a_testing_bot_session_renders_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    from transports.websocket import WebSocketTransport

    talking = Dialogue(token_delay=0.01, speech_ms=300)
    async with TestingBotServer(dialogue=talking, realtime_audio=True) as server:
        client = await talk(
            WebSocketTransport(),
            ["hello <b>bot</b> <script>document.title='pwned'</script>", "what is the weather"],
            start_url=server.start_url,
            functions={"get_weather": {"temp": 21}},
        )
    turns = client.trace.turns()
    assert len(turns) == 2
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "timeline.html"
    page.write_text(client.trace.to_html(), encoding="utf-8")

    dom, log = await browse(browser, page, tmp_path / "dom", "--dump-dom")
    assert console_errors(log) == []
    assert re.search(r'<html[^>]*data-timeline="ready"', dom), "the page's script did not run"
    assert "rendered 1 sessions, 2 turns, 9 lanes" in dom  # written by the page's script
    # The page measures its turn labels as drawn: none overlaps another.
    assert re.search(r'<html[^>]*data-label-overlaps="0"', dom), "turn labels overlap"
    assert len(re.findall(r'<figure class="turn-waterfall"', dom)) == 2
    for lane, heading in LANE_TITLES:
        assert f'data-lane="{lane}"' in dom and f">{heading}</text>" in dom
    for turn in turns:
        assert f"turn {turn.index}: {turn.answered_ms:.1f} ms" in dom
    assert "pwned" not in re.sub(r"&lt;script&gt;.*?&lt;/script&gt;", "", dom)
    assert "<title>pipecat-lifecycle session timeline</title>" in dom  # not rewritten
    assert not re.search(r"<b>bot</b>", dom)

    shot = ARTIFACTS / "timeline.png"
    shot.unlink(missing_ok=True)
    _, log = await browse(
        browser, page, tmp_path / "shot", f"--screenshot={shot}", "--window-size=1280,1000"
    )
    assert console_errors(log) == []
    assert png_size(shot) == (1280, 1000) and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")
    for turn in turns:
        print(turn.summary())
