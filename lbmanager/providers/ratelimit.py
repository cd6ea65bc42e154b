"""A client-side request rate limit shared by every caller of one API account (SPEC §4)."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Spaces calls at least ``1 / rate`` seconds apart, in arrival order."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        async with self._lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)
