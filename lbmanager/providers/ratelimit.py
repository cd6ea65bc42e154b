"""Client-side request rate limits shared by every caller of one API (SPEC §4): Route53's
`--route53-rps`, and the classic ELB's describe and write buckets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each call takes one, in arrival
    order. With ``burst`` 1 calls are spaced at least ``1 / rate`` seconds apart."""

    def __init__(
        self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        # When the bucket would be full again, were no call to take a token meanwhile (GCRA's
        # theoretical arrival time): one number, no refill timer.
        self._full_at = 0.0

    def reserve(self) -> float:
        """Take the next token; return how many seconds to wait before using it."""
        now = self._clock()
        self._full_at = max(self._full_at, now) + self._interval
        return max(0.0, self._full_at - now - self._burst * self._interval)

    async def acquire(self) -> None:
        """Wait for the next token."""
        if (wait := self.reserve()) > 0:
            await asyncio.sleep(wait)
