"""Route53 changes followed until INSYNC (SPEC §8, §9): through moto and the fault proxy, and
the tracker's timing on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import pytest
from cloud_calls import (
    CHANGE,
    GET_CHANGE,
    PENDING,
    REGION,
    dns_target,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
)
from fault_proxy import FaultProxy
from harness import Cloud, wait_for
from servers import HOST

from lbmanager.controller.changes import ChangeTracker, PollTiming
from lbmanager.controller.unit import SyncContext
from lbmanager.controller.zone import ZoneUnit
from lbmanager.errors import PermanentError, TransientError
from lbmanager.keys.target import Target
from lbmanager.providers.api import ChangeStatus
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.ratelimit import TokenBucket
from lbmanager.providers.route53 import Route53Provider
from lbmanager.runtime.metrics import REGISTRY
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

FAST = PollTiming(first=0.05, cap=0.2)
WWW_TARGET = dns_target("Z1", "www.example.com")


def gauge() -> float | None:
    """The value of lbmanager_route53_changes_pending."""
    return REGISTRY.get_sample_value("lbmanager_route53_changes_pending")


class CountingBucket(TokenBucket):
    """A token bucket that counts the tokens taken."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.taken = 0

    async def acquire(self) -> None:
        """Count, then wait for the token."""
        self.taken += 1
        await super().acquire()


class Zone:
    """A zone unit and a running change tracker over moto (through the proxy)."""

    def __init__(self, zone_id: str, route53: Route53Provider, tracker: ChangeTracker) -> None:
        self.tree = Tree("/lbManager")
        # Never written, so its store is never dialled (every name here has keys).
        managed = ManagedTargets(Store([(HOST, 1)]), "/lbManagerState", write=False)
        context = SyncContext(tree=self.tree, managed=managed)
        self.unit = ZoneUnit(REGION, zone_id, context, route53, tracker)
        self.zone_id = zone_id
        self.tracker = tracker

    async def put(self, fqdn: str, ip: str) -> Target:
        """Put a member key of ``fqdn`` and sync the zone."""
        target = dns_target(self.zone_id, fqdn)
        self.tree.revision += 1
        key = f"/lbManager/route53/{REGION}/{self.zone_id}/{fqdn}/multiple/{ip}"
        self.tree.put(key, self.tree.revision)
        self.unit.add(target)
        await self.unit.sync(full=False)
        return target


@pytest.fixture
def bucket() -> CountingBucket:
    """The Route53 rate limit, 20 calls a second, counting its tokens."""
    return CountingBucket(20)


@pytest.fixture
async def zone(cloud: Cloud, proxy: FaultProxy, bucket: CountingBucket) -> AsyncIterator[Zone]:
    """A zone in moto, its unit, and its tracker running (fast timing) until the test ends."""
    zone_id = cloud.create_zone("example.com")
    async with contextlib.AsyncExitStack() as stack:
        route53 = Route53Provider(AwsClients(stack), bucket)
        tracker = ChangeTracker(route53, FAST)
        async with asyncio.TaskGroup() as group:
            running = group.create_task(tracker.run())
            yield Zone(zone_id, route53, tracker)
            running.cancel()


async def test_change_is_pending_with_an_age_until_insync(
    zone: Zone, proxy: FaultProxy, bucket: CountingBucket
) -> None:
    """Three PENDING answers keep the change listed, ageing, and counted by the gauge; the
    INSYNC one drops it, and polls stop. Each poll took a limiter token and waited its backoff."""
    proxy.inject(GET_CHANGE, PENDING, times=3)
    www = await zone.put("www.example.com", "10.0.0.1")
    (pending,) = zone.tracker.pending_changes()
    assert (pending.zone_id, pending.names) == (zone.zone_id, (www.fqdn,))
    await wait_for(lambda: gauge() == 1, what="the gauge counting it")
    async with asyncio.timeout(5):
        await proxy.wait_for(GET_CHANGE, 2)
    (later,) = zone.tracker.pending_changes()
    assert later.change_id == pending.change_id
    assert later.age >= FAST.delay(0) + FAST.delay(1)
    await wait_for(lambda: not zone.tracker.pending_changes(), what="the change INSYNC")
    await wait_for(lambda: gauge() == 0, what="the gauge cleared")
    assert [c.fault for c in proxy.calls if c.action == GET_CHANGE] == [PENDING] * 3 + [None]
    assert bucket.taken == len(proxy.calls)  # every Route53 call, each GetChange too
    stamped = proxy.calls.stamped  # type: ignore[attr-defined] # cloud_calls' StampedCalls
    polls = [*stamped(CHANGE), *stamped(GET_CHANGE)]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert all(gap >= 0.9 * FAST.delay(n) for n, gap in enumerate(gaps)), gaps


