"""Running `lbmanager run` (and `render`, `local`): the service with its status API until a stop
signal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import version

from lbmanager.controller.service import Service
from lbmanager.runtime.lifecycle import stop_on_signals
from lbmanager.status.server import status_server

log = logging.getLogger(__name__)


async def serve(service: Service, *beside: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """`lbmanager run`: the service (and what runs ``beside`` it) until SIGTERM or SIGINT, with
    its status API bound first (an address in use exits 2 before anything starts)."""
    settings = service.settings
    # `lbmanager render` (no cloud) takes no --status-addr.
    address = settings.status_addr if service.cloud else ""
    async with status_server(service, address):
        fields = {
            "version": version("lbmanager"),
            "etcd_endpoints": settings.etcd_endpoints,
            "prefix": settings.prefix,
            "state_prefix": settings.state_prefix,
            "policy": str(settings.policy),
            "dry_run": settings.dry_run,
            "status_addr": address or "off",
        }
        log.info(
            "lbmanager %(version)s starting: etcd %(etcd_endpoints)s, prefixes %(prefix)s and "
            "%(state_prefix)s, policy %(policy)s, dry-run %(dry_run)s, status %(status_addr)s",
            fields,
            extra=fields,
        )
        stop = stop_on_signals()
        await asyncio.gather(service.run(stop), *(run(stop) for run in beside))
