"""Ending a task group on request: a task that raises once the stop event is set."""

from __future__ import annotations

import asyncio


class Shutdown(Exception):
    """Raised by `raise_when_set`; catch it with ``except* Shutdown`` around the group."""


async def raise_when_set(stop: asyncio.Event) -> None:
    """Wait for ``stop``, then raise Shutdown, which cancels the other tasks of the group."""
    await stop.wait()
    raise Shutdown
