"""HTTP backends that answer with their id, and a client that asks a load balancer which of
them it reaches; all on 127.0.0.1, served by the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from servers import HOST, free_port

PREFIX = "/lbManager"


@dataclass(frozen=True, slots=True)
class Backend:
    """An HTTP server on 127.0.0.1 that answers every request with its id."""

    id: str
    port: int

    @property
    def address(self) -> str:
        """host:port, as an upstream key names it."""
        return f"{HOST}:{self.port}"

    def key(self, name: str, member_class: str = "multiple") -> bytes:
        """Its key in upstream ``name``."""
        return f"{PREFIX}/upstream/{name}/{member_class}/{self.address}".encode()


@contextlib.asynccontextmanager
async def http_backends(count: int) -> AsyncIterator[list[Backend]]:
    """``count`` backends served by this event loop."""
    runners: list[web.ServerRunner] = []
    backends = [Backend(f"backend-{n}", free_port()) for n in range(count)]
    try:
        for backend in backends:
            runner = web.ServerRunner(web.Server(_answer(backend.id)), shutdown_timeout=1)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, HOST, backend.port).start()
        yield backends
    finally:
        for runner in runners:
            await runner.cleanup()


def _answer(text: str) -> Callable[[web.BaseRequest], Awaitable[web.Response]]:
    async def handle(_: web.BaseRequest) -> web.Response:
        return web.Response(text=text)

    return handle


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status, body, and the NAME=VALUE of its first Set-Cookie."""

    status: int
    body: str
    cookie: str | None


async def fetch(
    port: int, path: str = "/", host: str | None = None, cookie: str | None = None
) -> Reply:
    """GET ``path`` on a new connection, so each request meets the config live right now."""
    head = [f"GET {path} HTTP/1.1", f"Host: {host or f'{HOST}:{port}'}", "Connection: close"]
    head += [f"Cookie: {cookie}"] if cookie else []
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            raw = await reader.read()  # to EOF: we asked for Connection: close
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if not raw:
        raise ConnectionResetError(f"{HOST}:{port} closed the connection without a response")
    header, _, body = raw.partition(b"\r\n\r\n")
    status_line, *fields = header.decode("latin-1").split("\r\n")
    cookies = [
        value.split(";")[0].strip()
        for name, _, value in (field.partition(":") for field in fields)
        if name.lower() == "set-cookie"
    ]
    return Reply(int(status_line.split()[1]), body.decode(), cookies[0] if cookies else None)


async def reached(port: int, requests: int = 12, **request: str) -> set[str]:
    """The ids of the backends that answered ``requests`` GETs through the load balancer;
    a response with another status than 200 counts as ``HTTP <status>``."""
    replies = [await fetch(port, **request) for _ in range(requests)]
    return {r.body if r.status == 200 else f"HTTP {r.status}" for r in replies}
