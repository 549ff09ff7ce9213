"""A Locust plugin file for tests (pass it after the locustfile: ``-f a.py,this.py``).

Every Locust process counts the request events it fires, per ``request_type`` (errors as
``TYPE:error``), and when it quits writes ``counts-<pid>.json`` into ``$COUNTS_DIR`` with
its role (``master`` or ``worker``), so a test sees what each worker ran. It is loaded by
Locust in its own processes, never imported by pytest.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import events
from locust.runners import MasterRunner

counts: dict[str, int] = {}


@events.request.add_listener
def _count(request_type: str, exception: BaseException | None, **_: Any) -> None:
    key = request_type + (":error" if exception else "")
    counts[key] = counts.get(key, 0) + 1


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    role = "master" if isinstance(environment.runner, MasterRunner) else "worker"
    path = os.path.join(os.environ["COUNTS_DIR"], f"counts-{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"role": role, "counts": counts}, file)
