"""The worker: serialized, coalescing, settling bursts, retrying transient errors (SPEC §4, §5)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from harness import wait_for

from lbmanager.controller.unit import Settle, TargetResult
from lbmanager.controller.worker import Worker
from lbmanager.errors import PermanentError, TransientError
from lbmanager.keys.target import Target
from lbmanager.runtime.retry import Backoff

WEB = Target("elb", "us-east-1", "web")


class RecordingUnit:
    """A sync unit that records each sync (when, on ``now``, and whether full); a test may hold
    a sync open or make it fail."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.calls: list[tuple[float, bool]] = []
        self.gate: asyncio.Event | None = None
        self.failures: list[Exception] = []
        self.in_sync = asyncio.Event()
        self.retry_after: list[float] = []  # what each sync asks for, oldest first (then none)

    def add(self, target: Target) -> None:
        """Nothing to remember."""

    def targets(self) -> list[Target]:
        """One target."""
        return [WEB]

    async def sync(self, full: bool) -> list[TargetResult]:
        """Record the call, then wait for the gate or fail as told."""
        self.calls.append((self._now(), full))
        self.in_sync.set()
        if self.gate is not None:
            await self.gate.wait()
        self.in_sync.clear()
        if self.failures:
            raise self.failures.pop(0)
        return [
            TargetResult(WEB, retry_after=self.retry_after.pop(0) if self.retry_after else None)
        ]


