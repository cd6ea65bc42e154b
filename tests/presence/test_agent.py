"""`lbmanager agent`: keys for running containers on one lease, against a real dockerd and etcd."""

from __future__ import annotations

import asyncio
import signal
import time

import aetcd
import pytest
from agent_helpers import (
    HOST_IP,
    READY,
    DockerLink,
    barrier,
    docker_exec,
    elb_key,
    elb_label,
    health,
    lease_of,
    running_agent,
    wait_gone,
    wait_held,
)
from cli_helpers import etcd_keys
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import wait_for
from servers import EtcdServer

ZONE = "Z0123456789ABCDEFGHIJ"
WEB = "/lbManager/elb/us-east-1/web/multiple/i-0123456789abcdef0"


async def test_labelled_container_key_on_a_lease_withdrawn_by_stop_kill_and_removal(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A labelled container's ELB key appears on a lease; stop, kill and removal each withdraw."""
    async with running_agent(docker_engine, etcd_server) as agent:
        web = await docker.run(elb_label("web"))
        lease = await wait_held(etcd, WEB)
        await agent.wait_line(r"holding 1 keys")
        others = {verb: await docker.run(elb_label(f"web-{verb}")) for verb in ("kill", "rm")}
        for verb in others:
            assert await wait_held(etcd, elb_key(f"web-{verb}")) == lease, "one lease per agent"
        await docker.action(web, "stop", t="1")
        await wait_gone(etcd, WEB)
        await docker.action(others["kill"], "kill")
        await wait_gone(etcd, elb_key("web-kill"))
        await docker.remove(others["rm"])
        await wait_gone(etcd, elb_key("web-rm"))
        assert await etcd_keys(etcd, "/lbManager/") == set()
        await agent.wait_line(r"holding 0 keys")


async def test_pause_withdraws_and_unpause_puts_back(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """Pausing a container withdraws its key; unpausing puts it back."""
    async with running_agent(docker_engine, etcd_server):
        cid = await docker.run(elb_label("web"))
        await wait_held(etcd, WEB)
        await docker.action(cid, "pause")
        await wait_gone(etcd, WEB)
        await docker.action(cid, "unpause")
        await wait_held(etcd, WEB)


async def test_route53_label_uses_the_host_ip(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A Route53 label wants a key whose member is --host-ip, with the FQDN in canonical form."""
    async with running_agent(docker_engine, etcd_server):
        await docker.run(
            {"lbmanager.route53": f"us-east-1/{ZONE}/WWW.Example.com", "lbmanager.class": "single"}
        )
        key = f"/lbManager/route53/us-east-1/{ZONE}/www.example.com./single/{HOST_IP}"
        await wait_held(etcd, key)
        assert await etcd_keys(etcd, "/lbManager/") == {key}


async def test_health_gates_the_key(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A container with a HEALTHCHECK holds its key only while healthy."""
    async with running_agent(docker_engine, etcd_server):
        cid = await docker.run(elb_label("web"), health_cmd="test -f /ready")
        await wait_for(lambda: health(docker, cid, "unhealthy"), what="unhealthy")
        await barrier(docker, etcd, "unhealthy")
        assert await etcd.get(WEB.encode()) is None, "an unhealthy container holds its key"
        await docker_exec(docker, cid, "touch", "/ready")
        await wait_held(etcd, WEB)
        await docker_exec(docker, cid, "rm", "/ready")
        await wait_gone(etcd, WEB)


async def test_shared_key_stays_until_the_last_container_goes(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """Two containers wanting one key: it stays when one stops and goes with the second."""
    async with running_agent(docker_engine, etcd_server):
        first, second = await docker.run(elb_label("web")), await docker.run(elb_label("web"))
        await wait_held(etcd, WEB)
        await docker.action(first, "kill")
        await barrier(docker, etcd, "one-left")
        assert await etcd.get(WEB.encode()) is not None, "withdrawn while a container wants it"
        await docker.action(second, "kill")
        await wait_gone(etcd, WEB)


async def test_sigterm_revokes_the_lease_at_once(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """SIGTERM: the agent revokes its lease (keys gone when it has exited) and exits 0."""
    async with running_agent(docker_engine, etcd_server) as agent:
        await docker.run(elb_label("web"))
        lease = await wait_held(etcd, WEB)
        assert await agent.stop(signal.SIGTERM) == 0, agent.stderr
        assert await etcd.get(WEB.encode()) is None
        assert (await etcd.get_lease_info(lease)).TTL == -1, "the lease was left to expire"


async def test_keep_on_exit_leaves_the_lease_to_expire(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """With --keep-on-exit the key outlives the agent, then expires within TTL + 1 s."""
    async with running_agent(docker_engine, etcd_server, "--keep-on-exit", ttl=2) as agent:
        await docker.run(elb_label("web"))
        await wait_held(etcd, WEB)
        assert await agent.stop(signal.SIGTERM) == 0, agent.stderr
        exited = time.monotonic()
        assert await etcd.get(WEB.encode()) is not None, "revoked despite --keep-on-exit"
        await wait_gone(etcd, WEB, within=3)
        assert time.monotonic() - exited < 3


async def test_sigkill_keys_expire_within_ttl(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """The lease is kept alive past its TTL; after SIGKILL the keys go within TTL + 1 s."""
    async with running_agent(docker_engine, etcd_server, ttl=2) as agent:
        await docker.run(elb_label("web"))
        lease = await wait_held(etcd, WEB)
        await asyncio.sleep(3)  # proving a non-event: the key outlives its 2 s TTL
        assert await lease_of(etcd, WEB) == lease, "the lease was not kept alive"
        agent.proc.kill()
        killed = time.monotonic()
        await wait_gone(etcd, WEB, within=3)
        assert time.monotonic() - killed < 3


async def test_lost_lease_is_replaced_and_keys_put_again(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """When its lease vanishes (revoked here, as an expiry would), the agent puts keys again on a
    new lease, including a key wanted meanwhile, and keeps following Docker afterwards."""
    async with running_agent(docker_engine, etcd_server, ttl=6) as agent:
        await docker.run(elb_label("web"))
        lease = await wait_held(etcd, WEB)
        await etcd.revoke_lease(lease)
        await docker.run(elb_label("meanwhile"))  # put before the agent sees the lease gone
        renewed = await wait_held(etcd, WEB)
        assert renewed != lease
        assert await wait_held(etcd, elb_key("meanwhile")) == renewed
        await docker.run(elb_label("later"))
        assert await wait_held(etcd, elb_key("later")) == renewed, agent.stderr


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_dockerd_restart_reconnects_and_reconciles(
    docker_engine: DockerEngine,
    docker: DockerClient,
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
    how: str,
) -> None:
    """dockerd restarts (or crashes and starts again): the keys of the containers it stopped go,
    from a fresh listing if no event said so, and a container started afterwards registers."""
    async with running_agent(docker_engine, etcd_server) as agent:
        await docker.run(elb_label("web"))
        await wait_held(etcd, WEB)
        if how == "restart":
            await docker_engine.restart_async()
        else:
            await asyncio.to_thread(docker_engine.kill)
            await asyncio.to_thread(docker_engine.start)
        await wait_gone(etcd, WEB, within=30)
        await docker.run(elb_label("after"))
        await wait_held(etcd, elb_key("after"), within=30)
        assert agent.proc.returncode is None
        assert "Traceback" not in agent.stderr, agent.stderr


async def test_lost_event_stream_reconciles_from_a_fresh_listing(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """The Docker link drops while dockerd runs on; a container stopped meanwhile (no event ever
    reaches the agent) loses its key once the agent reconnects and lists again."""
    async with (
        DockerLink(docker_engine.socket_path) as link,
        running_agent(link, etcd_server) as agent,
    ):
        cid = await docker.run(elb_label("web"))
        await wait_held(etcd, WEB)
        await link.cut()
        await docker.action(cid, "kill")
        await asyncio.sleep(1.5)  # past any replay of recent events on reconnect
        link.restore()
        await wait_gone(etcd, WEB, within=20)
        await docker.run(elb_label("after"))
        await wait_held(etcd, elb_key("after"))
        assert "Traceback" not in agent.stderr, agent.stderr


async def test_name_match_registers_unlabelled_container(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """--match: an unlabelled container whose name the regex finds wants the target's key."""
    async with running_agent(docker_engine, etcd_server, "--match", "^web-=elb/us-east-1/web"):
        await docker.run(name="api-1")
        await docker.run(name="web-1")
        await wait_held(etcd, WEB)
        await barrier(docker, etcd, "names")
        assert await etcd_keys(etcd, "/lbManager/") == {WEB, elb_key("barrier-names")}


async def test_bad_label_warns_and_skips_the_container(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A bad label logs a WARNING naming container and label; others still register."""
    async with running_agent(docker_engine, etcd_server) as agent:
        await docker.run({**elb_label("bad"), "lbmanager.class": "sometimes"}, name="bad-1")
        line = await agent.wait_line(r"WARNING.*bad-1")
        assert "lbmanager.class" in line, line
        await docker.run(elb_label("web"), name="good-1")
        await wait_held(etcd, WEB)
        assert await etcd_keys(etcd, "/lbManager/") == {WEB}
        assert agent.proc.returncode is None


async def test_containers_running_before_the_agent_are_listed(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """Containers already running when the agent starts are picked up from the listing."""
    await docker.run(elb_label("web"))
    await docker.run(elb_label("web"))
    await docker.run(elb_label("other"))
    await docker.run()  # no labels: counted, wants nothing
    async with running_agent(docker_engine, etcd_server, ready=False) as agent:
        line = await agent.wait_line(READY)
        assert "4 containers, 2 keys" in line, line
        await wait_held(etcd, WEB)
        await wait_held(etcd, elb_key("other"))
