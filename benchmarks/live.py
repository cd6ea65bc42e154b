"""Figures 1 and 2, against a running service: put → registered latency, and a 1,000-key burst."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aetcd
from rig import create_elb, instance_id, member_key
from timed_proxy import TimedProxy, registers

from lbmanager.controller.unit import Settle

LATENCY_ELB, FLOOR_ELB, FLOOR_PREFIX = "bench-latency", "bench-floor", "/benchFloor"
BURST_ELBS = 20
REGISTER = "RegisterInstancesWithLoadBalancer"
POLL_INTERVAL = 0.02
# Latency samples are spaced beyond the worker's burst window so each measures an isolated put.
ISOLATION = 2 * Settle().quiet


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Seconds per sample: through the service, and the floor (watch event + direct register)."""

    service: list[float]
    floor: list[float]
    floor_watch: list[float]
    registers_per_put: float


@dataclass(frozen=True, slots=True)
class BurstResult:
    """The 1,000-key burst: write calls, and how long the cloud lagged behind the last put."""

    keys: int
    elbs: int
    register_calls: int
    max_registers_per_elb: int
    describe_calls: int
    put_seconds: float
    to_in_sync_polled: float
    to_last_register: float


def burst_elbs(round_: int) -> list[str]:
    """The ELBs of one burst round: fresh ones each round, so each starts unknown and empty."""
    return [f"bench-burst-{round_}-{n:02d}" for n in range(BURST_ELBS)]


async def prepare(aws: Any, etcd: aetcd.Client, prefix: str, rounds: int) -> None:
    """ELBs for both figures; the latency ELB starts with one member, in sync."""
    first = instance_id()
    await create_elb(aws, LATENCY_ELB, [first])
    await create_elb(aws, FLOOR_ELB, [])
    names = [name for round_ in range(rounds) for name in burst_elbs(round_)]
    await asyncio.gather(*(create_elb(aws, name, []) for name in names))
    await etcd.put(member_key(prefix, LATENCY_ELB, first).encode(), b"")


async def wait_started(etcd: aetcd.Client, prefix: str, polls: int = 3000) -> None:
    """Until the service's start-up sync of the latency ELB recorded it as managed."""
    record = f"{prefix}State/elb/us-east-1/{LATENCY_ELB}".encode()
    for _ in range(polls):
        if await etcd.get(record) is not None:
            return
        await asyncio.sleep(POLL_INTERVAL)
    raise TimeoutError(f"the service did not record {LATENCY_ELB} as managed")


@contextlib.asynccontextmanager
async def _floor_watcher(etcd: aetcd.Client, aws: Any) -> AsyncIterator[dict[str, float]]:
    """Watch the floor prefix; on each event register its instance directly (as the service
    would) and note when the event arrived. Yields {instance id: event arrival time}."""
    seen: dict[str, float] = {}
    watch = await etcd.watch_prefix(f"{FLOOR_PREFIX}/".encode())

    async def follow() -> None:
        async for event in watch:
            at = time.perf_counter()
            instance = event.kv.key.decode().rsplit("/", 1)[-1]
            seen[instance] = at
            await aws.register_instances_with_load_balancer(
                LoadBalancerName=FLOOR_ELB, Instances=[{"InstanceId": instance}]
            )

    task = asyncio.create_task(follow())
    try:
        yield seen
    finally:
        await watch.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def latency(
    etcd: aetcd.Client,
    aws: Any,
    proxy: TimedProxy,
    prefix: str,
    *,
    samples: int = 200,
    warmup: int = 10,
) -> LatencyResult:
    """Alternate a put through the service and a floor sample; time each until moto answered
    the register call naming the new instance, as seen at the proxy."""
    service: list[float] = []
    floor: list[float] = []
    floor_watch: list[float] = []
    before = len(proxy.of(REGISTER))
    async with _floor_watcher(etcd, aws) as seen:
        for n in range(warmup + samples):
            instance = instance_id()
            started = time.perf_counter()
            await etcd.put(member_key(prefix, LATENCY_ELB, instance).encode(), b"")
            async with asyncio.timeout(15):
                answered = await proxy.answered_call(registers(instance))
            took = answered.at - started

            instance = instance_id()
            floor_started = time.perf_counter()
            await etcd.put(f"{FLOOR_PREFIX}/{instance}".encode(), b"")
            async with asyncio.timeout(15):
                answered = await proxy.answered_call(registers(instance))
            # Pacing, not synchronisation: the figure is for isolated changes, so the next put
            # comes after the worker's settle window (a change inside a burst waits, by design).
            await asyncio.sleep(ISOLATION)
            if n >= warmup:
                service.append(took)
                floor.append(answered.at - floor_started)
                floor_watch.append(seen[instance] - floor_started)
    calls = [a for a in proxy.of(REGISTER)[before:] if a.names() == [LATENCY_ELB]]
    return LatencyResult(service, floor, floor_watch, len(calls) / (warmup + samples))


async def burst(
    etcd: aetcd.Client,
    moto_aws: Any,
    proxy: TimedProxy,
    prefix: str,
    *,
    names: list[str],
    per_elb: int = 50,
    putters: int = 4,
) -> BurstResult:
    """Put ``per_elb`` keys for each of ``names`` (round-robin over the ELBs, by ``putters``
    concurrent sequential writers), then poll DescribeLoadBalancers at moto until all hold them."""
    wanted = {name: {instance_id() for _ in range(per_elb)} for name in names}
    columns = [[member_key(prefix, name, i) for i in sorted(ids)] for name, ids in wanted.items()]
    keys = iter([k for row in itertools.zip_longest(*columns) for k in row if k is not None])
    before = len(proxy.answered)

    async def put_some() -> None:
        for key in keys:
            await etcd.put(key.encode(), b"")

    started = time.perf_counter()
    await asyncio.gather(*(put_some() for _ in range(putters)))
    last_put = time.perf_counter()
    async with asyncio.timeout(120):
        while True:
            found = await moto_aws.describe_load_balancers(LoadBalancerNames=names)
            held = {
                d["LoadBalancerName"]: {i["InstanceId"] for i in d["Instances"]}
                for d in found["LoadBalancerDescriptions"]
            }
            if all(held[name] >= ids for name, ids in wanted.items()):
                break
            await asyncio.sleep(POLL_INTERVAL)
    in_sync = time.perf_counter()
    calls = [a for a in proxy.answered[before:] if a.action == REGISTER and a.names()[0] in wanted]
    per_elb_calls = [sum(1 for a in calls if a.names() == [name]) for name in wanted]
    describes = [a for a in proxy.answered[before:] if a.action == "DescribeLoadBalancers"]
    return BurstResult(
        keys=sum(map(len, wanted.values())),
        elbs=len(wanted),
        register_calls=len(calls),
        max_registers_per_elb=max(per_elb_calls),
        describe_calls=len(describes),
        put_seconds=last_put - started,
        to_in_sync_polled=in_sync - last_put,
        to_last_register=max(a.at for a in calls) - last_put,
    )
