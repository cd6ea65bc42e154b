"""`lbmanager register`: keys held on a lease, withdrawn on stop, taken keys, health, --exec."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd
import pytest
from cli_helpers import RunningCli, assert_usage_error, cli_env, run_cli, running_cli
from harness import wait_for
from health_endpoint import Health, health_fixture  # noqa: F401 - the `health` fixture
from servers import HOST, EtcdServer, TcpProxy

pytestmark = pytest.mark.usefixtures("aws_env")

PATH = "elb/us-east-1/web/multiple/i-0123456789abcdef0"
KEY = f"/lbManager/{PATH}".encode()


async def key_lease(etcd: aetcd.Client) -> int | None:
    """The lease of our key, or None while it is absent."""
    found = await etcd.get(KEY)
    return None if found is None else found.lease


async def test_keys_live_on_a_lease_and_vanish_on_sigterm(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """The key is put on a lease, logged with lease and TTL; SIGTERM revokes it at once, says
    so and exits 0."""
    async with running_cli(
        "register", PATH, "--ttl", "30", env=cli_env(etcd_server.endpoint)
    ) as cli:
        lease = await wait_for(lambda: key_lease(etcd), what="the key")
        assert lease != 0
        held = f"INFO .*holding 1 keys on lease {lease:x} \\(TTL 30 s\\): {KEY.decode()}$"
        await cli.wait_line(held)
        assert await cli.stop(signal.SIGTERM) == 0
        await cli.wait_line(f"INFO .*stopping: withdrawing the keys \\(revoking lease {lease:x}\\)")
    assert await etcd.get(KEY) is None


@pytest.mark.parametrize(("by_hand", "said"), [("delete", "deleted"), ("overwrite", "overwritten")])
async def test_key_taken_by_another_client_exits_3(
    etcd: aetcd.Client, etcd_server: EtcdServer, by_hand: str, said: str
) -> None:
    """Another client deleting or overwriting the key tells register to stop: exit 3."""
    async with running_cli("register", PATH, env=cli_env(etcd_server.endpoint)) as cli:
        await wait_for(lambda: key_lease(etcd), what="the key")
        if by_hand == "delete":
            await etcd.delete(KEY)
        else:
            await etcd.put(KEY, b"mine now")
        assert await asyncio.wait_for(cli.proc.wait(), 10) == 3
        await cli.wait_line(f"was {said} by another client", within=1)
    if by_hand == "overwrite":
        assert (await etcd.get(KEY)).value == b"mine now"


async def test_health_gates_the_keys(
    etcd: aetcd.Client, etcd_server: EtcdServer, health: tuple[Health, str]
) -> None:
    """No key while unhealthy; put once healthy; withdrawn when it fails again."""
    state, url = health
    args = (
        "register",
        PATH,
        "--health-url",
        url,
        "--health-interval",
        "0.05",
        "--healthy-threshold",
        "2",
        "--unhealthy-threshold",
        "2",
    )
    async with running_cli(*args, env=cli_env(etcd_server.endpoint)) as cli:
        await cli.wait_line(f"INFO .*putting 1 keys once {url} is healthy")
        await wait_for(lambda: state.probes >= 3, what="a few failed probes")
        assert await etcd.get(KEY) is None
        state.status = 200
        lease = await wait_for(lambda: key_lease(etcd), what="the key once healthy")
        await cli.wait_line(f"INFO .*holding 1 keys on lease {lease:x} ")
        state.status = 500
        await wait_for(lambda: _absent(etcd), what="withdrawn")
        await cli.wait_line(f"INFO .*{url} is unhealthy: withdrawing the keys .*lease {lease:x}")
        assert await cli.stop(signal.SIGTERM) == 0


async def _absent(etcd: aetcd.Client) -> bool:
    return await etcd.get(KEY) is None


# A child for --exec that leaves a file in its directory for what happened to it: `ready` once
# its handlers are in place, `hup` on SIGHUP, `stopped` on SIGTERM (then it exits 7).
CHILD = """
import signal, sys, time
from pathlib import Path
where = Path(sys.argv[1])
def stop(*_):
    (where / "stopped").write_text("SIGTERM")
    sys.exit(7)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, lambda *_: (where / "hup").write_text("SIGHUP"))
(where / "ready").write_text("handlers installed")
while True:
    time.sleep(0.05)
