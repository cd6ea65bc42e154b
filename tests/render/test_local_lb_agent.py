"""End to end: a labelled container's port appears in a real nginx, through agent and service."""

from __future__ import annotations

from pathlib import Path

import aetcd
from agent_helpers import agent_in_process
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import wait_for
from local_lb import NginxServer, reached, rendering_service, write_render_config
from servers import HOST, EtcdServer, free_port

from lbmanager.presence.labels import Identity
from lbmanager.settings import Settings


async def test_labelled_container_port_appears_in_nginx(  # noqa: PLR0917 - fixtures
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
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
    port = free_port()
    try:
        async with (
            agent_in_process(docker_engine.host, etcd_server, Identity(host_ip=HOST)),
            rendering_service(settings, path),
        ):
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
        nginx.stop()


async def _serves(nginx: NginxServer, expected: set[str]) -> bool:
    try:
        return await reached(nginx.port, 3) == expected
    except OSError:  # a connection cut by a reload in progress: ask again
        return False
