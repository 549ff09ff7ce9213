"""Without structlog imported by the application, the library does not import it either.

Runs in a fresh interpreter (the test process has structlog loaded already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import io, json, logging, sys
stream = io.StringIO()
handler = logging.StreamHandler(stream)
logging.getLogger("lifecycle").addHandler(handler)
logging.getLogger("lifecycle").setLevel(logging.DEBUG)
from lifecycle import SessionLifecycle, State
from lifecycle.logs import get_logger
machine = SessionLifecycle()
get_logger().bind(session=1).warning("start failed", token="s3cret", url="http://h/?token=s3cret")
before = "structlog" in sys.modules
import structlog
from structlog.testing import capture_logs
with capture_logs() as captured:
    get_logger().warning("after import", api_key="s3cret")
print(json.dumps({"loaded_before": before, "stdlib": stream.getvalue(), "captured": captured}))
"""


def test_core_and_default_logger_do_not_import_structlog() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded_before"] is False
    line = result["stdlib"].strip().splitlines()[-1]
    assert line.startswith("event='start failed' session=1 token=")
    assert "s3cret" not in result["stdlib"]
    # Once the application imported structlog (and captures), lines go through structlog.
    assert [entry["event"] for entry in result["captured"]] == ["after import"]
    assert "s3cret" not in json.dumps(result["captured"])