"""


@contextlib.asynccontextmanager
async def exec_child(
    etcd: aetcd.Client, etcd_server: EtcdServer, where: Path, *flags: str
) -> AsyncIterator[RunningCli]:
    """`register PATH --exec FLAGS -- CHILD`, once its key is held and the child is ready."""
    args = ("register", PATH, "--exec", *flags, "--", sys.executable, "-c", CHILD, str(where))
    async with running_cli(*args, env=cli_env(etcd_server.endpoint)) as cli:
        await wait_for(lambda: key_lease(etcd), what="the key")
        await wait_for((where / "ready").exists, what="the child's signal handlers")
        yield cli


async def test_exec_without_a_phase_record_stops_the_child_at_once(
    etcd: aetcd.Client, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    """--exec: SIGTERM withdraws the key and, with no phase record (no service publishing
    one: the member counts as gone), stops the child without waiting out --drain; its status.
    The order withdraw, drain, signal is in test_register_phases.py."""
    async with exec_child(etcd, etcd_server, tmp_path, "--drain", "60") as cli:
        assert await cli.stop(signal.SIGTERM, within=10) == 7
        await cli.wait_line("INFO .*members gone from every target after")
    assert await _absent(etcd)
    assert (tmp_path / "stopped").exists()


async def test_exec_child_exit_withdraws_and_passes_its_status(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A child that exits by itself: the key goes, register exits with the child's status."""
    args = (
        "register",
        PATH,
        "--exec",
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(1.5); raise SystemExit(5)",
    )
    result = await run_cli(*args, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 5, result
    assert await etcd.get(KEY) is None


async def test_etcd_out_of_reach_longer_than_the_ttl(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """The lease expires while etcd is cut off; once back, the key is put again and logged."""
    proxy = TcpProxy(HOST, etcd_server.port)
    await proxy.start()
    try:
        async with running_cli("register", PATH, "--ttl", "2", env=cli_env(proxy.endpoint)) as cli:
            first = await wait_for(lambda: key_lease(etcd), what="the key")
            await proxy.cut()
            await wait_for(lambda: _absent(etcd), what="the lease to expire")
            await proxy.restore()
            await cli.wait_line(r"INFO .*keys registered again on lease \w+ \(TTL 2 s\)", within=20)
            second = await wait_for(lambda: key_lease(etcd), what="the key again")
            assert second != first
            assert await cli.stop(signal.SIGTERM) == 0
    finally:
        await proxy.stop()


async def test_bad_key_and_bad_flags_exit_2() -> None:
    """An invalid key or a bad --ttl is one line naming it, exit 2; --exec needs a command."""
    bad_key = await run_cli("register", "elb/us-east-1/web/multiple/i-nope", env=cli_env())
    assert bad_key.returncode == 2
    assert "i-nope" in bad_key.stderr
    bad_ttl = await run_cli("register", PATH, "--ttl", "0", env=cli_env())
    assert bad_ttl.returncode == 2
    assert "--ttl" in bad_ttl.stderr
    no_command = await run_cli("register", PATH, "--exec", env=cli_env())
    assert no_command.returncode == 2
    assert "--exec" in no_command.stderr


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/health", "127.0.0.1:8080/health", "http://", "http://h:99999/"]
)
async def test_bad_health_url_exits_2(url: str) -> None:
    """--health-url must be http or https with a host: else one line naming it, exit 2."""
    result = await run_cli("register", PATH, "--health-url", url, env=cli_env())
    assert_usage_error(result, "--health-url (or LBMANAGER_HEALTH_URL)", repr(url))


async def test_etcd_restart_longer_than_the_ttl(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """etcd down for longer than the TTL: once it is back the key is held again, still on a
    lease, and SIGTERM still withdraws it."""
    async with running_cli(
        "register", PATH, "--ttl", "2", env=cli_env(etcd_server.endpoint)
    ) as cli:
        await wait_for(lambda: key_lease(etcd), what="the key")
        etcd_server.stop()
        await asyncio.sleep(3)  # the scenario itself: an outage longer than the 2 s TTL
        etcd_server.start()
        client = aetcd.Client(host=HOST, port=etcd_server.port)
        try:
            await wait_for(lambda: key_lease(client), what="the key held after the restart")
            assert cli.proc.returncode is None
            assert await cli.stop(signal.SIGTERM) == 0, cli.stderr
            assert await client.get(KEY) is None
        finally:
            await client.close()


async def test_exec_passes_other_signals_to_the_child(
    etcd: aetcd.Client, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    """SIGHUP reaches the child as it is, and the key stays held."""
    async with exec_child(etcd, etcd_server, tmp_path) as cli:
        cli.proc.send_signal(signal.SIGHUP)
        await wait_for((tmp_path / "hup").exists, what="the child to get SIGHUP")
        assert await key_lease(etcd)
        await cli.stop(signal.SIGTERM)
