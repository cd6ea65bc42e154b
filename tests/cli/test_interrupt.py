"""`--log-level debug` shows lbmanager's debug lines but not other libraries', and Ctrl-C
(SIGINT) ends `run` and one-shot commands quietly: real subprocesses, a real etcd."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator

import pytest
from cli_helpers import READ_TREE, cli_env, running_cli
from harness import wait_for
from servers import HOST, EtcdServer

# A debug line of another library: "<time> DEBUG <logger>: ..." whose logger is not ours.
FOREIGN_DEBUG = re.compile(r" DEBUG (?!lbmanager[.:])\S+:")


async def test_run_at_debug_logs_only_its_own_debug_lines_and_sigint_exits_0(
    etcd_server: EtcdServer,
) -> None:
    """`run --log-level debug`: lbmanager debug lines, none of grpc, aetcd or asyncio; SIGINT
    exits 0 without a traceback (gRPC's debug log of the cancelled watch was one)."""
    env = cli_env(etcd_server.endpoint, resync_interval="3600", log_level="debug")
    async with running_cli("run", env=env) as cli:
        await cli.wait_line(READ_TREE)
        await cli.wait_line(r" DEBUG lbmanager\.\S+: full read at revision")
        assert await cli.stop(signal.SIGINT) == 0, cli.stderr
    assert not [line for line in cli.lines if FOREIGN_DEBUG.search(line)], cli.stderr
    assert "Traceback" not in cli.stderr


@contextlib.asynccontextmanager
async def silent_etcd() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A loopback port that accepts connections and never answers: a one-shot command hangs
    there until its timeout. Yields the port and the connections accepted so far."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize("command", [["member", "ls"], ["forget", "elb/us-east-1/web"]])
async def test_sigint_ends_a_one_shot_command_quietly(command: list[str]) -> None:
    """Ctrl-C while a one-shot command waits for etcd: exit 130 (128 + SIGINT), nothing on
    stderr, no traceback."""
    async with silent_etcd() as (port, accepted):
        env = cli_env(f"http://{HOST}:{port}")
        async with running_cli(*command, env=env) as cli:
            await wait_for(lambda: accepted, 20, what="the command connecting to etcd")
            assert await cli.stop(signal.SIGINT) == 130, cli.stderr
            assert cli.stderr == ""
