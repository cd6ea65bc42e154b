"""Check and reload commands: argv lists (no shell), a timeout, their output to the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)


class CommandFailed(Exception):
    """A command exited non-zero, timed out or could not start; the message says which."""


def expand(argv: list[str], staged: Path, destination: Path) -> list[str]:
    """Replace ``{staged}`` and ``{destination}`` in each word (plain text, no format spec)."""
    return [
        word.replace("{staged}", str(staged)).replace("{destination}", str(destination))
        for word in argv
    ]


async def run_command(argv: list[str], time_limit: float, what: str) -> None:
    """Run ``argv``; raise CommandFailed with the tail of its output unless it exits 0."""
    # Output goes to a file, not a pipe: a daemon the command starts (``haproxy -D``) inherits
    # it, and waiting for EOF on a pipe would wait for the daemon. We wait for the exit only.
    with tempfile.TemporaryFile() as output:
        returncode = await _run(argv, time_limit, what, output)
        output.seek(0)
        text = output.read().decode("utf-8", "replace").strip()
    for line in text.splitlines():
        log.log(
            logging.INFO if returncode == 0 else logging.WARNING, "%s %s: %s", what, argv[0], line
        )
    if returncode != 0:
        tail = text.splitlines()[-1] if text else "no output"
        raise CommandFailed(f"{what} command exited {returncode}: {tail}")


async def _run(argv: list[str], time_limit: float, what: str, output: BinaryIO) -> int:
    """Start ``argv`` writing to ``output`` and return its exit status; kill its process group
    on a timeout or a cancel, never after it exited (a daemon it started keeps running)."""
    try:
        # A session of its own, so a timeout can kill the children it started as well.
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        raise CommandFailed(f"{what} command {argv[0]!r} could not start: {error}") from None
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result of a wait that
        # ends as the task is cancelled and drops the cancel, so a stop landing as a reload
        # exits left its worker running (and the service's stop waiting for it).
        async with asyncio.timeout(time_limit):
            return await process.wait()
    except TimeoutError:
        await _kill(process)
        raise CommandFailed(f"{what} command timed out after {time_limit:g} s") from None
    except asyncio.CancelledError:
        await _kill(process)  # stopping: leave no command running unobserved
        raise


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the process group of our own child (by its PID) and reap the child; nothing once
    the child has exited (a cancel or the time limit may land just then)."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
