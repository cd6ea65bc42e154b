"""`register` follows its members' published phases (SPEC §8): READY=1 to systemd once they are
healthy at every target, and on stop the child is signalled once they are gone from every target.
The test plays the sync service by writing the phase record itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aetcd
import pytest
from child_script import child_argv
from cli_helpers import RunningCli, cli_env, running_cli
from harness import wait_for
from health_endpoint import Health, health_fixture  # noqa: F401 - the `health` fixture
from notify_socket import NotifySocket, notify_socket_fixture  # noqa: F401 - the `systemd` fixture
from servers import EtcdServer

from lbmanager.presence.notify import Notifier

pytestmark = pytest.mark.usefixtures("aws_env")

ELB = "elb/us-east-1/web/multiple/i-0123456789abcdef0"
UPSTREAM = "upstream/web/multiple/127.0.0.1:8080"
ELB_PHASES = b"/lbManagerState/phases/elb/us-east-1/web"
UPSTREAM_PHASES = b"/lbManagerState/phases/upstream/web"


async def publish(etcd: aetcd.Client, key: bytes, phases: dict[str, str]) -> None:
    """Write a target's phase record as the sync service does."""
    await etcd.put(key, json.dumps(phases).encode())


async def test_ready_once_every_member_is_healthy_at_every_target(
    etcd: aetcd.Client, etcd_server: EtcdServer, systemd: NotifySocket
) -> None:
    """READY=1 comes only once both members are `healthy`; before, STATUS= names the lagging
    one; without any record the members are not healthy."""
    env = cli_env(etcd_server.endpoint) | {"NOTIFY_SOCKET": systemd.address}
    async with running_cli("register", ELB, UPSTREAM, env=env) as cli:
        await systemd.wait("STATUS=waiting for elb/us-east-1/web: i-0123456789abcdef0 gone;.*")
        await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "pending"})
        await systemd.wait("STATUS=waiting for elb/us-east-1/web: i-0123456789abcdef0 pending;.*")
        await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "healthy"})
        await publish(etcd, UPSTREAM_PHASES, {"127.0.0.1:8080": "unhealthy"})
        await systemd.wait("STATUS=waiting for upstream/web: 127.0.0.1:8080 unhealthy")
        assert "READY=1" not in await systemd.drained()
        await publish(etcd, UPSTREAM_PHASES, {"127.0.0.1:8080": "healthy", "10.0.0.9:80": "gone"})
        await systemd.wait("READY=1")
        await systemd.wait("STATUS=healthy at every target")
        await cli.wait_line("INFO .*members healthy at every target")
        assert await cli.stop(signal.SIGTERM) == 0
    messages = await systemd.drained()  # all the exited process sent, read by the socket's task
    assert messages[-1] == "STOPPING=1"
    assert messages.count("READY=1") == 1


async def test_ready_waits_for_the_health_url_too(
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
    systemd: NotifySocket,
    health: tuple[Health, str],
) -> None:
    """With --health-url, no key and no READY=1 while the URL fails, even though the record
    says the member is healthy; once the URL answers 2xx the key is put and READY=1 follows;
    a later failure withdraws the key and says so in STATUS=, but READY=1 stays sent once."""
    state, url = health
    await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "healthy"})
    args = ("register", ELB, "--health-url", url, "--health-interval", "0.05")
    env = cli_env(etcd_server.endpoint) | {"NOTIFY_SOCKET": systemd.address}
    async with running_cli(*args, env=env) as cli:
        await systemd.wait(f"STATUS=waiting for {re.escape(url)} to be healthy")
        await wait_for(lambda: state.probes >= 3, what="a few failed probes")
        assert "READY=1" not in await systemd.drained()
        state.status = 200
        await systemd.wait("READY=1")
        await cli.wait_line("INFO .*holding 1 keys")
        state.status = 500
        await systemd.wait(f"STATUS={re.escape(url)} is unhealthy: keys withdrawn")
        state.status = 200
        await systemd.wait(f"STATUS={re.escape(url)} is healthy again: keys put back")
        assert await cli.stop(signal.SIGTERM) == 0
    assert (await systemd.drained()).count("READY=1") == 1


