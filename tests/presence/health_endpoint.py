"""A local HTTP health endpoint whose status a test switches, and its fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from servers import HOST


class Health:
    """A local HTTP endpoint whose status the test switches; it counts the probes."""

    status = 503
    probes = 0


@pytest.fixture(name="health")
async def health_fixture() -> AsyncIterator[tuple[Health, str]]:
    """A health endpoint on 127.0.0.1 and its URL."""
    state = Health()

    async def answer(_: web.Request) -> web.Response:
        state.probes += 1
        return web.Response(status=state.status)

    app = web.Application()
    app.router.add_get("/health", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    yield state, f"http://{HOST}:{port}/health"
    await runner.cleanup()
