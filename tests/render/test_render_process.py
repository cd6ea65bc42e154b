"""Check and reload commands: timeouts and cancellation leave no process behind; a daemon a
reload started keeps running, and the reload returns at its own exit (under uvloop, as the
service runs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import pytest
import uvloop
from harness import wait_for
from lb_backends import http_backends, reached
from local_lb import HAPROXY, HaproxyServer, write_render_config
from render_helpers import script, tree_of, unit_for

from lbmanager.render.config import load_render_config
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


async def test_a_cancel_as_the_command_exits_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task cancelled (a template worker, the service stopping) just as its reload command
    exits ends: the cancel is not lost to the command's exit (Python 3.11's wait_for dropped
    it, and the worker went back to waiting for a kick while the stop waited for it)."""
    exit_of = asyncio.subprocess.Process.wait

    async def exit_then_stop(process: asyncio.subprocess.Process) -> int:
        code = await exit_of(process)
        asyncio.get_running_loop().call_soon(worker.cancel)  # the stop lands right now
        return code

    monkeypatch.setattr(asyncio.subprocess.Process, "wait", exit_then_stop)

    async def reload_then_wait_for_a_kick() -> None:
        await run_command(["true"], 5.0, "reload")
        await asyncio.Event().wait()

    worker = asyncio.create_task(reload_then_wait_for_a_kick())
    try:
        await asyncio.wait([worker], timeout=5)
        assert worker.cancelled(), "the worker went on waiting after its stop"
    finally:
        worker.cancel()


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has exited, its parent not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_pid_in(pid_file: Path) -> None:
    """SIGKILL the process whose PID a test's own command wrote to ``pid_file``, if any."""
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_reload_leaving_a_background_child_returns_at_its_exit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that leaves a child in the background (holding its stdout) returns when the
    command exits, far under its time limit; its output is logged; the child keeps running."""
    pid_file = tmp_path / "daemon.pid"
    argv = ["sh", "-c", f"sleep 30 & echo $! > {pid_file}; echo started"]
    started = time.monotonic()
    try:
        with caplog.at_level(logging.INFO, "lbmanager.render.process"):
            uvloop.run(run_command(argv, 10, "reload"))
        assert time.monotonic() - started < 5
        assert "reload sh: started" in caplog.text
        assert running(int(pid_file.read_text()))
    finally:
        kill_pid_in(pid_file)  # our own grandchild, by PID


def test_haproxy_daemon_started_by_a_reload_keeps_serving(tmp_path: Path) -> None:
    """A template whose reload is `haproxy -D` (under uvloop): the sync returns once haproxy has
    daemonized, with no rollback, and the daemon serves the rendered members."""
    lb = HaproxyServer(tmp_path)  # never started by the test: the reload command starts it
    reload = [HAPROXY, "-D", "-f", "{destination}"]
    entry = load_render_config(write_render_config(lb, commands={"reload_command": reload}))
    config = entry.template[0].model_copy(update={"command_timeout": 10.0})

    async def render_and_ask() -> tuple[float, set[str]]:
        async with http_backends(1) as [backend]:
            unit = unit_for(config, tree_of((backend.key("web").decode(), b"")))
            started = time.monotonic()
            [result] = await unit.sync(False)
            elapsed = time.monotonic() - started
            assert result.changes[0].startswith(f"wrote {lb.config}")
            return elapsed, await reached(lb.port, requests=2)

    try:
        elapsed, answers = uvloop.run(render_and_ask())
        assert elapsed < 5
        assert answers == {"backend-0"}
    finally:
        kill_pid_in(lb.pid_file)  # the daemon the reload started, by the PID it wrote
