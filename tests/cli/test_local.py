"""`lbmanager local`: the demo starts, its printed commands work, stopping leaves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import Cloud, wait_for

REPO = Path(__file__).resolve().parents[2]
BANNER_END = "Ctrl-C stops everything."
STARTED_ETCD = re.compile(r"started etcd \(pid (\d+)\) on http://127\.0\.0\.1:(\d+), data in (\S+)")
DEMO = re.compile(r"demo: ELB demo-web with instances (\S+),")
ENV_WORD = re.compile(r"[A-Z][A-Z0-9_]*=")
# Starting Python, importing moto and creating the demo take seconds on a loaded 2-core machine.
START_DEADLINE = 90.0


class LocalRun:
    """`python -m lbmanager local` as a child process, its output collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.closed = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self.process.stdout is not None
        try:
            async for raw in self.process.stdout:
                async with self._changed:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._changed.notify_all()
        finally:
            self.closed = True
            async with self._changed:
                self._changed.notify_all()

    async def line(self, pattern: re.Pattern[str] | str) -> str:
        """The first output line matching ``pattern``, waiting until it comes or output ends."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def found() -> str | None:
            return next((line for line in self.lines if regex.search(line)), None)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_DEADLINE), self._changed:
                await self._changed.wait_for(lambda: found() is not None or self.closed)
        if (line := found()) is None:
            output = "\n".join(self.lines[-40:])
            raise AssertionError(f"no line matching {regex.pattern!r}; output:\n{output}")
        return line

    async def stop(self, signum: int) -> int:
        """Send ``signum``; the exit status, which must come within 5 s (SPEC §6)."""
        self.process.send_signal(signum)
        status = await asyncio.wait_for(self.process.wait(), 5)
        await self._reader
        return status


@contextlib.asynccontextmanager
async def local_run(**extra_env: str) -> AsyncIterator[LocalRun]:
    """Start `lbmanager local` from the repository; kill it by PID if the test left it running."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LBMANAGER_", "AWS_", "DOCKER_"))
    } | extra_env
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lbmanager",
        "local",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    run = LocalRun(process)
    try:
        yield run
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def split_command(line: str) -> tuple[dict[str, str], list[str]]:
    """A printed shell line as (leading NAME=value assignments, argv)."""
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and ENV_WORD.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


async def run_printed(line: str) -> tuple[int, str]:
    """Run a printed command as a user would from another terminal in the repository."""
    env, argv = split_command(line)
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return await process.wait(), output.decode(errors="replace")


def assert_gone(pid: int, port: int, data_dir: str) -> None:
    """The etcd child no longer exists, its port refuses connections, its data dir is removed."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
    assert not Path(data_dir).exists()


async def test_printed_commands_register_and_ctrl_c_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The printed `member add` registers the instance with the demo ELB and `plan` then finds
    it in sync; SIGINT exits 0 within 5 s and the etcd child, its port and data dir are gone."""
    async with local_run() as run:
        etcd = STARTED_ETCD.search(await run.line(STARTED_ETCD))
        assert etcd is not None
        first = DEMO.search(await run.line(DEMO))
        assert first is not None
        await run.line(re.escape(BANNER_END))
        add_line = await run.line(r" member add elb/us-east-1/demo-web/multiple/")
        plan_line = await run.line(r" plan$")
        added = add_line.rsplit("/", 1)[-1]
        status, output = await run_printed(add_line)
        assert status == 0, output

        aws_env, _ = split_command(plan_line)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        for name, value in aws_env.items():
            monkeypatch.setenv(name, value)
        cloud = Cloud()
        await wait_for(
            lambda: cloud.elb_instances("demo-web") == {first.group(1), added},
            timeout=30,
            what="the demo key and the added instance registered",
        )
        status, output = await run_printed(plan_line)
        assert status == 0, output
        assert "in sync" in output

        assert await run.stop(signal.SIGINT) == 0
    assert_gone(int(etcd.group(1)), int(etcd.group(2)), etcd.group(3))


async def test_sigterm_while_starting_leaves_nothing() -> None:
    """SIGTERM as soon as etcd is up (set-up or service, whichever runs) exits 0 and cleans up."""
    async with local_run() as run:
        etcd = STARTED_ETCD.search(await run.line(STARTED_ETCD))
        assert etcd is not None
        assert await run.stop(signal.SIGTERM) == 0
    assert_gone(int(etcd.group(1)), int(etcd.group(2)), etcd.group(3))


async def test_agent_runs_beside_the_demo_when_docker_is_there(
    monkeypatch: pytest.MonkeyPatch, docker_engine: DockerEngine, docker: DockerClient
) -> None:
    """With a Docker daemon, a labelled container joins the demo ELB as the agent's instance."""
    async with local_run(DOCKER_HOST=docker_engine.host) as run:
        demo = DEMO.search(await run.line(DEMO))
        assert demo is not None
        await run.line(re.escape(BANNER_END))
        await run.line(r"--label lbmanager\.elb=us-east-1/demo-web")
        plan_line = await run.line(r" plan$")
        for name, value in split_command(plan_line)[0].items():
            monkeypatch.setenv(name, value)
        cloud = Cloud()
        instances = {
            i["InstanceId"]
            for r in cloud.ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        }
        await docker.run({"lbmanager.elb": "us-east-1/demo-web"})
        await wait_for(
            lambda: len(cloud.elb_instances("demo-web")) == 2,
            timeout=30,
            what="the agent's instance registered beside the demo key's",
        )
        assert cloud.elb_instances("demo-web") <= instances
        assert await run.stop(signal.SIGINT) == 0
