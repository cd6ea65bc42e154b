"""A service with its status API, for tests that read `/status` or load the page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from harness import FAST_BACKOFF, running_service
from servers import HOST, free_port

from lbmanager.controller.service import Service
from lbmanager.settings import Settings
from lbmanager.status.server import status_server


@contextlib.asynccontextmanager
async def status_api(
    settings: Settings,
) -> AsyncIterator[tuple[Service, str, aiohttp.ClientSession]]:
    """The service of ``settings`` (not yet running) with its status API on a free loopback
    port: the service, the API's base URL (``http://HOST:PORT``), and a session on it."""
    address = f"{HOST}:{free_port()}"
    service = Service(settings.model_copy(update={"status_addr": address}), FAST_BACKOFF)
    url = f"http://{address}"
    async with (
        status_server(service, address),
        # A bounded client: a status server that stops answering fails the test, not hangs it.
        aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield service, url, session


@contextlib.asynccontextmanager
async def serving_status(
    settings: Settings,
) -> AsyncIterator[tuple[Service, str, aiohttp.ClientSession]]:
    """As `status_api`, the service running (ready on entry)."""
    async with (
        status_api(settings) as (service, url, session),
        running_service(service.settings, service=service),
    ):
        yield service, url, session


async def status_of(session: aiohttp.ClientSession) -> dict[str, Any]:
    """The `/status` JSON, through a session of `status_api`."""
    async with session.get("/status") as response:
        assert response.content_type == "application/json"
        document: dict[str, Any] = await response.json()
        return document
