"""Start-up order: register and agent started before etcd or before Docker wait for them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd
import pytest
from agent_helpers import (
    INSTANCE,
    READY,
    agent_in_process,
    elb_key,
    elb_label,
    running_agent,
    wait_held,
)
from cli_helpers import cli_env, running_cli
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import wait_for
from servers import HOST, EtcdServer, free_port

from lbmanager.presence import agent as agent_module
from lbmanager.presence.agent import docker_url
from lbmanager.presence.labels import Identity

PATH = "elb/us-east-1/web/multiple/i-0123456789abcdef0"
WAITING_FOR_ETCD = r"WARNING .*waiting for etcd to hold 1 keys: .*127\.0\.0\.1"


@contextlib.asynccontextmanager
async def etcd_client(etcd_server: EtcdServer) -> AsyncIterator[aetcd.Client]:
    """A client of the test's etcd, opened after it (re)started."""
    client = aetcd.Client(host=HOST, port=etcd_server.port)
    try:
        yield client
    finally:
        await client.close()


async def test_register_started_before_etcd_holds_the_keys_once_it_answers(
    etcd_server: EtcdServer,
) -> None:
    """etcd down when register starts: it logs that it waits for etcd, keeps trying, and holds
    the key as soon as etcd is up; SIGTERM then withdraws it and exits 0."""
    await asyncio.to_thread(etcd_server.stop)
    async with running_cli("register", PATH, env=cli_env(etcd_server.endpoint)) as cli:
        await cli.wait_line(WAITING_FOR_ETCD)
        await asyncio.to_thread(etcd_server.start)
        async with etcd_client(etcd_server) as etcd:
            await wait_held(etcd, f"/lbManager/{PATH}", within=30)
            await cli.wait_line("INFO .*holding 1 keys on lease")
            assert await cli.stop(signal.SIGTERM) == 0, cli.stderr
            assert await etcd.get(f"/lbManager/{PATH}".encode()) is None
    assert "Traceback" not in cli.stderr, cli.stderr


async def test_agent_started_before_etcd_holds_the_keys_once_it_answers(
    docker_engine: DockerEngine, docker: DockerClient, etcd_server: EtcdServer
) -> None:
    """etcd down when the agent starts: it logs that it waits for etcd, and once etcd is up
    holds the key of a container that was already running; SIGTERM exits 0."""
    await docker.run(elb_label("web"))
    await asyncio.to_thread(etcd_server.stop)
    async with running_agent(docker_engine, etcd_server, ready=False) as agent:
        await agent.wait_line(WAITING_FOR_ETCD)
        await asyncio.to_thread(etcd_server.start)
        await agent.wait_line(READY, within=30)
        async with etcd_client(etcd_server) as etcd:
            await wait_held(etcd, elb_key("web"))
        assert await agent.stop(signal.SIGTERM) == 0, agent.stderr
    assert "Traceback" not in agent.stderr, agent.stderr


async def test_agent_moves_on_to_the_next_etcd_endpoint(
    docker_engine: DockerEngine, docker: DockerClient, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """With the first of two --etcd-endpoints dead, the agent puts its keys through the second."""
    endpoints = f"http://{HOST}:{free_port()},{etcd_server.endpoint}"
    async with running_agent(docker_engine, etcd_server, "--etcd-endpoints", endpoints) as agent:
        await docker.run(elb_label("web"))
        await wait_held(etcd, elb_key("web"))
        assert await agent.stop(signal.SIGTERM) == 0, agent.stderr


async def test_agent_waits_for_a_missing_docker_socket(tmp_path: Path) -> None:
    """--docker naming a socket that does not exist: a warning naming it, retries, no
    traceback, and SIGTERM still exits 0."""
    socket = f"unix://{tmp_path}/docker.sock"
    args = ("agent", "--docker", socket, "--instance-id", INSTANCE, "--host-ip", HOST)
    async with running_cli(*args, env=cli_env()) as cli:
        await cli.wait_line(f"WARNING .*waiting for Docker at {socket}: .*attempt 2")
        assert await cli.stop(signal.SIGTERM) == 0, cli.stderr
    assert "Traceback" not in cli.stderr, cli.stderr


def test_docker_url_is_the_flag_else_docker_host_else_the_local_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--docker wins over DOCKER_HOST, which wins over unix:///var/run/docker.sock."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert docker_url(None) == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert docker_url(None) == "tcp://127.0.0.1:2375"
    assert docker_url("unix:///run/other.sock") == "unix:///run/other.sock"


async def test_agent_without_docker_settings_waits_for_the_default_socket(  # noqa: PLR0917 - fixtures
    docker_engine: DockerEngine,
    docker: DockerClient,
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No --docker, no DOCKER_HOST and no socket at the default path: the agent logs that it
    waits for that socket, and serves as soon as the socket appears."""
    default = tmp_path / "docker.sock"
    monkeypatch.setattr(agent_module, "DEFAULT_DOCKER_URL", f"unix://{default}")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    identity = Identity(instance_id=INSTANCE, host_ip=HOST)
    async with agent_in_process(None, etcd_server, identity, ttl=15, ready=False) as running:
        waiting = f"waiting for Docker at unix://{default}: "
        await wait_for(lambda: waiting in caplog.text, what="the warning naming the socket")
        assert not running.task.done()
        default.symlink_to(docker_engine.socket_path)  # the socket appears
        await asyncio.wait_for(running.agent.ready.wait(), 15)
        await docker.run(elb_label("web"))
        await wait_held(etcd, elb_key("web"))
