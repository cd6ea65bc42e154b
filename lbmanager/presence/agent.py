"""`lbmanager agent`: presence keys for the running containers that opt in, on one lease.

It subscribes to the Docker events before it lists the containers, so nothing happens unseen
between the two; every event makes it look at that one container again, and the keys held are
always the union of what the serving containers want (so a key wanted by several containers
stays until the last one goes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp

from lbmanager.presence.container import view_from_inspect
from lbmanager.presence.labels import ContainerView, Identity, Match, wanted_keys
from lbmanager.presence.leases import LeasedKeys
from lbmanager.runtime.lifecycle import Shutdown, raise_when_set
from lbmanager.runtime.retry import Backoff, retry
from lbmanager.store.etcd import Store

log = logging.getLogger(__name__)

# Where Docker is when neither --docker nor DOCKER_HOST says.
DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What `lbmanager agent` was asked to do."""

    docker_url: str | None
    ttl: int
    identity: Identity
    matches: Sequence[Match] = ()
    prefix: str = "/lbManager"
    keep_on_exit: bool = False


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One container as the agent last saw it, and the keys it wants held."""

    id: str
    name: str
    serving: bool
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the agent holds now, for its status server."""

    containers: tuple[ContainerStatus, ...]
    keys: tuple[str, ...]  # held on the lease
    lease: int  # 0 when none
    problems: tuple[str, ...]
    waiting: str | None  # why it is not ready yet; None once ready


def docker_url(given: str | None) -> str:
    """The Docker daemon to follow: ``given`` (--docker), else DOCKER_HOST, else the local
    socket."""
    return given or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL


class DockerLost(Exception):
    """The Docker daemon or its event stream went away."""


class Agent:
    """Follows one Docker daemon and holds the keys its containers want."""

    def __init__(self, store: Store, config: AgentConfig, backoff: Backoff | None = None) -> None:
        self._config = config
        self._docker_url = docker_url(config.docker_url)
        self._backoff = backoff or Backoff()
        self._held = LeasedKeys(store, config.ttl, backoff)
        self._views: dict[str, ContainerView] = {}
        self._problems: dict[str, list[str]] = {}
        self._wants: dict[str, tuple[str, ...]] = {}  # container id -> the keys it wants
        self._wanted: dict[str, bytes] = {}  # their union
        self._holding: dict[str, bytes] | None = None
        self._following = False  # listed, and the event stream is open
        self.running = False
        self.ready = asyncio.Event()

    def status(self) -> AgentStatus:
        """A snapshot of the containers seen, the keys held and why it is not ready, if not."""
        containers = tuple(
            ContainerStatus(view.id, view.name, view.serving, self._wants.get(view.id, ()))
            for view in sorted(self._views.values(), key=lambda view: view.name)
        )
        return AgentStatus(
            containers,
            tuple(sorted(self._holding or {})),
            self._held.lease,
            tuple(problem for found in self._problems.values() for problem in found),
            self._waiting(),
        )

    def _waiting(self) -> str | None:
        if not self._following:
            return f"waiting for Docker at {self._docker_url}"
        if self._wanted and (self._holding != self._wanted or not self._held.lease):
            return "waiting for etcd"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (or a failure nothing retries); then revoke the lease unless told to
        keep the keys."""
        self.running = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._held.keep_alive())
                group.create_task(self._follow_docker())
                group.create_task(raise_when_set(stop))
        except* Shutdown:
            pass
        finally:
            self.running = False
            if self._config.keep_on_exit:
                log.info("leaving the keys to expire with their lease (--keep-on-exit)")
            else:
                await self._held.withdraw()

    async def _follow_docker(self) -> None:
        while True:
            await retry(
                self._follow_once,
                what=f"waiting for Docker at {self._docker_url}",
                on=DockerLost,
                backoff=self._backoff,
                logger=log,
            )
            # The stream broke after a good listing: reconnect soon, but never in a tight loop.
            await asyncio.sleep(self._backoff.initial)

    async def _follow_once(self) -> None:
        """Subscribe, list, then apply events until the stream ends; raise only if it never
        worked, so the backoff grows across failed reconnects only."""
        listed = False
        try:
            async with aiodocker.Docker(url=self._docker_url) as docker:
                # Replayed from a moment before the listing: no event between the two is lost,
                # and one seen twice only makes us look at its container again.
                since = str(int(time.time()) - 1)
                filters = json.dumps({"type": ["container"]})
                subscriber = docker.events.subscribe(  # type: ignore[no-untyped-call]
                    since=since, filters=filters
                )
                await self._list(docker)
                listed = True
                while (event := await subscriber.get()) is not None:
                    await self._on_event(docker, event)
            log.warning("Docker event stream ended; reconnecting")
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as error:
            if not listed:
                raise DockerLost(f"Docker unavailable: {error}") from error
            log.warning("Docker unavailable (%s); reconnecting", error)
        finally:
            self._following = False

    async def _list(self, docker: aiodocker.Docker) -> None:
        self._views = {}
        for container in await docker.containers.list():
            await self._look(docker, container.id)
        self._following = True
        await self._publish()
        log.info("agent ready: %d containers, %d keys", len(self._views), len(self._holding or {}))
        self.ready.set()

    async def _on_event(self, docker: aiodocker.Docker, event: dict[str, Any]) -> None:
        container_id = event.get("Actor", {}).get("ID") or event.get("id")
        # Health checks run as exec_* events every few seconds; they change nothing we read.
        if not container_id or str(event.get("Action", "")).startswith("exec_"):
            return
        if event.get("Action") == "destroy":
            self._views.pop(container_id, None)
            self._problems.pop(container_id, None)
        else:
            await self._look(docker, container_id)
        await self._publish()

    async def _look(self, docker: aiodocker.Docker, container_id: str) -> None:
        try:
            inspect = await (await docker.containers.get(container_id)).show()
        except aiodocker.DockerError as error:
            if error.status != 404:
                raise
            self._views.pop(container_id, None)  # gone meanwhile
            return
        self._views[container_id] = view_from_inspect(inspect)

    async def _publish(self) -> None:
        wanted: dict[str, bytes] = {}
        self._wants = {}
        for view in self._views.values():
            result = wanted_keys(
                view, self._config.identity, self._config.matches, self._config.prefix
            )
            self._report(view, result.problems)
            keys = {} if result.problems else result.keys
            self._wants[view.id] = tuple(sorted(keys))
            wanted.update((key, value.encode()) for key, value in keys.items())
        self._wanted = wanted
        if wanted == self._holding:
            return
        await self._held.put(wanted)
        self._holding = wanted
        log.info("holding %d keys", len(wanted))

    def _report(self, view: ContainerView, problems: list[str]) -> None:
        """Warn about a container's bad labels once, not at every event."""
        if problems and self._problems.get(view.id) != problems:
            for problem in problems:
                log.warning("skipping %s", problem)
        self._problems[view.id] = problems