@pytest.fixture
async def worker() -> AsyncIterator[tuple[Worker, RecordingUnit, list[list[TargetResult]]]]:
    """A running worker over a RecordingUnit, and the results it reported."""
    unit = RecordingUnit()
    reports: list[list[TargetResult]] = []
    running = Worker(
        "web",
        unit,
        lambda _, results: reports.append(results),
        Backoff(initial=0.01, maximum=0.05),
        Settle(quiet=0.1, maximum=0.5),
    )
    task = asyncio.create_task(running.run())
    yield running, unit, reports
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class ManualClock:
    """A clock that moves only when the test says; a sleeper wakes once it reaches its time."""

    def __init__(self) -> None:
        self._now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.naps = 0  # how many times anyone went to sleep on this clock

    def now(self) -> float:
        """The time the test last moved the clock to."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved ``seconds`` on."""
        entry = (self._now + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self.naps += 1
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def wake_at(self) -> float | None:
        """When the earliest sleeper wakes; None when nobody sleeps."""
        return min((when for when, _ in self._sleepers), default=None)

    def move_to(self, when: float) -> None:
        """Set the time to ``when``; wake every sleeper whose time has come."""
        assert when >= self._now
        self._now = when
        for entry in [e for e in self._sleepers if e[0] <= when]:
            self._sleepers.remove(entry)
            entry[1].set_result(None)


# Binary fractions, so every time below is exact: no tolerance in any assert.
QUIET, MAXIMUM = 0.25, 2.0
BEAT = QUIET / 2  # the pace of a burst: each kick lands inside the quiet window of the last


class Settling:
    """A running worker on a ManualClock, driven one step at a time: after each kick or tick
    it awaits the worker's reaction (a sync or a nap), so every sync time is exact."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.unit = RecordingUnit(self.clock.now)
        self.reports: list[list[TargetResult]] = []
        self.worker = Worker(
            "web",
            self.unit,
            lambda _, results: self.reports.append(results),
            Backoff(initial=0.01, maximum=0.05),
            Settle(QUIET, MAXIMUM),
            clock=self.clock,
        )

    def sync_times(self) -> list[float]:
        """When each sync started, on the manual clock."""
        return [when for when, _ in self.unit.calls]

    def _progress(self) -> tuple[int, int]:
        return self.clock.naps, len(self.reports)

    async def _reaction(self, before: tuple[int, int], what: str) -> None:
        """Await a sync or a nap since ``before`` (the worker is idle or asleep again)."""
        await wait_for(lambda: self._progress() != before, timeout=5, what=what)

    async def kick(self) -> None:
        """Kick now; unless the worker sleeps on the clock, await its reaction to the kick."""
        asleep, before = self.clock.wake_at is not None, self._progress()
        self.worker.kick()
        if not asleep:
            await self._reaction(before, "the worker to sync or to nap after the kick")

    async def run_until(self, when: float) -> None:
        """Move the clock to ``when``, stopping at each sleeper's time on the way and awaiting
        the worker's reaction to waking (another nap, or its sync)."""
        while (due := self.clock.wake_at) is not None and due <= when:
            before = self._progress()
            self.clock.move_to(due)
            await self._reaction(before, f"the worker to react to waking at {due}")
        self.clock.move_to(when)


@pytest.fixture
async def settling() -> AsyncIterator[Settling]:
    """A worker with quiet=0.25 s and maximum=2 s running on a manual clock."""
    driven = Settling()
    task = asyncio.create_task(driven.worker.run())
    yield driven
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_kicks_during_a_sync_cause_exactly_one_follow_up(settling: Settling) -> None:
    """Many kicks while a sync is in flight collapse into one more sync, with the settle
    window counted from the end of the first."""
    unit = settling.unit
    unit.gate = asyncio.Event()
    settling.worker.kick()
    await asyncio.wait_for(unit.in_sync.wait(), 5)
    for _ in range(50):
        settling.worker.kick()
    unit.gate.set()
    await wait_for(
        lambda: settling.reports and settling.clock.wake_at is not None,
        what="the first sync's report and the follow-up's nap",
    )
    await settling.run_until(10.0)  # far past every window
    assert settling.sync_times() == [0.0, QUIET]
    assert len(settling.reports) == 2
    assert settling.clock.wake_at is None


async def test_isolated_kick_syncs_at_once(settling: Settling) -> None:
    """A kick a whole quiet window after the last sync starts its sync at once, no nap."""
    await settling.kick()
    await settling.run_until(QUIET)  # exactly the window: the next kick is no longer a burst
    await settling.kick()
    assert settling.sync_times() == [0.0, QUIET]
    assert len(settling.reports) == 2
    assert settling.clock.naps == 0


async def test_kick_inside_the_quiet_window_waits_for_quiet(settling: Settling) -> None:
    """A single kick within the quiet window of the last sync syncs one quiet window later."""
    await settling.kick()
    await settling.run_until(BEAT)
    await settling.kick()
    assert settling.sync_times() == [0.0]  # the worker naps instead of syncing
    await settling.run_until(10.0)
    assert settling.sync_times() == [0.0, BEAT + QUIET]


async def test_burst_of_kicks_costs_two_syncs(settling: Settling) -> None:
    """Ten kicks half a quiet window apart: one sync at the start, one a quiet window after
    the last kick, none in between and none after."""
    await settling.kick()
    for beat in range(1, 11):
        await settling.run_until(beat * BEAT)
        await settling.kick()
        assert settling.sync_times() == [0.0], f"synced during the burst, at beat {beat}"
    await settling.run_until(10.0)  # far past every window
    assert settling.sync_times() == [0.0, 10 * BEAT + QUIET]
    assert settling.clock.wake_at is None


async def test_endless_burst_is_still_synced_at_the_maximum(settling: Settling) -> None:
    """Kicks that never stop still get their follow-up sync exactly ``maximum`` after the
    first kick that had to wait, and the next one ``maximum`` after that."""
    await settling.kick()
    beat = 0
    while len(settling.reports) < 3 and beat < 100:
        beat += 1
        await settling.run_until(beat * BEAT)
        await settling.kick()
    first_wait = BEAT  # the kick at beat 1 fell inside the window of the sync at 0
    # The kick at the second sync's own time is again inside its window: that wait starts then.
    assert settling.sync_times() == [0.0, first_wait + MAXIMUM, first_wait + 2 * MAXIMUM]


async def test_transient_errors_are_retried_until_the_sync_succeeds(worker: tuple) -> None:
    """A sync failing transiently is retried with backoff; the report comes once it succeeds."""
    running, unit, reports = worker
    unit.failures = [TransientError("503"), TransientError("throttled")]
    running.kick()
    await wait_for(lambda: len(reports) == 1)
    assert len(unit.calls) == 3
    assert reports[0] == [TargetResult(WEB)]


async def test_permanent_error_is_reported_on_the_targets_and_not_retried(worker: tuple) -> None:
    """A permanent error ends the sync with the error on the unit's targets."""
    running, unit, reports = worker
    unit.failures = [PermanentError("LoadBalancerNotFound")]
    running.kick()
    await wait_for(lambda: len(reports) == 1)
    assert reports[0] == [TargetResult(WEB, error="LoadBalancerNotFound")]
    assert len(unit.calls) == 1


async def test_full_kick_reads_afresh_once(worker: tuple) -> None:
    """kick(full=True) reaches the unit as one full sync; later plain kicks are not full."""
    running, unit, reports = worker
    running.kick(full=True)
    await wait_for(lambda: len(reports) == 1)
    running.kick()
    await wait_for(lambda: len(reports) == 2)
    assert [full for _, full in unit.calls] == [True, False]


async def test_unexpected_error_is_reported_and_the_worker_lives_on(worker: tuple) -> None:
    """A surprise exception becomes an error on the unit's targets; the next kick syncs again."""
    running, unit, reports = worker
    unit.failures = [KeyError("LoadBalancerDescriptions")]
    running.kick()
    await wait_for(lambda: len(reports) == 1)
    error = reports[0][0].error
    assert error is not None
    assert "unexpected KeyError" in error
    running.kick()
    await wait_for(lambda: len(reports) == 2)
    assert reports[1] == [TargetResult(WEB)]


async def test_a_unit_asking_to_sync_again_is_kicked_by_the_clock(settling: Settling) -> None:
    """A result with ``retry_after`` (a held removal to look at again) makes the worker sync
    again that many seconds after the sync, without a kick; then it waits for kicks again."""
    settling.unit.retry_after = [30.0, 10.0]
    await settling.kick()
    assert settling.clock.wake_at == 30.0
    await settling.run_until(100.0)
    assert settling.sync_times() == [0.0, 30.0, 40.0]
    assert settling.clock.wake_at is None


async def test_a_kick_before_the_retry_time_syncs_at_once_and_asks_again(
    settling: Settling,
) -> None:
    """A kick while the worker waits for the retry time syncs as usual; that sync's own result
    decides the next timed sync."""
    settling.unit.retry_after = [30.0, 30.0]
    await settling.kick()
    await settling.run_until(8.0)
    await settling.kick()
    await wait_for(lambda: len(settling.reports) == 2, timeout=5, what="the kicked sync")
    await wait_for(lambda: settling.clock.wake_at == 38.0, timeout=5, what="the new timer")
    await settling.run_until(100.0)
    assert settling.sync_times() == [0.0, 8.0, 38.0]
