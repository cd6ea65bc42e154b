"""The status server of `lbmanager agent` (SPEC §9): /healthz, /readyz, /status and /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from aiohttp import web

from lbmanager.presence.agent import Agent
from lbmanager.status.server import VERSION, serve_app, status_app

_AGENT = web.AppKey("agent", Agent)


@contextlib.asynccontextmanager
async def agent_status_server(agent: Agent, address: str) -> AsyncIterator[None]:
    """Serve the status of ``agent`` on ``address`` (HOST:PORT; empty: serve nothing) while
    the block runs; an address in use exits 2 with one line naming it."""
    app = status_app({"/healthz": _healthz, "/readyz": _readyz, "/status": _status})
    app[_AGENT] = agent
    async with serve_app(app, address):
        yield


async def _healthz(request: web.Request) -> web.Response:
    """200 while the agent runs (answering at all proves the event loop)."""
    if request.app[_AGENT].running:
        return web.Response(text="ok")
    return web.Response(status=503, text="the agent is not running")


async def _readyz(request: web.Request) -> web.Response:
    """200 once the containers are listed and their keys held; else 503 and the reason."""
    reason = request.app[_AGENT].status().waiting
    return web.Response(status=503, text=reason) if reason else web.Response(text="ready")


async def _status(request: web.Request) -> web.Response:
    """The agent's status JSON, from what it holds: no Docker or etcd call."""
    return web.json_response(_document(request.app[_AGENT], request.app[VERSION]))


def _document(agent: Agent, lbmanager_version: str) -> dict[str, Any]:
    """The `/status` answer for ``agent`` as it is now."""
    status = agent.status()
    return {
        "version": lbmanager_version,
        "containers": [asdict(container) for container in status.containers],
        "keys": list(status.keys),
        "lease": f"{status.lease:x}" if status.lease else None,
        "problems": list(status.problems),
    }
