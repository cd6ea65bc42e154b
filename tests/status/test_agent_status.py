"""The status server of `lbmanager agent`, against a real dockerd and etcd."""

from __future__ import annotations

from typing import Any

import aetcd
import aiohttp
from agent_helpers import (
    INSTANCE,
    READY,
    DockerLink,
    elb_key,
    elb_label,
    running_agent,
    wait_held,
)
from cli_helpers import ClosingListener, assert_usage_error, cli_env, run_cli, running_cli
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import wait_for
from servers import HOST, EtcdServer, free_port

WEB = elb_key("web")
TEXT = "text/plain; charset=utf-8"


async def get(address: str, path: str) -> tuple[int, str, str]:
    """Status, content type and body of GET ``path`` on ``address``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{address}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def status_of(address: str) -> dict[str, Any]:
    """The agent's /status JSON."""
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/status") as got:
        assert got.content_type == "application/json"
        document: dict[str, Any] = await got.json()
        return document


async def test_agent_status_lists_the_container_its_key_and_the_lease(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """With a labelled container held: /healthz and /readyz 200, /status names the container,
    its key and the lease, /metrics answers in the Prometheus text format."""
    cid = await docker.run(elb_label("web"))
    name = (await docker.inspect(cid))["Name"].lstrip("/")
    address = f"{HOST}:{free_port()}"
    async with running_agent(docker_engine, etcd_server, "--status-addr", address):
        lease = await wait_held(etcd, WEB)
        assert await get(address, "/healthz") == (200, TEXT, "ok")
        assert await get(address, "/readyz") == (200, TEXT, "ready")
        document = await status_of(address)
        assert document.pop("version")
        assert document == {
            "containers": [{"id": cid, "name": name, "serving": True, "keys": [WEB]}],
            "keys": [WEB],
            "lease": f"{lease:x}",
            "problems": [],
        }
        status, content_type, body = await get(address, "/metrics")
        assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
        assert "lbmanager_" in body


async def test_agent_ready_only_once_docker_is_reached(
    docker_engine: DockerEngine, etcd_server: EtcdServer
) -> None:
    """While Docker is out of reach the agent is healthy but /readyz says what it waits for;
    once Docker answers (nothing wanted, nothing held) it is ready."""
    address = f"{HOST}:{free_port()}"
    async with DockerLink(docker_engine.socket_path) as link:
        await link.cut()
        async with running_agent(link, etcd_server, "--status-addr", address, ready=False) as agent:
            waiting = (503, TEXT, f"waiting for Docker at {link.url}")
            await wait_for(lambda: answers(address, "/readyz", waiting), what="/readyz waiting")
            assert await get(address, "/healthz") == (200, TEXT, "ok")
            link.restore()
            await agent.wait_line(READY)
            assert await get(address, "/readyz") == (200, TEXT, "ready")


async def test_agent_not_ready_while_etcd_is_out_of_reach(
    docker_engine: DockerEngine, docker: DockerClient
) -> None:
    """A container listed but its key not yet held: /readyz waits for etcd, and /status shows
    the key wanted by the container, none held and no lease."""
    cid = await docker.run(elb_label("web"))
    address, etcd_endpoint = f"{HOST}:{free_port()}", f"http://{HOST}:{free_port()}"
    args = ("--docker", docker_engine.host, "--instance-id", INSTANCE, "--host-ip", HOST)
    async with running_cli("agent", *args, "--status-addr", address, env=cli_env(etcd_endpoint)):
        waiting = (503, TEXT, "waiting for etcd")
        await wait_for(lambda: answers(address, "/readyz", waiting), what="/readyz waiting")
        document = await status_of(address)
        assert [(c["id"], c["keys"]) for c in document["containers"]] == [(cid, [WEB])]
        assert (document["keys"], document["lease"]) == ([], None)


async def answers(address: str, path: str, expected: tuple[int, str, str]) -> bool:
    """True once GET ``path`` answers ``expected`` (False while nothing listens yet)."""
    try:
        return await get(address, path) == expected
    except aiohttp.ClientConnectionError:
        return False


async def test_agent_with_its_status_address_in_use_exits_2(etcd_server: EtcdServer) -> None:
    """A status address in use: one line naming it, exit 2."""
    port = free_port()
    async with ClosingListener(port):
        result = await run_cli(
            "agent",
            "--status-addr",
            f"{HOST}:{port}",
            "--instance-id",
            INSTANCE,
            "--host-ip",
            HOST,
            env=cli_env(etcd_server.endpoint),
        )
    assert_usage_error(result, f"{HOST}:{port}", "--status-addr")
    assert result.stdout == ""
