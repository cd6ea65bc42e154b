"""An in-loop HTTP reverse proxy that records AWS calls and injects faults (for moto)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Self
from urllib.parse import parse_qs

import aiohttp
import botocore.session
from aiohttp import web
from multidict import CIMultiDict
from ports import HOST
from yarl import URL

THROTTLING_XML = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"
)
_HOP_HEADERS = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length", "expect")
)  # fmt: skip


@dataclass(frozen=True)
class StatusFault:
    """Answer with this status and body instead of forwarding."""

    status: int
    body: bytes = b""
    content_type: str = "text/xml"


@dataclass(frozen=True)
class DelayFault:
    """Hold the request `seconds`, then forward it (or, with forward=False, reset it)."""

    seconds: float
    forward: bool = True


@dataclass(frozen=True)
class ResetFault:
    """Drop the connection without answering: TCP RST, or FIN with rst=False."""

    rst: bool = True


@dataclass(frozen=True)
class RewriteFault:
    """Forward the request, then answer with `edit` applied to the upstream's body (to present
    what the emulator cannot, e.g. a target that drains)."""

    edit: Callable[[bytes], bytes]


Fault = StatusFault | DelayFault | ResetFault | RewriteFault


def throttling(code: str = "Throttling", status: int = 400) -> StatusFault:
    """An AWS XML throttling error; Route53 also uses code PriorRequestNotComplete."""
    return StatusFault(status, THROTTLING_XML.replace(b"Throttling", code.encode()))


@dataclass(frozen=True)
class RecordedCall:
    """A request a FaultProxy saw; `action` is the AWS operation name, `fault` what it got."""

    method: str
    path: str
    query: str
    action: str | None
    body: bytes
    fault: Fault | None = None


Match = str | Callable[[RecordedCall], bool]


@dataclass
class Injection:
    """A pending fault for matching calls; `remaining` None means until cleared."""

    predicate: Callable[[RecordedCall], bool]
    fault: Fault
    remaining: int | None


def matcher(match: Match) -> Callable[[RecordedCall], bool]:
    """Predicate for an action name, a "METHOD path-regex" string, or a callable."""
    if callable(match):
        return match
    if " " in match:
        method, regex = match.split(" ", 1)
        return lambda c: c.method == method and re.fullmatch(regex, c.path) is not None
    return lambda c: c.action == match


def rest_routes(services: Iterable[str]) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path regex, operation) of REST services from botocore's models, literal first."""
    session, routes = botocore.session.get_session(), []
    for service in services:
        model = session.get_service_model(service)
        for name in model.operation_names:
            http = model.operation_model(name).http
            uri = re.escape(http["requestUri"].split("?")[0].rstrip("/"))
            routes.append((http["method"], re.compile(re.sub(r"\\\{.*?\\\}", "[^/]+", uri)), name))
    return sorted(routes, key=lambda r: r[1].pattern.count("[^/]+"))


class AsyncService:
    """`async with` support for things with start() and stop()."""

    async def start(self) -> None:
        """Start serving."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class FaultProxy(AsyncService):
    """HTTP reverse proxy to `upstream` (moto) that records calls and injects faults."""

    def __init__(self, upstream: str, rest_services: Iterable[str] = ("route53",)) -> None:
        self.upstream, self.port = upstream.rstrip("/"), 0
        self.calls: list[RecordedCall] = []
        self.injections: list[Injection] = []
        self._routes = rest_routes(rest_services)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing, self._seen = asyncio.Event(), asyncio.Condition()

    @property
    def endpoint(self) -> str:
        """URL to give clients instead of the upstream's."""
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        """Listen on a free loopback port (the same one again after stop)."""
        self._closing.clear()
        app = web.Application(client_max_size=2**26)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Reset held (delayed) requests and close everything."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def inject(self, match: Match, fault: Fault, times: int | None = 1) -> Injection:
        """Apply `fault` to the next `times` matching calls; earlier injections win."""
        injection = Injection(matcher(match), fault, times)
        self.injections.append(injection)
        return injection

    def count(self, match: Match) -> int:
        """How many recorded calls match."""
        return sum(map(matcher(match), self.calls))

    async def wait_for(self, match: Match, count: int = 1) -> None:
        """Block until `count` matching calls were seen; wrap in asyncio.timeout()."""
        async with self._seen:
            await self._seen.wait_for(lambda: self.count(match) >= count)

    def action_of(self, request: web.BaseRequest, body: bytes) -> str | None:
        """AWS operation name of a request (query, JSON or REST protocol), if known."""
        if target := request.headers.get("X-Amz-Target"):
            return target.rsplit(".", 1)[-1]
        form = request.content_type == "application/x-www-form-urlencoded"
        params = parse_qs(body.decode("utf-8", "replace")) if form else {}
        if action := params.get("Action", [request.query.get("Action", "")])[0]:
            return action
        path, method = request.path.rstrip("/"), request.method
        return next((n for m, p, n in self._routes if m == method and p.fullmatch(path)), None)

    def _take_fault(self, call: RecordedCall) -> Fault | None:
        for injection in self.injections:
            if injection.remaining != 0 and injection.predicate(call):
                if injection.remaining is not None:
                    injection.remaining -= 1
                return injection.fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        call = RecordedCall(request.method, request.path, request.query_string,
                            self.action_of(request, body), body)  # fmt: skip
        fault = self._take_fault(call)
        self.calls.append(replace(call, fault=fault))
        async with self._seen:
            self._seen.notify_all()
        if isinstance(fault, StatusFault):
            return web.Response(
                status=fault.status, body=fault.body, content_type=fault.content_type
            )
        if isinstance(fault, DelayFault):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
        if (
            self._closing.is_set()
            or isinstance(fault, ResetFault)
            or (isinstance(fault, DelayFault) and not fault.forward)
        ):
            rst_close(request.transport, rst=not isinstance(fault, ResetFault) or fault.rst)
            return web.Response(status=499)  # never sent: the connection is gone
        response = await self._forward(request, body)
        if isinstance(fault, RewriteFault) and isinstance(response.body, bytes):
            response.body = fault.edit(response.body)
        return response

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
        )
        try:
            async with self._session.request(
                request.method, URL(self.upstream + request.raw_path, encoded=True),
                headers=headers, data=body, allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as upstream:  # fmt: skip
                out = CIMultiDict(
                    (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
                )
                return web.Response(status=upstream.status, headers=out, body=await upstream.read())
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"upstream unreachable: {exc!r}")


def rst_close(transport: asyncio.BaseTransport | None, rst: bool = True) -> None:
    """Close a connection at once, with a TCP RST (SO_LINGER 0) or, if not `rst`, a FIN."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    with contextlib.suppress(OSError):
        if sock is not None and rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.abort()  # type: ignore[attr-defined]
