"""Several `lbmanager run` processes on one prefix (SPEC §10): exactly one writes, and a
killed, stopped or cut-off leader is replaced within the bounds, never overlapping."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aetcd
import aiohttp
import pytest
from cli_helpers import RunningCli, cli_env, run_cli, running_cli
from cloud_calls import REGISTER, StampedCalls, call_instances, elb_key
from etcd_cluster import EtcdCluster
from fault_proxy import FaultProxy
from harness import Cloud, wait_for
from servers import HOST, EtcdServer, MotoServer, TcpProxy

TTL = 3  # --leader-ttl in these tests: a crashed leader is replaced within TTL + 5 s
LEADING = r"leading /lbManagerState/election/run/"


@dataclass
class Copy:
    """One `lbmanager run` process and the AWS calls it made (through its own proxy)."""

    cli: RunningCli
    calls: StampedCalls
    status_addr: str

    async def role(self) -> tuple[str, str]:
        """(role in /status, the lbmanager_leader line of /metrics)."""
        async with aiohttp.ClientSession(f"http://{self.status_addr}") as http:
            async with http.get("/status") as response:
                role = (await response.json())["role"]
            async with http.get("/metrics") as response:
                metrics = await response.text()
        return role, next(m for m in metrics.splitlines() if m.startswith("lbmanager_leader "))

    def writes(self, after: float = 0.0) -> list[float]:
        """When this copy's register calls arrived (those after ``after``)."""
        return [t for t in self.calls.stamped(REGISTER) if t > after]


@contextlib.asynccontextmanager
async def copies(
    moto: MotoServer, etcd_endpoints: list[str], **settings: str
) -> AsyncIterator[list[Copy]]:
    """One `lbmanager run` per etcd endpoint list entry (its --etcd-endpoints), each talking
    to AWS through its own recording proxy; started together, killed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for endpoints in etcd_endpoints:
            proxy = await stack.enter_async_context(FaultProxy(moto.endpoint))
            proxy.calls = StampedCalls()
            env = cli_env(
                endpoints, **({"leader_ttl": str(TTL), "resync_interval": "3600"} | settings)
            )
            env["AWS_ENDPOINT_URL"] = proxy.endpoint
            cli = await stack.enter_async_context(running_cli("run", env=env))
            started.append(Copy(cli, proxy.calls, env["LBMANAGER_STATUS_ADDR"]))
        yield started


def leaders(running: list[Copy]) -> list[Copy]:
    """The copies that logged that they lead (and have not exited)."""
    return [
        c for c in running if c.cli.proc.returncode is None and re.search(LEADING, c.cli.stderr)
    ]


async def the_leader(running: list[Copy]) -> Copy:
    """The one copy that leads, once every copy has read the tree."""
    for copy in running:
        await copy.cli.wait_line(r"read \d+ keys at revision")
    found = await wait_for(lambda: leaders(running), what="a leader")
    assert len(found) == 1, [c.cli.stderr for c in running]
    return found[0]


def registered(running: list[Copy], instance: str) -> list[Copy]:
    """The copies that sent a register call naming ``instance``."""
    return [
        c
        for c in running
        if any(instance in call_instances(x) for x in c.calls if x.action == REGISTER)
    ]


@dataclass
class WebElb:
    """Moto and an ELB named web: all the etcd-cluster test needs besides its own cluster."""

    moto: MotoServer
    cloud: Cloud

    def instance(self) -> str:
        """Start one more instance; return its id."""
        return self.cloud.run_instances(1)[0]


@dataclass
class Rig(WebElb):
    """What the other tests here run on: the ELB web, a single-member etcd and a client of it."""

    etcd_server: EtcdServer
    etcd: aetcd.Client

    async def add(self, instance: str) -> None:
        """Put the key making ``instance`` a member of web."""
        await self.etcd.put(elb_key("web", "multiple", instance), b"")


@pytest.fixture(name="web")
def web_fixture(aws_env: MotoServer, cloud: Cloud) -> WebElb:
    """Moto, with the ELB web created."""
    cloud.create_elb("web")
    return WebElb(aws_env, cloud)


@pytest.fixture
def rig(web: WebElb, etcd_server: EtcdServer, etcd: aetcd.Client) -> Rig:
    """The ELB web, the test's etcd and a client of it."""
    return Rig(web.moto, web.cloud, etcd_server, etcd)


async def test_of_three_copies_exactly_one_writes(rig: Rig) -> None:
    """Three copies: one leads and writes; the standbys make no AWS call at all and say so."""
    instances = [rig.instance() for _ in range(3)]
    async with copies(rig.moto, [rig.etcd_server.endpoint] * 3) as running:
        leader = await the_leader(running)
        for instance in instances:
            await rig.add(instance)
        await wait_for(lambda: rig.cloud.elb_instances("web") == set(instances), what="registered")
        standbys = [c for c in running if c is not leader]
        assert all(not c.calls for c in standbys), [c.calls for c in standbys]
        for standby in standbys:
            await standby.cli.wait_line(r"standby: .* leads")
            assert await standby.role() == ("standby", "lbmanager_leader 0.0")
            printed = await run_cli("status", "--status-addr", standby.status_addr, env=cli_env())
            assert printed.stdout.splitlines()[-1].startswith("standby: "), printed
        assert await leader.role() == ("leader", "lbmanager_leader 1.0")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
