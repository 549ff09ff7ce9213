"""Run a test suite while busy processes hold every core (``make test-loaded``).

``python tests/support/loaded.py unit|interop [pytest args...]`` starts N processes that
spin (N = the number of cores, at least 2), runs the suite with pytest, and stops them
whatever happens (pass, failure, Ctrl-C). It prints the suite's duration and the load
average seen (1-minute, sampled every 5 s) so a run can be reported. A test that passes
only on a quiet machine is a bug: a user's CI runner is a busy machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPIN = "while True: pass"


def busy_count() -> int:
    """One spinning process per core, at least two."""
    return max(2, os.cpu_count() or 1)


def suite_command(suite: str, extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """The pytest command line and environment of ``suite``."""
    env = dict(os.environ)
    if suite == "unit":
        return [sys.executable, "-m", "pytest", "-q", "--ignore=tests/interop", *extra], env
    if suite == "interop":
        env.setdefault("PIPECAT_INTEROP_PYTHON", str(REPO / ".venv-interop" / "bin" / "python"))
        return [sys.executable, "-m", "pytest", "-q", "tests/interop", *extra], env
    raise SystemExit(f"usage: loaded.py unit|interop [pytest args]; not {suite!r}")


def main(argv: list[str]) -> int:
    """Run the suite under load; its exit code."""
    if not argv:
        raise SystemExit("usage: loaded.py unit|interop [pytest args]")
    command, env = suite_command(argv[0], [a for a in argv[1:] if a != "--"])
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL)
        for _ in range(busy_count())
    ]
    loads: list[float] = [os.getloadavg()[0]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    code = 1
    try:
        code = subprocess.call(command, cwd=REPO, env=env)
    except KeyboardInterrupt:
        code = 130
    finally:
        done.set()
        for spinner in spinners:
            spinner.send_signal(signal.SIGKILL)
        for spinner in spinners:
            spinner.wait()
    seconds = time.monotonic() - started
    loads.append(os.getloadavg()[0])
    verdict = "passed" if code == 0 else f"FAILED (exit {code})"
    print(
        f"test-loaded: {argv[0]} {verdict} in {seconds:.0f} s with {len(spinners)} busy "
        f"processes on {os.cpu_count()} cores; load average (1 min) start {loads[0]:.1f}, "
        f"end {loads[-1]:.1f}, max {max(loads):.1f}, mean {sum(loads) / len(loads):.1f}",
        flush=True,
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
