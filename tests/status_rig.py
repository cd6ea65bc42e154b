"""A running service with its status API, for tests that read `/status` or load the page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from harness import FAST_BACKOFF, running_service
from servers import HOST, free_port

from lbmanager.controller.service import Service
from lbmanager.settings import Settings
from lbmanager.status.server import status_server


@contextlib.asynccontextmanager
async def serving_status(
    settings: Settings,
) -> AsyncIterator[tuple[Service, str, aiohttp.ClientSession]]:
    """The service of ``settings`` running with its status API on a free loopback port: the
    service, the API's base URL (``http://HOST:PORT``), and a session on it."""
    address = f"{HOST}:{free_port()}"
    service = Service(settings.model_copy(update={"status_addr": address}), FAST_BACKOFF)
    async with (
        status_server(service, address),
        running_service(service.settings, service=service),
        aiohttp.ClientSession(f"http://{address}") as session,
    ):
        yield service, f"http://{address}", session
