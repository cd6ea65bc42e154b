"""Figures 1 and 2, against a running service: put → registered latency, and a 1,000-key burst,
for either kind of load balancer (`balancers.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aetcd
from balancers import Balancer, registers
from rig import member_key
from timed_proxy import TimedProxy

from lbmanager.controller.unit import Settle

LATENCY_ELB, FLOOR_ELB, FLOOR_PREFIX = "bench-latency", "bench-floor", "/benchFloor"
BURST_ELBS = 20
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


async def prepare(lb: Balancer, etcd: aetcd.Client, prefix: str, rounds: int) -> None:
    """Load balancers for both figures; the latency one starts with one member, in sync."""
    first = lb.new_member()
    await lb.create(LATENCY_ELB, [first])
    await lb.create(FLOOR_ELB, [])
    names = [name for round_ in range(rounds) for name in burst_elbs(round_)]
    await asyncio.gather(*(lb.create(name, []) for name in names))
    await etcd.put(member_key(prefix, LATENCY_ELB, first, lb.kind).encode(), b"")


async def wait_started(lb: Balancer, etcd: aetcd.Client, prefix: str, polls: int = 3000) -> None:
    """Until the service's start-up sync of the latency load balancer recorded it as managed."""
    record = f"{prefix}State/{lb.kind}/us-east-1/{LATENCY_ELB}".encode()
    for _ in range(polls):
        if await etcd.get(record) is not None:
            return
        await asyncio.sleep(POLL_INTERVAL)
    raise TimeoutError(f"the service did not record {lb.kind} {LATENCY_ELB} as managed")


@contextlib.asynccontextmanager
async def _floor_watcher(lb: Balancer, etcd: aetcd.Client) -> AsyncIterator[dict[str, float]]:
    """Watch the floor prefix; on each event register its member directly (as the service
    would) and note when the event arrived. Yields {member: event arrival time}."""
    seen: dict[str, float] = {}
    watch = await etcd.watch_prefix(f"{FLOOR_PREFIX}/".encode())

    async def follow() -> None:
        async for event in watch:
            at = time.perf_counter()
            member = event.kv.key.decode().rsplit("/", 1)[-1]
            seen[member] = at
            await lb.register_directly(FLOOR_ELB, member)

    task = asyncio.create_task(follow())
    try:
        yield seen
    finally:
        await watch.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def latency(
    lb: Balancer,
    etcd: aetcd.Client,
    proxy: TimedProxy,
    prefix: str,
    *,
    samples: int = 200,
    warmup: int = 10,
) -> LatencyResult:
    """Alternate a put through the service and a floor sample; time each until moto answered
    the register call naming the new member, as seen at the proxy."""
    service: list[float] = []
    floor: list[float] = []
    floor_watch: list[float] = []
    before = len(proxy.of(lb.register_action))
    async with _floor_watcher(lb, etcd) as seen:
        for n in range(warmup + samples):
            member = lb.new_member()
            started = time.perf_counter()
            await etcd.put(member_key(prefix, LATENCY_ELB, member, lb.kind).encode(), b"")
            async with asyncio.timeout(15):
                answered = await proxy.answered_call(registers(lb, member))
            took = answered.at - started

            member = lb.new_member()
            floor_started = time.perf_counter()
            await etcd.put(f"{FLOOR_PREFIX}/{member}".encode(), b"")
            async with asyncio.timeout(15):
                answered = await proxy.answered_call(registers(lb, member))
            # Pacing, not synchronisation: the figure is for isolated changes, so the next put
            # comes after the worker's settle window (a change inside a burst waits, by design).
            await asyncio.sleep(ISOLATION)
            if n >= warmup:
                service.append(took)
                floor.append(answered.at - floor_started)
                floor_watch.append(seen[member] - floor_started)
    calls = [a for a in proxy.of(lb.register_action)[before:] if lb.target_of(a) == LATENCY_ELB]
    return LatencyResult(service, floor, floor_watch, len(calls) / (warmup + samples))


async def burst(
    lb: Balancer,
    etcd: aetcd.Client,
    proxy: TimedProxy,
    prefix: str,
    *,
    names: list[str],
    per_elb: int = 50,
    putters: int = 4,
) -> BurstResult:
    """Put ``per_elb`` keys for each of ``names`` (round-robin over them, by ``putters``
    concurrent sequential writers), then poll moto until every one holds its members."""
    wanted = {name: {lb.new_member() for _ in range(per_elb)} for name in names}
    columns = [
        [member_key(prefix, name, m, lb.kind) for m in sorted(members)]
        for name, members in wanted.items()
    ]
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
            held = await lb.registered(names)
            if all(held[name] >= members for name, members in wanted.items()):
                break
            await asyncio.sleep(POLL_INTERVAL)
    in_sync = time.perf_counter()
    answered = proxy.answered[before:]
    calls = [a for a in answered if a.action == lb.register_action and lb.target_of(a) in wanted]
    per_elb_calls = [sum(1 for a in calls if lb.target_of(a) == name) for name in wanted]
    describes = [a for a in answered if (a.action or "").startswith("Describe")]
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
