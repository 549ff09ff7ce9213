"""Load-test a Pipecat deployment with Locust (``pip install "pipecat-lifecycle[locust]"``).

One machine, headless, 50 users for a minute against a start endpoint::

    locust -f examples/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --host http://localhost:7860/start

Many machines: one master, then as many workers as you like (each runs the sessions)::

    locust -f examples/locustfile.py --master --host http://bot.example.com/start
    locust -f examples/locustfile.py --worker --master-host MASTER_ADDRESS

Every phase of a session shows up in Locust's statistics as its own request type:
``start``, ``connect`` (connect until bot-ready), ``request``, ``first_output``,
``disconnect``. The environment variables below tune the session without editing this file.
"""

from __future__ import annotations

import json
import os

from locust import constant

from lifecycle.contrib.locust import PipecatUser


class BotSession(PipecatUser):
    """Start a bot, connect, optionally ask/say something, hold, disconnect; repeat."""

    transport = os.environ.get("PIPECAT_TRANSPORT", "ws")
    hold = float(os.environ.get("PIPECAT_HOLD", "0"))
    request = os.environ.get("PIPECAT_REQUEST") or None
    request_data = json.loads(os.environ.get("PIPECAT_REQUEST_DATA", "null"))
    say = os.environ.get("PIPECAT_SAY") or None
    wait_time = constant(float(os.environ.get("PIPECAT_WAIT", "0.1")))
