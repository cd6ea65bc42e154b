"""The HTTP side of the render benchmarks: small backends that say which one answered, and a
client that sends one GET per fresh connection. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

from servers import HOST  # tests/ is on sys.path (the benchmark scripts put it there)


class Backends:
    """Small HTTP servers on 127.0.0.1, each answering with its port; they note (wall clock)
    when each one last received a request and the first request since ``arm``."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._servers: list[asyncio.Server] = []

    async def start(self, count: int) -> list[int]:
        """Start ``count`` more servers on free ports; return their ports."""
        ports = []
        for _ in range(count):
            server = await asyncio.start_server(self._serve, HOST, 0)
            self._servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        return ports

    def arm(self, port: int) -> None:
        """Forget when ``port`` was first reached, so the next request is noted afresh."""
        self.first.pop(port, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()  # a health check (connect, close) or a torn request
            return
        now = time.time()
        self.last[port] = now
        self.first.setdefault(port, now)
        body = str(port).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        # The proxy closes first, so the TIME_WAIT sockets are its, on its ephemeral ports.
        with contextlib.suppress(OSError, TimeoutError):
            await writer.drain()
            await asyncio.wait_for(reader.read(), 2.0)
        writer.close()

    async def stop(self) -> None:
        """Close every server."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, leaving no TIME_WAIT


async def fetch(port: int, limit: float = 2.0) -> tuple[int, str] | None:
    """One GET on a fresh connection to ``port``: (status, body), or None if it failed."""
    writer = None
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = await reader.read()
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body.decode(errors="replace")
    except (IndexError, ValueError):
        return None
