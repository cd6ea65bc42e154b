"""The status server of `lbmanager run` (SPEC §9): /healthz, /readyz, /status and /metrics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib.metadata import version
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from lbmanager.errors import usage_error
from lbmanager.runtime.metrics import exposition
from lbmanager.status.model import held_status, readiness, status_document, target_status

if TYPE_CHECKING:
    from lbmanager.controller.service import Service

_SERVICE: web.AppKey[Service] = web.AppKey("service")
VERSION = web.AppKey("version", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PAGE = files("lbmanager.status").joinpath("page.html").read_text(encoding="utf-8")


@contextlib.asynccontextmanager
async def status_server(service: Service, address: str) -> AsyncIterator[None]:
    """Serve the status of ``service`` on ``address`` (HOST:PORT; empty: serve nothing) while
    the block runs; an address in use exits 2 with one line naming it."""
    app = status_app({"/": _page, "/healthz": _healthz, "/readyz": _readyz, "/status": _status})
    app[_SERVICE] = service
    async with serve_app(app, address):
        yield


def status_app(routes: Mapping[str, Handler]) -> web.Application:
    """An app answering GET on ``routes`` and on /metrics, with the version at hand: what the
    status servers of `run` and `agent` share."""
    app = web.Application()
    app[VERSION] = version("lbmanager")
    for path, handler in {**routes, "/metrics": _metrics}.items():
        app.router.add_get(path, handler)
    return app


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, address: str) -> AsyncIterator[None]:
    """Serve ``app`` on ``address`` (HOST:PORT; empty: serve nothing) while the block runs; an
    address in use exits 2 with one line naming it."""
    if not address:
        yield
        return
    # A short shutdown: SIGTERM must end the process within 5 s (SPEC §6).
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        host, _, port = address.rpartition(":")
        try:
            await web.TCPSite(runner, host.strip("[]"), int(port)).start()
        except OSError as error:
            raise SystemExit(usage_error(f"--status-addr {address}: {error.strerror}")) from None
        yield
    finally:
        await runner.cleanup()


async def _page(_: web.Request) -> web.Response:
    """The status page for a person: one HTML file that reads /status itself."""
    return web.Response(text=_PAGE, content_type="text/html")


async def _healthz(request: web.Request) -> web.Response:
    """200 while the service's task group runs (answering at all proves the event loop)."""
    if request.app[_SERVICE].running:
        return web.Response(text="ok")
    return web.Response(status=503, text="the service is not running")


async def _readyz(request: web.Request) -> web.Response:
    """200 once the tree was read and the watch is open; else 503 and the reason."""
    service = request.app[_SERVICE]
    follower = service.follower
    reason = readiness(
        service.ready.is_set(),
        follower is not None and follower.connected,
        follower.last_error if follower else None,
    )
    return web.Response(status=503, text=reason) if reason else web.Response(text="ready")


async def _status(request: web.Request) -> web.Response:
    """The status JSON, built from what the service holds: no etcd or AWS call."""
    return web.Response(
        text=json.dumps(document(request.app[_SERVICE], request.app[VERSION])),
        content_type="application/json",
    )


def document(service: Service, lbmanager_version: str) -> dict[str, Any]:
    """The `/status` answer for ``service`` as it is now."""
    context, follower, status = service.context, service.follower, service.status
    holds, now = (context.guard.holds(), context.guard.now()) if context else ({}, 0.0)
    targets = [
        target_status(
            target,
            context.tree.entries(target) if context else [],
            last_sync=status.last_sync.get(target),
            error=status.target_errors.get(target),
            pending=service.pending(target),
            held=held_status(holds.get(target), now),
            phases=context.phases.get(target) if context else None,
            switch=status.switches.get(target),
        )
        for target in service.targets()
    ]
    return status_document(
        version=lbmanager_version,
        role=service.role,
        etcd={
            "endpoint": service.settings.etcd_endpoints,
            "connected": follower is not None and follower.connected,
            "revision": context.tree.revision if context else 0,
        },
        targets=targets,
        malformed=context.tree.malformed.values() if context else (),
        route53_changes=service.route53_changes(),
    )


async def _metrics(_: web.Request) -> web.Response:
    """The Prometheus metrics, in the text format."""
    response = web.Response(body=exposition())
    # generate_latest writes the 0.0.4 text format, whatever CONTENT_TYPE_LATEST now says.
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    return response
