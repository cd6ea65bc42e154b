"""A small async Docker API client for tests: aiohttp over a unix socket, and the event stream.

Used through the `docker` fixture of docker_engine.py (which points it at the test dockerd).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

BRIDGE = "lbmanager-test"


class EventStream:
    """An open GET /events response; read with next() or wait_for()."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> dict[str, Any]:
        """The next event; EOFError when dockerd closed the stream."""
        line = await self.response.content.readline()
        if not line:
            raise EOFError("docker event stream closed")
        event: dict[str, Any] = json.loads(line)
        return event

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], within: float = 15
    ) -> dict[str, Any]:
        """The first event for which match() is true, within `within` seconds."""
        async with asyncio.timeout(within):
            while not match(event := await self.next()):
                pass
            return event


class DockerClient:
    """A small async Docker API client (aiohttp over the engine's unix socket) for tests."""

    def __init__(self, socket_path: Path, image: str) -> None:
        self.image = image
        self.session = aiohttp.ClientSession(
            "http://docker", connector=aiohttp.UnixConnector(path=str(socket_path))
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.session.close()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call: the decoded JSON body (None when empty); raises on a non-2xx status."""
        async with self.session.request(method, path, **kwargs) as resp:
            body = await resp.read()
            if resp.status >= 300:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=body.decode(errors="replace")
                )
            return json.loads(body) if body.strip() else None

    async def run(
        self,
        labels: Mapping[str, str] | None = None,
        *,
        cmd: Sequence[str] = ("sleep", "1000"),
        name: str | None = None,
        network: str = "none",
        ports: Mapping[int, int] | None = None,
        health_cmd: str | None = None,
        health_interval: float = 0.2,
    ) -> str:
        """Create and start a container (default: `sleep 1000`, --network none); return its id.

        `ports` maps container port -> host port on 127.0.0.1 (0: any); they are published only on
        a bridge network (see bridge_network()).
        """
        exposed: dict[str, dict[str, str]] = {f"{p}/tcp": {} for p in ports or {}}
        bindings = {f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(h)}]
                    for p, h in (ports or {}).items()}  # fmt: skip
        config: dict[str, Any] = {
            "Image": self.image, "Cmd": list(cmd),
            "Labels": dict(labels or {}), "ExposedPorts": exposed,
            "HostConfig": {"NetworkMode": network, "PortBindings": bindings, "Init": True},
        }  # fmt: skip
        if health_cmd is not None:
            nanos = int(health_interval * 1e9)
            config["Healthcheck"] = {
                "Test": ["CMD-SHELL", health_cmd], "Interval": nanos, "Timeout": 5 * nanos,
                "Retries": 1,
            }  # fmt: skip
        params = {"name": name} if name else None
        created = await self.call("POST", "/containers/create", params=params, json=config)
        cid: str = created["Id"]
        await self.call("POST", f"/containers/{cid}/start")
        return cid

    async def action(self, cid: str, verb: str, **params: str) -> None:
        """POST /containers/{cid}/{verb}: stop, kill, pause, unpause, restart, start."""
        await self.call("POST", f"/containers/{cid}/{verb}", params=params or None)

    async def remove(self, cid: str) -> None:
        """Force-remove a container (kills it if running)."""
        await self.call("DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})

    async def inspect(self, cid: str) -> dict[str, Any]:
        """GET /containers/{cid}/json."""
        result: dict[str, Any] = await self.call("GET", f"/containers/{cid}/json")
        return result

    async def containers(self, all_: bool = False) -> list[dict[str, Any]]:
        """GET /containers/json (running only unless all_)."""
        result: list[dict[str, Any]] = await self.call(
            "GET", "/containers/json", params={"all": "1" if all_ else "0"}
        )
        return result

    async def bridge_network(self) -> str:
        """A user-defined bridge network (created once) on which published ports work."""
        filters = json.dumps({"name": [BRIDGE]})
        nets = await self.call("GET", "/networks", params={"filters": filters})
        if not any(n["Name"] == BRIDGE for n in nets):
            await self.call("POST", "/networks/create", json={"Name": BRIDGE, "Driver": "bridge"})
        return BRIDGE

    @contextlib.asynccontextmanager
    async def events(self, **filters: list[str]) -> AsyncIterator[EventStream]:
        """Subscribe to /events (subscribed on entry, so nothing after it is missed)."""
        params = {"filters": json.dumps(filters)} if filters else None
        async with self.session.get("/events", params=params, timeout=aiohttp.ClientTimeout()) as r:
            r.raise_for_status()
            yield EventStream(r)

    async def remove_all(self) -> None:
        """Force-remove every container of the engine."""
        for c in await self.containers(all_=True):
            with contextlib.suppress(aiohttp.ClientResponseError):
                await self.remove(c["Id"])
