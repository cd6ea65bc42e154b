"""End to end: a labelled container's port appears in a real nginx, through agent and service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aetcd
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import FAST_BACKOFF, wait_for
from local_lb import NginxServer, reached, rendering_service, write_render_config
from servers import HOST, free_port

from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.labels import Identity
from lbmanager.settings import Settings
from lbmanager.store.etcd import Store


async def test_labelled_container_port_appears_in_nginx(
    etcd: aetcd.Client,
    docker_engine: DockerEngine,
    docker: DockerClient,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A container labelled lbmanager.upstream=web serving on the host network: its port joins
    nginx's upstream and requests reach it; stopped: it leaves, and nginx answers 503."""
    nginx = NginxServer(tmp_path)
    path = write_render_config(nginx, upstreams=["web"])
    nginx.start_from(path)
    store = Store(settings.endpoints())
    agent = Agent(store, AgentConfig(docker_engine.host, 5, Identity(host_ip=HOST)), FAST_BACKOFF)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    port = free_port()
    try:
        async with rendering_service(settings, path):
            await asyncio.wait_for(agent.ready.wait(), 15)
            assert await reached(nginx.port, 1) == {"HTTP 503"}
            script = (
                f"mkdir -p /www && echo -n from-container > /www/index.html && "
                f"exec httpd -f -p {HOST}:{port} -h /www"
            )
            container = await docker.run(
                {"lbmanager.upstream": "web", "lbmanager.port": str(port)},
                cmd=("sh", "-c", script),
                network="host",
            )
            key = f"/lbManager/upstream/web/multiple/{HOST}:{port}".encode()
            await wait_for(lambda: etcd.get(key), what="the agent's upstream key")
            await wait_for(lambda: _serves(nginx, {"from-container"}), what="nginx -> container")
            await docker.action(container, "stop")
            await wait_for(lambda: _serves(nginx, {"HTTP 503"}), what="nginx answers 503")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await store.close()
        nginx.stop()


async def _serves(nginx: NginxServer, expected: set[str]) -> bool:
    try:
        return await reached(nginx.port, 3) == expected
    except OSError:  # a connection cut by a reload in progress: ask again
        return False
