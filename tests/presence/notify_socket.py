"""A unix datagram socket standing in for systemd's NOTIFY_SOCKET, and its fixture."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import wait_for

_markers = itertools.count()


class NotifySocket:
    """A unix datagram socket standing in for systemd: it keeps every message it receives."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[str] = []
        self._bound = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self._bound)
        self._sock.setblocking(False)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.messages.append((await loop.sock_recv(self._sock, 4096)).decode())

    async def wait(self, pattern: str) -> None:
        """Until a message matching the regex ``pattern`` in full has arrived."""
        compiled = re.compile(pattern)

        def arrived() -> bool:
            return any(compiled.fullmatch(message) for message in self.messages)

        try:
            await wait_for(arrived, what=f"{pattern!r} on the notify socket")
        except AssertionError as error:
            raise AssertionError(f"{error}; got {self.messages}") from None

    async def drained(self) -> list[str]:
        """Every message sent before this call, once all have arrived: a marker sent now
        queues behind them (a datagram socket keeps its order) and is awaited, then dropped."""
        marker = f"TEST_MARKER={next(_markers)}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(marker.encode(), self._bound)
        await self.wait(re.escape(marker))
        self.messages.remove(marker)
        return list(self.messages)

    async def close(self) -> None:
        """Stop reading and close the socket."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._sock.close()


@pytest.fixture(name="systemd")
async def notify_socket_fixture(tmp_path: Path) -> AsyncIterator[NotifySocket]:
    """A notify socket on a path, as systemd gives a `Type=notify` service."""
    notify = NotifySocket(str(tmp_path / "notify"))
    yield notify
    await notify.close()
