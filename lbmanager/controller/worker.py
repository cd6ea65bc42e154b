"""The serialized, coalescing worker that runs one sync unit (SPEC §4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from lbmanager.controller.unit import Settle, SyncUnit, TargetResult
from lbmanager.errors import PermanentError, TransientError
from lbmanager.runtime.metrics import SYNC_DURATION, SYNCS
from lbmanager.runtime.retry import Backoff, retry

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Where the settle window reads the time and waits (a test passes a clock it moves)."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep(seconds)`."""
        await asyncio.sleep(seconds)


MONOTONIC = MonotonicClock()


class Worker:
    """Runs its unit's sync whenever kicked; kicks during a sync cause exactly one more sync."""

    def __init__(
        self,
        name: str,
        unit: SyncUnit,
        report: Callable[[str, list[TargetResult]], None],
        backoff: Backoff,
        settle: Settle | None = None,
        *,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.name = name
        self.unit = unit
        self._report = report
        self._backoff = backoff
        self._settle = settle or unit.settle
        self._clock = clock
        self._dirty = asyncio.Event()
        self._full = False
        self._last_kick = self._last_sync = -float("inf")
        self._syncing = False
        self.syncs = 0
        # When the unit asked to sync again by itself (a held removal to look at); None: never.
        self._wake_at: float | None = None

    @property
    def pending(self) -> bool:
        """True while a kick waits or a sync runs (its settle window included)."""
        return self._dirty.is_set() or self._syncing

    def kick(self, full: bool = False) -> None:
        """Mark dirty (``full``: read the cloud afresh); synchronous and idempotent."""
        self._full = self._full or full
        self._last_kick = self._clock.now()
        self._dirty.set()

    async def run(self) -> None:
        """Wait for a kick, then sync until it succeeds or fails permanently; forever."""
        while True:
            await self._wait_for_kick()
            self._syncing = True
            try:
                if self._last_kick - self._last_sync < self._settle.quiet:
                    await self._wait_for_quiet()
                results = await self._sync_until_settled()
            finally:
                self._syncing = False
            self._last_sync = self._clock.now()
            waits = [r.retry_after for r in results if r.retry_after is not None]
            self._wake_at = self._last_sync + min(waits) if waits else None
            self._report(self.name, results)

    async def _wait_for_kick(self) -> None:
        """Wait for a kick; when the unit asked to sync again at a time, kick it then."""
        if self._wake_at is None:
            await self._dirty.wait()
            return
        kicked = asyncio.ensure_future(self._dirty.wait())
        wait = max(0.0, self._wake_at - self._clock.now())
        timer = asyncio.ensure_future(self._clock.sleep(wait))
        try:
            await asyncio.wait((kicked, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            kicked.cancel()
            timer.cancel()
            await asyncio.gather(kicked, timer, return_exceptions=True)
        self._wake_at = None
        if not self._dirty.is_set():
            self.kick()

    async def _wait_for_quiet(self) -> None:
        """Sleep until no kick came for ``quiet`` seconds, or ``maximum`` seconds have passed."""
        clock = self._clock
        deadline = clock.now() + self._settle.maximum
        # A timer, not polling: each pass sleeps exactly until the window may have closed.
        while (wake := min(self._last_kick + self._settle.quiet, deadline)) > clock.now():
            await clock.sleep(wake - clock.now())

    async def _sync_until_settled(self) -> list[TargetResult]:
        # A transient error is retried (logged by the retry hook) until the unit syncs.
        return await retry(
            self._sync_once,
            what=f"sync {self.name}",
            on=TransientError,
            backoff=self._backoff,
            logger=log,
        )

    async def _sync_once(self) -> list[TargetResult]:
        # Every attempt starts from the newest state: clearing dirty first means a kick that
        # lands mid-sync is never lost, and many kicks collapse into one follow-up sync.
        self._dirty.clear()
        full, self._full = self._full, False
        self.syncs += 1
        kind = self.name.partition("/")[0]  # worker names start with their targets' kind
        with SYNC_DURATION.labels(kind).time():
            try:
                results = await self.unit.sync(full)
            except PermanentError as error:
                results = self._failed(str(error))
            except TransientError:
                SYNCS.labels(kind, "transient").inc()
                raise
            except Exception as error:
                # The worker supervises its unit: a surprise (a malformed AWS answer, a bug) is
                # reported on this unit's targets and never stops the others.
                log.exception("sync %s: unexpected error", self.name)
                results = self._failed(f"unexpected {type(error).__name__}: {error}")
        failed = any(result.error is not None for result in results)
        SYNCS.labels(kind, "error" if failed else "ok").inc()
        return results

    def _failed(self, error: str) -> list[TargetResult]:
        return [TargetResult(t, error=error) for t in self.unit.targets()]
