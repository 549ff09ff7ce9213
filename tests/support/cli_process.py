"""``python -m lifecycle ARGS`` as a subprocess of an async test, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
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


async def run_cli_on_terminal(
    *args: str, stdin: bytes | None = None, timeout: float = CLI_TIMEOUT
) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdout and stderr: (exit code, all it wrote).

    ``stdin`` (when given) is piped in; otherwise the CLI inherits this process's stdin.
    Killed (and the error raised) when it takes over ``timeout`` seconds.
    """
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lifecycle", *args,
        stdin=None if stdin is None else asyncio.subprocess.PIPE,
        stdout=follower, stderr=follower, cwd=REPO,
    )  # fmt: skip
    os.close(follower)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO once the CLI has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = asyncio.get_running_loop().run_in_executor(None, read_all)
    try:
        await asyncio.wait_for(process.communicate(stdin), timeout)
        await asyncio.wait_for(reader, timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
        os.close(leader)
    assert process.returncode is not None
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")
