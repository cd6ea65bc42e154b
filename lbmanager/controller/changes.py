"""Route53 changes on their way to every name server (SPEC §8, §9): each change a zone sync
sends is followed with GetChange until INSYNC by one tracker, so no zone's worker waits for it;
once a change is INSYNC, the zone's worker is kicked to publish its names' phases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from lbmanager.errors import PermanentError, TransientError
from lbmanager.keys.target import Target
from lbmanager.providers.api import ChangeStatus, Route53Api
from lbmanager.runtime.metrics import ROUTE53_CHANGES_PENDING

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollTiming:
    """GetChange asks ``first`` seconds after the change, then twice as long each time up to
    ``cap``; a change not INSYNC ``warn_after`` seconds after it was sent is logged once."""

    first: float = 5.0
    cap: float = 30.0
    warn_after: float = 600.0

    def delay(self, polls: int) -> float:
        """Seconds from the change's poll number ``polls`` (0: its sending) to the next."""
        return min(self.first * 2.0**polls, self.cap)


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A change sent and not yet INSYNC, with its age in seconds, as the status shows it."""

    zone_id: str
    change_id: str
    names: tuple[str, ...]
    submitted_at: datetime
    age: float


@dataclass(slots=True)
class _Tracked:
    region: str
    change: PendingChange
    sent: float  # on the tracker's clock
    next_poll: float
    targets: tuple[Target, ...]  # the names' targets, kicked once the change is INSYNC
    polls: int = 0
    warned: bool = False


class ChangeTracker:
    """The changes not yet INSYNC, and the one coroutine (``run``) that polls them."""

    def __init__(
        self,
        route53: Route53Api,
        timing: PollTiming = PollTiming(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._route53 = route53
        self._timing = timing
        self._clock = clock
        # A list, not keyed by id: ids are unique in AWS, but a stand-in may repeat one.
        self._tracked: list[_Tracked] = []
        self._added = asyncio.Event()

    def track(self, region: str, zone_id: str, change_id: str, targets: Iterable[Target]) -> None:
        """Follow change ``change_id`` of zone ``zone_id``, which touched the names of
        ``targets``."""
        now = self._clock()
        targets = tuple(targets)
        names = tuple(sorted({t.fqdn for t in targets}))
        change = PendingChange(zone_id, change_id, names, datetime.now(UTC), 0.0)
        tracked = _Tracked(region, change, now, now + self._timing.delay(0), targets)
        self._tracked.append(tracked)
        self._added.set()

    def in_flight(self, zone_id: str) -> frozenset[Target]:
        """The targets of zone ``zone_id`` with a change not yet INSYNC."""
        return frozenset(
            target for t in self._tracked if t.change.zone_id == zone_id for target in t.targets
        )

    def pending_changes(self) -> list[PendingChange]:
        """The changes not yet INSYNC, oldest first, each with its age now."""
        now = self._clock()
        return [replace(t.change, age=now - t.sent) for t in self._tracked]

    async def run(self, settled: Callable[[list[Target]], None] = lambda _: None) -> None:
        """Poll each change when due, until it is INSYNC, and keep the pending gauge; forever
        (the service's task group runs this). ``settled``: told the targets of each change
        that is INSYNC (or no longer followed)."""
        while True:
            self._added.clear()  # before polling: a change tracked meanwhile wakes the wait
            wait = await self.poll_due(settled)
            ROUTE53_CHANGES_PENDING.set(len(self._tracked))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._added.wait()

    async def poll_due(
        self, settled: Callable[[list[Target]], None] = lambda _: None
    ) -> float | None:
        """Ask GetChange about every change whose poll is due, telling ``settled`` the targets
        of those INSYNC; return the seconds until the next one is due (None: none pending)."""
        for tracked in [t for t in self._tracked if t.next_poll <= self._clock()]:
            if await self._poll(tracked):
                settled(list(tracked.targets))
        if not self._tracked:
            return None
        return max(0.0, min(t.next_poll for t in self._tracked) - self._clock())

    async def _poll(self, tracked: _Tracked) -> bool:
        """Ask about one change; True once it is INSYNC (or no longer followed)."""
        change = tracked.change
        try:
            status = await self._route53.change_status(tracked.region, change.change_id)
        except TransientError as error:
            # No retry of its own: the next poll, on the usual schedule, asks again.
            log.info("GetChange %s: %s; asking again later", change.change_id, error)
            status = ChangeStatus.PENDING
        except PermanentError as error:
            log.warning("GetChange %s: %s; no longer followed", change.change_id, error)
            status = ChangeStatus.INSYNC
        now = self._clock()
        if status is ChangeStatus.INSYNC:
            self._tracked.remove(tracked)
            return True
        tracked.polls += 1
        tracked.next_poll = now + self._timing.delay(tracked.polls)
        if not tracked.warned and now - tracked.sent >= self._timing.warn_after:
            tracked.warned = True
            log.warning(
                "Route53 change %s of zone %s (%s) is not INSYNC after %.0f s",
                change.change_id,
                change.zone_id,
                ", ".join(change.names),
                now - tracked.sent,
            )
        return False
