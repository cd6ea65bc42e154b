"""Issue 9 point 6 against the running service: a throttled ELB write is retried by itself,
not the whole sync, so the unit keeps the view it read."""

from __future__ import annotations

import asyncio

import aetcd
import pytest
from cloud_calls import (
    REGISTER,
    describe_names,
    elb_key,
    elb_writes_to,
    for_elb,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    share_of,
    tuned,
)
from fault_proxy import FaultProxy, throttling
from harness import Cloud, running_service, wait_for

from lbmanager.providers import elb
from lbmanager.runtime.retry import Backoff
from lbmanager.settings import Settings

DESCRIBE = "DescribeLoadBalancers"
# The write retry's waits, shortened so the tests stay quick.
FAST_WRITE_RETRY = Backoff(initial=0.02, maximum=0.2, attempts=elb.WRITE_RETRY.attempts)


def describes_of(proxy: FaultProxy, name: str) -> int:
    """DescribeLoadBalancers calls naming ``name``."""
    return sum(1 for c in proxy.calls if c.action == DESCRIBE and name in describe_names(c))


async def test_throttled_writes_of_a_300_member_change_do_not_reread_the_elb(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """60 % of the writes throttled: 300 members, put in 10 waves, all registered after at
    most 3 describes (one per sync would be about 20)."""
    monkeypatch.setattr(elb, "WRITE_RETRY", FAST_WRITE_RETRY)
    cloud.create_elb("web")
    ids = [f"i-{n:017x}" for n in range(300)]
    proxy.inject(share_of(elb_writes_to("web"), 60), throttling(), times=None)
    # High limits: this test is about retries, not the token buckets.
    fast = tuned(settings, elb_write_rps=1000, elb_describe_rps=1000)
    async with running_service(fast):
        for wave in range(10):
            await put_all(etcd, [elb_key("web", "multiple", i) for i in ids[wave::10]])
            # Each wave waits for a register call, so the change takes several syncs.
            async with asyncio.timeout(15):
                await proxy.wait_for(for_elb(REGISTER, "web"), wave + 1)
        await wait_for(lambda: cloud.elb_instances("web") == set(ids), what="300 registered")
    assert describes_of(proxy, "web") <= 3
    throttled = [c for c in proxy.calls if c.fault is not None]
    assert len(throttled) >= 6


async def test_a_write_throttled_past_its_attempts_is_the_workers_transient_error(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Throttled once more than its attempts, a register gives up; the worker syncs again
    (one more describe) and the next attempt goes through."""
    retry = Backoff(initial=0.01, maximum=0.05, attempts=3)
    monkeypatch.setattr(elb, "WRITE_RETRY", retry)
    cloud.create_elb("web")
    proxy.inject(for_elb(REGISTER, "web"), throttling(), times=4)
    await etcd.put(elb_key("web", "multiple", "i-0000000000000000a"), b"")
    async with running_service(settings) as service:
        await wait_for(lambda: cloud.elb_instances("web"), what="registered")
        assert not service.status.target_errors
    assert proxy.count(for_elb(REGISTER, "web")) == 5  # 3 in the first sync, 2 in the second
    assert describes_of(proxy, "web") == 2