async def test_a_leader_that_dies_or_stops_is_replaced(signum: int, rig: Rig) -> None:
    """SIGKILL: a standby writes within --leader-ttl + 5 s; SIGTERM: it hands over at once.
    The new leader starts from a full sync, and only one of the standbys writes."""
    first, second = rig.instance(), rig.instance()
    async with copies(rig.moto, [rig.etcd_server.endpoint] * 3) as running:
        leader = await the_leader(running)
        await rig.add(first)
        await wait_for(lambda: registered(running, first) == [leader], what="the first write")
        if signum == signal.SIGKILL:
            leader.cli.proc.kill()
            await leader.cli.proc.wait()
        else:
            assert await leader.cli.stop(signal.SIGTERM) == 0
        gone = time.monotonic()
        await rig.add(second)
        bound = TTL + 5 if signum == signal.SIGKILL else 2
        writers = await wait_for(
            lambda: registered(running, second), timeout=bound, what="the new leader's write"
        )
        assert len(writers) == 1
        assert writers[0] is not leader
        assert writers[0].writes(gone)[0] - gone < bound
        assert "DescribeLoadBalancers" in [c.action for c in writers[0].calls]  # full sync
        # The proxy records a call as it arrives, before moto has applied it.
        await wait_for(lambda: rig.cloud.elb_instances("web") == {first, second}, what="both")


async def test_a_leader_cut_from_etcd_stops_before_the_next_leads(rig: Rig) -> None:
    """A leader whose etcd is out of reach keeps wanting to write (drift, corrected by a
    frequent resync) but stops before its lease can expire; the standby's first write comes
    after the old leader's last one."""
    instance = rig.instance()
    async with (
        TcpProxy(HOST, rig.etcd_server.port) as link_a,
        TcpProxy(HOST, rig.etcd_server.port) as link_b,
    ):
        links = [link_a, link_b]
        async with copies(
            rig.moto, [link_a.endpoint, link_b.endpoint], resync_interval="0.2"
        ) as running:
            leader = await the_leader(running)
            standby = next(c for c in running if c is not leader)
            await rig.add(instance)
            await wait_for(lambda: registered(running, instance), what="the first write")
            drift = asyncio.create_task(keep_deregistering(rig.cloud, instance))
            try:
                await wait_for(lambda: len(leader.writes()) >= 3, what="the leader fixing drift")
                await links[running.index(leader)].cut()
                cut = time.monotonic()
                await leader.cli.wait_line(r"leadership lost", within=TTL + 1)
                await wait_for(standby.writes, timeout=TTL + 5, what="a new writer")
            finally:
                drift.cancel()
            assert max(leader.writes()) < min(standby.writes()), "two writers overlapped"
            assert max(leader.writes()) - cut < TTL


async def keep_deregistering(cloud: Cloud, instance: str) -> None:
    """Drift: an operator keeps removing ``instance`` by hand."""
    while True:
        await asyncio.to_thread(
            cloud.elb.deregister_instances_from_load_balancer,
            LoadBalancerName="web",
            Instances=[{"InstanceId": instance}],
        )
        await asyncio.sleep(0.1)  # the pace of the drift, not a synchronisation


@pytest.mark.parametrize("fault", ["kill", "freeze", "isolate"])
async def test_an_etcd_member_failing_under_the_leader(fault: str, web: WebElb) -> None:
    """The member the leader talks to is killed, frozen or cut from its peers: changes still
    reach the ELB, written by exactly one copy."""
    before, after = web.instance(), web.instance()
    async with EtcdCluster() as cluster:
        first, *others = cluster.members
        endpoints = ",".join(m.endpoint for m in cluster.members)
        async with copies(web.moto, [endpoints, endpoints]) as running:
            await the_leader(running)
            await cluster.put(first, elb_key("web", "multiple", before).decode())
            await wait_for(lambda: registered(running, before), what="the first write")
            if fault == "kill":
                first.kill()
            elif fault == "freeze":
                first.freeze()
            else:
                await cluster.isolate(first)
            try:
                await cluster.put(others[0], elb_key("web", "multiple", after).decode())
                await wait_for(
                    lambda: web.cloud.elb_instances("web") == {before, after},
                    timeout=TTL + 20,
                    what="the change after the fault",
                )
            finally:
                if fault == "freeze":
                    first.thaw()
            assert len(registered(running, after)) == 1
