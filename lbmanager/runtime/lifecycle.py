"""Stopping long-running commands: SIGTERM/SIGINT set an event; a task turns it into the end
of its task group."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets (SPEC §6: stop, then exit 0)."""
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    return stop


class Shutdown(Exception):
    """Raised by `raise_when_set`; catch it with ``except* Shutdown`` around the group."""


async def raise_when_set(stop: asyncio.Event) -> None:
    """Wait for ``stop``, then raise Shutdown, which cancels the other tasks of the group."""
    await stop.wait()
    raise Shutdown


@contextlib.asynccontextmanager
async def running_beside(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` in a task for as long as the block; a failure of it surfaces at the end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        # asyncio.wait, not `await task` under suppress(CancelledError): a cancel of our own
        # that lands while the task winds down must end us too, not be taken for the task's.
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()  # a failure of the work surfaces here
