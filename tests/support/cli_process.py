"""``python -m lifecycle ARGS`` as a subprocess of an async test, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
CLI_TIMEOUT = 60.0


async def run_cli(
    *args: str,
    stdin: bytes = b"",
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
) -> tuple[int, str, str]:
    """Run the CLI to completion with ``stdin`` as its input: (exit code, stdout, stderr).

    Killed (and the error raised) when it takes over ``timeout`` seconds.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lifecycle",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), 5)
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