async def test_without_notify_socket_it_logs_when_healthy(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """No NOTIFY_SOCKET: nothing to tell, but the log says when the members became healthy.
    Only the record of its own target under --state-prefix counts."""
    env = cli_env(etcd_server.endpoint, state_prefix="/elsewhere", log_level="debug")
    env.pop("NOTIFY_SOCKET", None)
    mine = b"/elsewhere/phases/elb/us-east-1/web"
    async with running_cli("register", ELB, env=env) as cli:
        await cli.wait_line("INFO .*holding 1 keys")
        await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "healthy"})  # another prefix
        await publish(etcd, mine + b"-2", {"i-0123456789abcdef0": "healthy"})  # another target
        await publish(etcd, mine, {"i-0123456789abcdef0": "pending"})
        await cli.wait_line("DEBUG .*waiting for the members to be healthy: .* pending$")
        assert not any("members healthy" in line for line in cli.lines), cli.stderr
        await publish(etcd, mine, {"i-0123456789abcdef0": "healthy"})
        await cli.wait_line("INFO .*members healthy at every target")
        assert await cli.stop(signal.SIGTERM) == 0


def test_abstract_socket_name() -> None:
    """A NOTIFY_SOCKET starting with `@` is an abstract socket; STATUS= only when it changes."""
    name = f"@lbmanager-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name[1:])
        notifier = Notifier(name)
        notifier.status("waiting  for\nx")
        notifier.status("waiting for x")
        notifier.ready()
        assert manager.recv(100) == b"STATUS=waiting for x"
        assert manager.recv(100) == b"READY=1"


def test_without_a_socket_nothing_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    """NOTIFY_SOCKET unset: no datagram is tried, so nothing fails and nothing is logged."""
    notifier = Notifier("")
    notifier.ready()
    notifier.status("waiting")
    assert caplog.records == []


# A child for --exec: `ready` says whether it saw NOTIFY_SOCKET.
CHILD = """
def stop(*_):
    (where / "stopped").write_text("SIGTERM")
    sys.exit(7)
ready = os.environ.get("NOTIFY_SOCKET", "no socket")
"""


@contextlib.asynccontextmanager
async def wrapped_child(
    etcd_server: EtcdServer, where: Path, *flags: str, notify: str
) -> AsyncIterator[RunningCli]:
    """`register ELB --exec FLAGS -- CHILD`, once the child is ready."""
    args = ("register", ELB, "--exec", *flags, "--", *child_argv(CHILD, str(where)))
    env = cli_env(etcd_server.endpoint) | {"NOTIFY_SOCKET": notify}
    async with running_cli(*args, env=env) as cli:
        await wait_for((where / "ready").exists, what="the child's signal handler")
        yield cli


@contextlib.contextmanager
def child_alive(where: Path) -> Iterator[None]:
    """Fail if the child is signalled within the block."""
    yield
    assert not (where / "stopped").exists(), "the child was signalled before the drain ended"


async def test_stop_signals_the_child_once_the_member_is_gone(
    etcd: aetcd.Client, etcd_server: EtcdServer, systemd: NotifySocket, tmp_path: Path
) -> None:
    """SIGTERM: the key is withdrawn, register waits while the member is healthy and then
    draining at its target, and signals the child once it is gone; the child never sees
    NOTIFY_SOCKET."""
    await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "healthy"})
    async with wrapped_child(etcd_server, tmp_path, "--drain", "60", notify=systemd.address) as cli:
        assert (tmp_path / "ready").read_text() == "no socket"
        await systemd.wait("READY=1")
        with child_alive(tmp_path):
            cli.proc.send_signal(signal.SIGTERM)
            await cli.wait_line("INFO .*waiting up to 60 s for the members to be gone")
            await cli.wait_line("INFO .*draining: waiting for elb/us-east-1/web: i-0\\w+ healthy")
            assert await etcd.get(f"/lbManager/{ELB}".encode()) is None
            await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "draining"})
            await systemd.wait(r"STATUS=draining: waiting for elb/us-east-1/web: i-0\w+ draining")
            await cli.wait_line("draining: waiting for elb/us-east-1/web: i-0\\w+ draining")
        await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "gone"})
        assert await cli.stop(signal.SIGTERM, within=10) == 7
        assert (tmp_path / "stopped").exists()
        await cli.wait_line("INFO .*members gone from every target after [0-9.]+ s")


async def test_drain_gives_up_after_drain_seconds(
    etcd: aetcd.Client, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    """A member still healthy at its target after --drain seconds: the child is signalled
    anyway, with a warning naming the member."""
    await publish(etcd, ELB_PHASES, {"i-0123456789abcdef0": "healthy"})
    async with wrapped_child(etcd_server, tmp_path, "--drain", "1", notify="") as cli:
        await cli.wait_line("INFO .*members healthy at every target")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await cli.stop(signal.SIGTERM, within=10) == 7
        assert loop.time() - started >= 1
        await cli.wait_line(
            "WARNING .*not gone after 1 s, stopping the child anyway: "
            "elb/us-east-1/web: i-0123456789abcdef0 healthy"
        )
