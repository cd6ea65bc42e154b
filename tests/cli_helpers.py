"""The `lbmanager` command line run as a real subprocess, with its stderr lines awaited."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aetcd
from harness import wait_for
from servers import HOST, free_port

ROOT = Path(__file__).resolve().parents[1]
# The units the project ships (systemd/ and fleet/).
UNITS = sorted([*ROOT.glob("systemd/*.service"), *ROOT.glob("fleet/*.service")])


@dataclass(frozen=True, slots=True)
class CliResult:
    """Exit status and output of one finished command."""

    returncode: int
    stdout: str
    stderr: str


def cli_env(etcd_endpoint: str | None = None, **settings: str) -> dict[str, str]:
    """This process's environment (AWS pointed at moto by the fixtures) with LBMANAGER_* set
    only from the arguments. Unless given, etcd is a closed loopback port (never a developer's
    etcd on the default port), and the status address is private so parallel runs never collide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBMANAGER_")}
    env["LBMANAGER_STATUS_ADDR"] = f"{HOST}:{free_port()}"
    env["LBMANAGER_ETCD_ENDPOINTS"] = etcd_endpoint or f"http://{HOST}:{free_port()}"
    env.update({f"LBMANAGER_{name.upper()}": value for name, value in settings.items()})
    return env


async def _start(
    args: tuple[str, ...], env: Mapping[str, str], stdout: int
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lbmanager",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=ROOT,
    )


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL our process by PID if it is still alive, and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()


async def run_cli(*args: str, env: Mapping[str, str], within: float = 60.0) -> CliResult:
    """Run `lbmanager ARGS` to completion (killed after ``within`` seconds)."""
    proc = await _start(args, env, asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    finally:
        await _reap(proc)
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


def assert_usage_error(result: CliResult, *names: str) -> str:
    """Exit 2 with exactly one stderr line naming every one of ``names``, no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


async def etcd_keys(etcd: aetcd.Client, prefix: str) -> set[str]:
    """Every key under ``prefix``, as text."""
    return {kv.key.decode() for kv in await etcd.get_prefix(prefix.encode())}


def plan_rows(stdout: str) -> dict[str, list[str]]:
    """The `plan` table as {target: [change, ...]}; the header must be TARGET / CHANGE."""
    header, *lines = stdout.splitlines()
    assert header.split() == ["TARGET", "CHANGE"], stdout
    column, target = header.index("CHANGE"), ""
    rows: dict[str, list[str]] = {}
    for line in lines:
        target = line[:column].strip() or target
        rows.setdefault(target, []).append(line[column:].strip())
    return rows


class RunningCli:
    """A long-running `lbmanager` subprocess whose stderr lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        """Everything logged so far."""
        return "\n".join(self.lines)

    def _find(self, pattern: re.Pattern[str]) -> str | None:
        found = next((line for line in self.lines if pattern.search(line)), None)
        if found is None and self._reader.done():
            raise AssertionError(
                f"lbmanager exited ({self.proc.returncode}) without logging "
                f"{pattern.pattern!r}:\n{self.stderr}"
            )
        return found

    async def wait_line(self, pattern: str, within: float = 30.0) -> str:
        """The first stderr line matching the regex ``pattern``, awaited up to ``within`` s."""
        compiled = re.compile(pattern)
        try:
            return await wait_for(lambda: self._find(compiled), within, what=repr(pattern))
        except AssertionError as error:
            raise AssertionError(f"{error}\nstderr so far:\n{self.stderr}") from None

    async def stop(self, signum: int = signal.SIGTERM, within: float = 5.0) -> int:
        """Send ``signum``; the exit status, which must come within ``within`` seconds."""
        self.proc.send_signal(signum)
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"still running {within}s after signal {signum}:\n{self.stderr}"
            ) from None
        await self._reader
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def close(self) -> None:
        """Kill the process if it still runs; reap it and finish reading."""
        await _reap(self.proc)
        await self._reader


@contextlib.asynccontextmanager
async def running_cli(*args: str, env: Mapping[str, str]) -> AsyncIterator[RunningCli]:
    """Start `lbmanager ARGS`; always killed and reaped when the block ends."""
    cli = RunningCli(await _start(args, env, asyncio.subprocess.DEVNULL))
    try:
        yield cli
    finally:
        await cli.close()


READ_TREE = r"read \d+ keys at revision \d+"


class ClosingListener:
    """A loopback port where nothing answers: each connection is accepted, counted and closed."""

    def __init__(self, port: int) -> None:
        self.port, self.accepted = port, 0
        self._server: asyncio.Server | None = None

    async def _serve(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def __aenter__(self) -> ClosingListener:
        self._server = await asyncio.start_server(self._serve, HOST, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening (again is fine), so the port can be given to a real server."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
