"""End to end: a labelled container reaches a classic ELB and Route53 through agent and service."""

from __future__ import annotations

from agent_helpers import agent_in_process
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import Cloud, running_service, wait_for
from servers import EtcdServer

from lbmanager.presence.labels import Identity
from lbmanager.settings import Settings


async def test_labelled_container_joins_and_leaves_elb_and_route53(
    etcd_server: EtcdServer,
    docker_engine: DockerEngine,
    docker: DockerClient,
    cloud: Cloud,
    settings: Settings,
) -> None:
    """Start → instance registered and A record published; stop → both withdrawn."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    zone = cloud.create_zone("example.com")
    identity = Identity(instance_id=instance, host_ip="192.0.2.7")
    async with (
        agent_in_process(docker_engine.host, etcd_server, identity),
        running_service(settings),
    ):
        container = await docker.run(
            {
                "lbmanager.elb": "us-east-1/web",
                "lbmanager.route53": f"us-east-1/{zone}/www.example.com",
            }
        )
        await wait_for(lambda: cloud.elb_instances("web") == {instance}, what="registered")
        await wait_for(
            lambda: cloud.records(zone) == {("www.example.com.", "A"): {"192.0.2.7"}},
            what="A record",
        )
        await docker.action(container, "stop")
        await wait_for(lambda: not cloud.elb_instances("web"), what="deregistered")
        await wait_for(lambda: not cloud.records(zone), what="A record deleted")
