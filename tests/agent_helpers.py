"""`lbmanager agent` against the test dockerd and etcd, as a subprocess or in the test's own
event loop, and its keys awaited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aetcd
from cli_helpers import RunningCli, cli_env, running_cli
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import FAST_BACKOFF, wait_for
from servers import HOST, EtcdServer, _pipe

from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.labels import Identity
from lbmanager.store.etcd import Store

INSTANCE = "i-0123456789abcdef0"
HOST_IP = "127.0.0.1"
READY = r"agent ready: \d+ containers, \d+ keys"


def elb_key(name: str, member_class: str = "multiple") -> str:
    """The classic ELB member key this host's agent holds for load balancer ``name``."""
    return f"/lbManager/elb/us-east-1/{name}/{member_class}/{INSTANCE}"


def elb_label(name: str) -> dict[str, str]:
    """The label asking for ELB ``name`` in us-east-1."""
    return {"lbmanager.elb": f"us-east-1/{name}"}


@contextlib.asynccontextmanager
async def running_agent(
    engine: DockerEngine | DockerLink,
    etcd_server: EtcdServer,
    *extra: str,
    ttl: float = 15,
    ready: bool = True,
) -> AsyncIterator[RunningCli]:
    """Run `lbmanager agent` on the test engine and etcd; awaited until ready unless told not."""
    docker_url = engine.url if isinstance(engine, DockerLink) else engine.host
    args = (
        "agent",
        "--docker",
        docker_url,
        "--instance-id",
        INSTANCE,
        "--host-ip",
        HOST_IP,
        "--ttl",
        f"{ttl:g}",
        "--etcd-endpoints",
        etcd_server.endpoint,
        *extra,
    )
    async with running_cli(*args, env=cli_env(etcd_server.endpoint)) as cli:
        if ready:
            await cli.wait_line(READY)
        yield cli


@dataclass(frozen=True, slots=True)
class AgentTask:
    """A presence agent running in this event loop, and the task running it."""

    agent: Agent
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def agent_in_process(
    docker_url: str | None,
    etcd_server: EtcdServer,
    identity: Identity,
    *,
    ttl: float = 5,
    ready: bool = True,
) -> AsyncIterator[AgentTask]:
    """Run a presence agent on ``docker_url`` (None: the default socket) and the test etcd as a
    task beside the test, awaited ready unless told not; stopped, and its store closed, on exit."""
    store = Store([(HOST, etcd_server.port)])
    agent = Agent(store, AgentConfig(docker_url, ttl, identity), FAST_BACKOFF)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        if ready:
            await asyncio.wait_for(agent.ready.wait(), 15)
        yield AgentTask(agent, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await store.close()


async def lease_of(etcd: aetcd.Client, key: str) -> int | None:
    """The lease holding ``key`` (0 if none), or None while the key is absent."""
    found = await etcd.get(key.encode())
    return None if found is None else found.lease


async def wait_held(etcd: aetcd.Client, key: str, within: float = 15) -> int:
    """Wait until ``key`` exists; it must be on a lease; return the lease id."""
    (lease,) = await wait_for(lambda: _present(etcd, key), within, what=f"key {key}")
    assert lease != 0, f"{key} is not on a lease"
    return int(lease)


async def _present(etcd: aetcd.Client, key: str) -> tuple[int] | None:
    found = await etcd.get(key.encode())
    return None if found is None else (found.lease,)


async def wait_gone(etcd: aetcd.Client, key: str, within: float = 15) -> None:
    """Wait until ``key`` is absent."""
    await wait_for(lambda: _absent(etcd, key), within, what=f"{key} withdrawn")


async def _absent(etcd: aetcd.Client, key: str) -> bool:
    return await etcd.get(key.encode()) is None


async def barrier(docker: DockerClient, etcd: aetcd.Client, tag: str) -> None:
    """Start a container wanting its own key and await that key: the agent has handled every
    earlier event (it takes events in order), so what it has not done by now it will not do."""
    await docker.run(elb_label(f"barrier-{tag}"))
    await wait_held(etcd, elb_key(f"barrier-{tag}"))


async def docker_exec(docker: DockerClient, cid: str, *cmd: str) -> None:
    """Run ``cmd`` inside a running container and wait for it to finish (exit status 0)."""
    created = await docker.call("POST", f"/containers/{cid}/exec", json={"Cmd": list(cmd)})
    exec_id = created["Id"]
    await docker.call("POST", f"/exec/{exec_id}/start", json={"Detach": True})

    async def finished() -> dict[str, object] | None:
        found: dict[str, object] = await docker.call("GET", f"/exec/{exec_id}/json")
        return None if found["Running"] else found

    result = await wait_for(finished, what=f"exec {cmd}")
    assert result["ExitCode"] == 0, result


async def health(docker: DockerClient, cid: str, status: str) -> bool:
    """True once Docker reports the container's health as ``status``."""
    return bool((await docker.inspect(cid))["State"]["Health"]["Status"] == status)


class DockerLink:
    """A loopback TCP front (tcp://127.0.0.1:PORT) of the engine's unix socket whose
    connections the test can cut, as a lost event stream, while dockerd runs on."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path, self.port, self.is_cut = socket_path, 0, False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """The --docker value reaching the engine through this link."""
        return f"tcp://{HOST}:{self.port}"

    async def __aenter__(self) -> DockerLink:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()

    async def cut(self) -> None:
        """Drop every live connection and each new one until restore()."""
        self.is_cut = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def restore(self) -> None:
        """Forward new connections again."""
        self.is_cut = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if not self.is_cut:
                up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
                try:
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                finally:
                    up_writer.close()
        except OSError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