async def test_next_sync_does_not_wait_for_insync(zone: Zone, proxy: FaultProxy) -> None:
    """While GetChange answers PENDING for ever, the zone's next syncs still go out at once."""
    proxy.inject(GET_CHANGE, PENDING, times=None)
    async with asyncio.timeout(3):
        await zone.put("www.example.com", "10.0.0.1")
        await zone.put("api.example.com", "10.0.0.2")
        await proxy.wait_for(GET_CHANGE, 2)
    assert proxy.count(CHANGE) == 2
    names = [p.names for p in zone.tracker.pending_changes()]
    assert names == [("www.example.com.",), ("api.example.com.",)]


class ScriptedRoute53:
    """Answers GetChange from a script: a status, or an error to raise."""

    def __init__(self, *answers: ChangeStatus | Exception) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def change_status(self, region: str, change_id: str) -> ChangeStatus:
        """The next scripted answer; PENDING once the script has run out."""
        self.asked += 1
        answer = self.answers.pop(0) if self.answers else ChangeStatus.PENDING
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_backoff_doubles_to_its_cap_and_a_late_change_is_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Polls 5, 10, 20 s apart, then every 30 s (the cap); past 10 minutes one warning; INSYNC
    drops the change."""
    route53, clock = ScriptedRoute53(), FakeClock()
    tracker = ChangeTracker(route53, clock=clock)  # type: ignore[arg-type]
    tracker.track(REGION, "Z1", "/change/C1", [WWW_TARGET])
    polls: list[float] = []
    warned_at: list[float] = []
    wait = await tracker.poll_due()
    with caplog.at_level(logging.WARNING):
        while clock.now < 700:
            assert wait is not None
            clock.now += wait
            asked = route53.asked
            wait = await tracker.poll_due()
            assert route53.asked == asked + 1  # each wait ends at exactly one due poll
            polls.append(clock.now)
            if caplog.records and not warned_at:
                warned_at.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise([0.0, *polls])]
    assert gaps[:4] == [5, 10, 20, 30]
    assert set(gaps[3:]) == {30}
    assert len(caplog.records) == 1
    assert "not INSYNC after" in caplog.messages[0]
    assert 600 <= warned_at[0] < 630
    (pending,) = tracker.pending_changes()
    assert pending.age == clock.now
    route53.answers = [ChangeStatus.INSYNC]
    clock.now += 30
    assert await tracker.poll_due() is None
    assert tracker.pending_changes() == []


async def test_failed_poll_keeps_the_schedule_and_a_refusal_drops_the_change() -> None:
    """A transient GetChange error is just another PENDING; a permanent one ends the following."""
    route53 = ScriptedRoute53(TransientError("throttled"), PermanentError("NoSuchChange"))
    clock = FakeClock()
    tracker = ChangeTracker(route53, clock=clock)  # type: ignore[arg-type]
    tracker.track(REGION, "Z1", "/change/C1", [WWW_TARGET])
    clock.now = 5
    assert await tracker.poll_due() == 10
    assert len(tracker.pending_changes()) == 1
    clock.now = 15
    assert await tracker.poll_due() is None
    assert route53.asked == 2


async def test_the_targets_of_a_change_are_told_once_it_is_insync() -> None:
    """`settled` hears of a change's targets when GetChange says INSYNC, not before; until
    then they are in flight in their zone only."""
    route53 = ScriptedRoute53(ChangeStatus.PENDING, ChangeStatus.INSYNC)
    clock = FakeClock()
    tracker = ChangeTracker(route53, clock=clock)  # type: ignore[arg-type]
    www, api = dns_target("Z1", "www.example.com"), dns_target("Z1", "api.example.com")
    tracker.track(REGION, "Z1", "/change/C1", [www, api])
    assert tracker.in_flight("Z1") == {www, api}
    assert tracker.in_flight("Z2") == frozenset()
    told: list[list[Target]] = []
    clock.now = 5
    assert await tracker.poll_due(told.append) == 10
    assert told == []
    clock.now = 15
    assert await tracker.poll_due(told.append) is None
    assert [set(targets) for targets in told] == [{www, api}]
    assert tracker.in_flight("Z1") == frozenset()
