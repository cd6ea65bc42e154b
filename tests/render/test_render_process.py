"""Check and reload commands: timeouts and cancellation leave no process behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from harness import wait_for
from render_helpers import script

from lbmanager.render.process import CommandFailed, run_command


async def test_command_timeout_bounds_a_command_with_children(tmp_path: Path) -> None:
    """A timed-out command that started children returns within its timeout, children killed."""
    pid_file = tmp_path / "child"
    hang = script(tmp_path / "hang.sh", f"sleep 3 &\necho $! > {pid_file}\nwait")
    started = time.monotonic()
    try:
        with pytest.raises(CommandFailed, match="timed out"):
            await run_command([str(hang)], 0.3, "check")
        assert time.monotonic() - started < 2
    finally:
        child = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # our own grandchild, by PID


async def test_cancelled_command_is_killed_and_reaped(tmp_path: Path) -> None:
    """Stopping lbmanager mid-command (the task cancelled) leaves no command running."""
    pid_file = tmp_path / "pid"
    hang = script(tmp_path / "hang.sh", f"echo $$ > {pid_file}\nexec sleep 30")
    task = asyncio.create_task(run_command([str(hang)], 60, "reload"))
    await wait_for(pid_file.exists, what="the command running")
    pid = int(await wait_for(pid_file.read_text, what="its pid"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: not even a zombie is left
