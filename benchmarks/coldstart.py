"""Figure 3: cold start of the service on 100,000 keys (1,000 load balancers x 100 members, in
sync), for either kind of load balancer (`balancers.py`), and the member phases it publishes:
one key per load balancer, written at most once (SPEC §8)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aetcd
from balancers import Balancer
from rig import REGION, ServiceProcess, member_key, state_prefix
from timed_proxy import TimedProxy

from lbmanager.state.phases import phases_prefix

TXN_OPS = 128  # etcd's default --max-txn-ops


@dataclass(frozen=True, slots=True)
class ColdTree:
    """What was populated: load balancer name -> its members."""

    prefix: str
    kind: str
    members: dict[str, list[str]]

    @property
    def keys(self) -> int:
        """Number of member keys."""
        return sum(map(len, self.members.values()))


@dataclass(frozen=True, slots=True)
class ColdResult:
    """Seconds from process start, peak RSS, and what moto alone needs for the same reads."""

    keys: int
    elbs: int
    tree_read: float | None
    first_describe_sent: float
    first_plan: float
    all_checked: float
    describe_calls: int
    write_calls: int
    peak_rss_mb: float
    moto_describe_floor: float
    phases_published: float = 0.0  # seconds from start until every phase key is there
    phase_keys: int = 0
    phase_writes: int = 0  # the most times any one phase key has been written (its version)


def plan_tree(lb: Balancer, prefix: str, elbs: int = 1000, members: int = 100) -> ColdTree:
    """Names and synthetic members for the cold-start tree."""
    names = [f"cold-{n:04d}" for n in range(elbs)]
    return ColdTree(prefix, lb.kind, {n: [lb.new_member() for _ in range(members)] for n in names})


async def populate(etcd: aetcd.Client, lb: Balancer, tree: ColdTree, workers: int = 8) -> float:
    """Put every key (txns of 128 puts) and create every load balancer with its members
    registered, both concurrently; also record each as managed, as a previous run would have.
    Returns the seconds it took."""
    started = time.perf_counter()
    keys = [
        member_key(tree.prefix, name, m, tree.kind)
        for name, members in tree.members.items()
        for m in members
    ]
    keys += [f"{state_prefix(tree.prefix)}/{tree.kind}/{REGION}/{name}" for name in tree.members]
    batches = iter([keys[n : n + TXN_OPS] for n in range(0, len(keys), TXN_OPS)])
    elbs = iter(tree.members.items())

    async def put_batches() -> None:
        for batch in batches:
            puts = [etcd.transactions.put(k.encode(), b"") for k in batch]
            await etcd.transaction(compare=[], success=puts, failure=[])

    async def create_elbs() -> None:
        for name, members in elbs:
            await lb.create(name, members)

    await asyncio.gather(
        # One creator: moto's server answered 500 now and then to concurrent creates.
        *(put_batches() for _ in range(workers)),
        create_elbs(),
    )
    return time.perf_counter() - started


async def moto_describe_floor(lb: Balancer, tree: ColdTree, concurrency: int = 50) -> float:
    """Seconds moto needs to answer the reads of a full sync (20 load balancers per request
    for classic ELBs, one per target group), sent directly and all at once, as the service
    sends them."""
    names = sorted(tree.members)
    chunks = [names[n : n + 20] for n in range(0, len(names), 20)]
    gate = asyncio.Semaphore(concurrency)

    async def describe(chunk: list[str]) -> None:
        async with gate:
            await lb.registered(chunk)

    started = time.perf_counter()
    await asyncio.gather(*map(describe, chunks))
    return time.perf_counter() - started


async def cold_start(
    lb: Balancer, service: ServiceProcess, proxy: TimedProxy, tree: ColdTree, settle: float = 1.0
) -> ColdResult:
    """Start ``service`` and time it until its describes are answered; peak RSS after
    ``settle`` more seconds (VmHWM only grows, so a later read can only be larger)."""
    proxy.reset()
    chunks = -(-len(tree.members) // lb.names_per_describe)
    await service.start()
    try:
        async with asyncio.timeout(180):
            describes = await proxy.answered_count(lb.describe_action, chunks)
    except TimeoutError:
        service.check_alive()
        raise
    await asyncio.sleep(settle)
    service.check_alive()
    rss = service.peak_rss_mb()
    read_at = service.first_line("read ")
    writes = [a for a in proxy.answered if not (a.action or "").startswith("Describe")]
    return ColdResult(
        keys=tree.keys,
        elbs=len(tree.members),
        tree_read=None if read_at is None else read_at - service.started_at,
        first_describe_sent=min(a.sent for a in describes) - service.started_at,
        first_plan=describes[0].at - service.started_at,
        all_checked=describes[chunks - 1].at - service.started_at,
        describe_calls=len(describes),
        write_calls=len(writes),
        peak_rss_mb=rss,
        moto_describe_floor=0.0,
    )


async def phases_published(  # noqa: PLR0917 - the run's parts
    etcd: aetcd.Client,
    service: ServiceProcess,
    tree: ColdTree,
    lb: Balancer,
    proxy: TimedProxy,
    within: float = 300.0,
    settle: float = 1.0,
) -> tuple[float, int, int]:
    """Wait until the service has read the health of every load balancer of ``tree`` (its
    full sync, which publishes the phases; on a restart the keys are there before it) and
    every phase key is there, then ``settle`` seconds for the last publish; (seconds from the
    service's start, phase keys, the most writes of any one key: its etcd version)."""
    prefix = (phases_prefix(state_prefix(tree.prefix)) + "/").encode()
    async with asyncio.timeout(within):
        await proxy.answered_count(lb.health_action, len(tree.members))
        while len(found := await etcd.get_prefix(prefix)) < len(tree.members):
            service.check_alive()
            await asyncio.sleep(0.5)  # a progress poll of a slow process, not a synchronisation
    seconds = time.perf_counter() - service.started_at
    await asyncio.sleep(settle)
    found = await etcd.get_prefix(prefix)
    return seconds, len(found), max((int(kv.version) for kv in found), default=0)
