"""End to end: a container labelled lbmanager.elbv2 joins an ip-type target group through the
agent and the service (issue 12), and leaves it when it stops."""

from __future__ import annotations

import pytest
from agent_helpers import agent_in_process
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import Cloud, running_service, wait_for
from servers import EtcdServer

from lbmanager.presence.labels import Identity
from lbmanager.settings import Settings

LABEL = {"lbmanager.elbv2": "us-east-1/web-tg"}


async def _container(docker: DockerClient, case: str) -> str:
    """A container wanting target group web-tg: its port published on the test bridge (on
    127.0.0.1), on the bridge for --internal, or on the host network with lbmanager.port."""
    if case == "host network":
        return await docker.run({**LABEL, "lbmanager.port": "8080"}, network="host")
    return await docker.run(LABEL, network=await docker.bridge_network(), ports={8080: 0})


async def _member(docker: DockerClient, cid: str, case: str) -> str:
    """The target the container should be: host IP and published port, container IP and
    port, or host IP and container port."""
    network = (await docker.inspect(cid))["NetworkSettings"]
    if case == "published":
        return f"127.0.0.1:{network['Ports']['8080/tcp'][0]['HostPort']}"
    if case == "internal":
        (ip,) = {n["IPAddress"] for n in network["Networks"].values()}
        return f"{ip}:8080"
    return "10.0.0.7:8080"


IDENTITIES = {  # the test engine publishes on 127.0.0.1 only: the binding the agent needs
    "published": Identity(host_ip="127.0.0.1"),
    "internal": Identity(host_ip="10.0.0.7", internal=True),
    "host network": Identity(host_ip="10.0.0.7"),
}


@pytest.mark.parametrize("case", IDENTITIES)
async def test_labelled_container_joins_and_leaves_a_target_group(  # noqa: PLR0917 - fixtures
    etcd_server: EtcdServer,
    docker_engine: DockerEngine,
    docker: DockerClient,
    cloud: Cloud,
    settings: Settings,
    case: str,
) -> None:
    """Start → its address and port registered with the target group; stop → deregistered."""
    cloud.create_target_group("web-tg", target_type="ip")
    async with (
        agent_in_process(docker_engine.host, etcd_server, IDENTITIES[case]),
        running_service(settings),
    ):
        container = await _container(docker, case)
        member = await _member(docker, container, case)
        await wait_for(lambda: cloud.targets("web-tg") == {member}, what=f"{member} registered")
        await docker.action(container, "stop")
        await wait_for(lambda: not cloud.targets("web-tg"), what=f"{member} deregistered")
