"""Figure 4: 300 members join one ELB in waves while 60 % of its write calls are throttled."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aetcd
from cloud_calls import REGISTER, describe_names, elb_writes_to, for_elb, share_of
from fault_proxy import throttling
from rig import create_elb, instance_id, member_key
from timed_proxy import TimedProxy

THROTTLED_ELB = "bench-throttled-{round}"
POLL_INTERVAL = 0.02


@dataclass(frozen=True, slots=True)
class ThrottledResult:
    """What the change cost: calls seen at the proxy (throttled ones included), and the lag."""

    members: int
    waves: int
    percent: int
    describe_calls: int
    register_calls: int
    throttled_calls: int
    to_in_sync_polled: float


async def throttled_burst(
    etcd: aetcd.Client,
    moto_aws: Any,
    proxy: TimedProxy,
    prefix: str,
    *,
    round_: int,
    members: int = 300,
    waves: int = 60,
    pace: float = 0.15,
    percent: int = 60,
) -> ThrottledResult:
    """Throttle ``percent`` % of the writes to a fresh ELB, put ``members`` keys for it in
    ``waves`` transactions ``pace`` s apart, poll moto until all are registered."""
    name = THROTTLED_ELB.format(round=round_)
    await create_elb(moto_aws, name, [])
    wanted = sorted(instance_id() for _ in range(members))
    injection = proxy.inject(share_of(elb_writes_to(name), percent), throttling(), times=None)
    before = len(proxy.calls)
    try:
        for wave in range(waves):
            puts = [
                etcd.transactions.put(member_key(prefix, name, i).encode(), b"")
                for i in wanted[wave::waves]
            ]
            await etcd.transaction(compare=[], success=puts, failure=[])
            # Pacing, not synchronisation: waves further apart than the worker's settle window
            # are separate syncs, each with its own register call.
            await asyncio.sleep(pace)
        last_put = time.perf_counter()
        async with asyncio.timeout(300):
            while True:
                found = await moto_aws.describe_load_balancers(LoadBalancerNames=[name])
                held = {i["InstanceId"] for i in found["LoadBalancerDescriptions"][0]["Instances"]}
                if held >= set(wanted):
                    break
                await asyncio.sleep(POLL_INTERVAL)
        in_sync = time.perf_counter()
    finally:
        injection.remaining = 0
    calls = proxy.calls[before:]
    return ThrottledResult(
        members=members,
        waves=waves,
        percent=percent,
        describe_calls=sum(
            1 for c in calls if c.action == "DescribeLoadBalancers" and name in describe_names(c)
        ),
        register_calls=sum(map(for_elb(REGISTER, name), calls)),
        throttled_calls=sum(1 for c in calls if c.fault is not None),
        to_in_sync_polled=in_sync - last_put,
    )
