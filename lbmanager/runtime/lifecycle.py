"""Stopping long-running commands: SIGTERM/SIGINT set an event; a task turns it into the end
of its task group."""

from __future__ import annotations

import asyncio
import signal


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
