"""End to end: a labelled container reaches a classic ELB and Route53 through agent and service."""

from __future__ import annotations

import asyncio

from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import FAST_BACKOFF, Cloud, running_service, wait_for
from servers import EtcdServer

from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.labels import Identity
from lbmanager.settings import Settings
from lbmanager.store.etcd import Store


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
    store = Store([("127.0.0.1", etcd_server.port)])
    agent = Agent(store, AgentConfig(docker_engine.host, 5, identity), FAST_BACKOFF)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with running_service(settings):
            await asyncio.wait_for(agent.ready.wait(), 15)
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
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await store.close()
