"""The worker: serialized, coalescing, settling bursts, retrying transient errors (SPEC §4, §5)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from harness import wait_for

from lbmanager.controller.unit import Settle, TargetResult
from lbmanager.controller.worker import Worker
from lbmanager.errors import PermanentError, TransientError
from lbmanager.keys.target import Target
from lbmanager.runtime.retry import Backoff

WEB = Target("elb", "us-east-1", "web")


class RecordingUnit:
    """A sync unit that records each sync; a test may hold a sync open or make it fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, bool]] = []
        self.gate: asyncio.Event | None = None
        self.failures: list[Exception] = []
        self.in_sync = asyncio.Event()

    def add(self, target: Target) -> None:
        """Nothing to remember."""

    def targets(self) -> list[Target]:
        """One target."""
        return [WEB]

    async def sync(self, full: bool) -> list[TargetResult]:
        """Record the call, then wait for the gate or fail as told."""
        self.calls.append((time.monotonic(), full))
        self.in_sync.set()
        if self.gate is not None:
            await self.gate.wait()
        self.in_sync.clear()
        if self.failures:
            raise self.failures.pop(0)
        return [TargetResult(WEB)]


@pytest.fixture
async def worker() -> AsyncIterator[tuple[Worker, RecordingUnit, list[list[TargetResult]]]]:
    """A running worker over a RecordingUnit, and the results it reported."""
    unit = RecordingUnit()
    reports: list[list[TargetResult]] = []
    running = Worker("web", unit, lambda _, results: reports.append(results),
                     Backoff(initial=0.01, maximum=0.05), Settle(quiet=0.1, maximum=0.5))
    task = asyncio.create_task(running.run())
    yield running, unit, reports
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_kicks_during_a_sync_cause_exactly_one_follow_up(worker: tuple) -> None:
    """Many kicks while a sync is in flight collapse into one more sync."""
    running, unit, reports = worker
    unit.gate = asyncio.Event()
    running.kick()
    await asyncio.wait_for(unit.in_sync.wait(), 5)
    for _ in range(50):
        running.kick()
    unit.gate.set()
    await wait_for(lambda: len(reports) == 2)
    await asyncio.sleep(0.2)  # proving a negative: no third sync follows
    assert len(unit.calls) == 2


async def test_isolated_kick_syncs_at_once(worker: tuple) -> None:
    """A kick after a quiet spell starts its sync without waiting for the settle window."""
    running, unit, reports = worker
    running.kick()
    await wait_for(lambda: len(reports) == 1)
    await asyncio.sleep(0.15)  # longer than the 100 ms quiet window: the next kick is isolated
    kicked = time.monotonic()
    running.kick()
    await wait_for(lambda: len(reports) == 2)
    assert unit.calls[1][0] - kicked < 0.08  # a settle wait would take at least 0.1 s


async def test_burst_of_kicks_costs_two_syncs(worker: tuple) -> None:
    """Kicks 10 ms apart for 0.3 s: one sync at the start, one after the burst has settled."""
    running, unit, reports = worker
    for _ in range(30):
        running.kick()
        await asyncio.sleep(0.01)  # the burst's pace, not synchronisation
    last_kick = time.monotonic()
    await wait_for(lambda: len(reports) == 2)
    await asyncio.sleep(0.3)  # proving a negative: the burst caused no more syncs
    assert len(unit.calls) == 2
    assert unit.calls[1][0] >= last_kick + 0.09


async def test_endless_burst_is_still_synced_within_the_maximum(worker: tuple) -> None:
    """Kicks that never stop still get a follow-up sync once the 0.5 s maximum has passed."""
    running, unit, _ = worker
    started = time.monotonic()
    while len(unit.calls) < 2 and time.monotonic() - started < 3:
        running.kick()
        await asyncio.sleep(0.01)
    assert len(unit.calls) == 2
    assert unit.calls[1][0] - unit.calls[0][0] < 0.8


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
