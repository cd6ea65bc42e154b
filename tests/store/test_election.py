"""The election (SPEC §10) against a real etcd: one leader, handover, expiry, no overlap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aetcd
from harness import FAST_BACKOFF, wait_for
from servers import HOST, EtcdServer, TcpProxy

from lbmanager.store.election import Candidate, LeadershipLost
from lbmanager.store.etcd import Store

PREFIX = "/lbManagerState/election/test"


@dataclass
class Running:
    """One candidate running in this loop, with when it started and stopped leading."""

    candidate: Candidate
    task: asyncio.Task[None]
    led: list[float] = field(default_factory=list)  # times lead() started
    ended: list[float] = field(default_factory=list)  # times lead() was cancelled

    @property
    def leading(self) -> bool:
        """True while lead() runs."""
        return len(self.led) > len(self.ended)


@contextlib.asynccontextmanager
async def candidate(endpoint: str, name: str, ttl: int = 3) -> AsyncIterator[Running]:
    """A candidate on its own store connection; resigns (cancelled) when the block ends."""
    host, port = endpoint.removeprefix("http://").split(":")
    store = Store([(host, int(port))], timeout=1.0)
    elected = Candidate(store, PREFIX, ttl, name, backoff=FAST_BACKOFF)
    running: Running

    async def lead() -> None:
        running.led.append(time.monotonic())
        try:
            await asyncio.Event().wait()
        finally:
            running.ended.append(time.monotonic())

    running = Running(elected, asyncio.create_task(elected.run(lead)))
    try:
        yield running
    finally:
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        await store.close()


async def test_a_lone_candidate_leads(etcd_server: EtcdServer) -> None:
    """One candidate is elected at once and reports the role."""
    async with candidate(etcd_server.endpoint, "a") as a:
        await wait_for(lambda: a.leading, what="a to lead")
        assert a.candidate.leading
        assert a.candidate.leader == "a"


async def test_one_leader_of_three_and_handover_on_resign(etcd_server: EtcdServer) -> None:
    """Of three candidates exactly one leads; a resigning leader is replaced at once, by the
    next in line, and the standbys know who leads."""
    async with candidate(etcd_server.endpoint, "a") as a:
        await wait_for(lambda: a.leading, what="a to lead")
        async with candidate(etcd_server.endpoint, "b") as b:
            await wait_for(lambda: b.candidate.leader == "a", what="b to see a lead")
            async with candidate(etcd_server.endpoint, "c") as c:
                await wait_for(lambda: c.candidate.leader == "a", what="c to see a lead")
                assert (a.leading, b.leading, c.leading) == (True, False, False)
                a.task.cancel()
                await asyncio.gather(a.task, return_exceptions=True)
                resigned = time.monotonic()
                await wait_for(lambda: b.leading, what="b to take over")
                assert b.led[0] - resigned < 1.0, "a resignation must hand over at once"
                assert not c.leading
                await wait_for(lambda: c.candidate.leader == "b", what="c to see b lead")


async def test_a_crashed_leader_is_replaced_after_its_ttl(etcd_server: EtcdServer) -> None:
    """A leader that stops refreshing its lease (etcd out of its reach) stops leading before
    the lease can expire; the standby leads only after that: the two never overlap."""
    async with (
        TcpProxy(HOST, etcd_server.port) as link,
        candidate(link.endpoint, "a", ttl=3) as a,
    ):
        await wait_for(lambda: a.leading, what="a to lead")
        async with candidate(etcd_server.endpoint, "b", ttl=3) as b:
            await wait_for(lambda: b.candidate.leader == "a", what="b to stand by")
            await link.cut()
            cut = time.monotonic()
            await wait_for(lambda: b.leading, timeout=3 + 5, what="b to take over")
            assert a.ended, "a must have stopped leading"
            assert a.ended[0] < b.led[0], "the old leader stopped before the new one led"
            assert a.ended[0] - cut < 3, "a stops within its TTL"
            assert not a.leading


async def test_a_deleted_key_ends_leadership(etcd_server: EtcdServer, etcd: aetcd.Client) -> None:
    """An operator deleting the leader's key makes it stop leading, and campaign again."""
    async with candidate(etcd_server.endpoint, "a") as a:
        await wait_for(lambda: a.leading, what="a to lead")
        await etcd.delete_prefix(PREFIX.encode())
        await wait_for(lambda: len(a.ended) == 1, what="a to stop leading")
        await wait_for(lambda: len(a.led) == 2, what="a to lead again after campaigning")


async def test_a_stop_that_meets_a_lost_leadership_still_stops(etcd_server: EtcdServer) -> None:
    """A cancel that arrives as leadership is lost (the term's task group then raises the loss,
    not the cancel) ends the candidate instead of starting another campaign."""
    host, port = etcd_server.endpoint.removeprefix("http://").split(":")
    store = Store([(host, int(port))], timeout=1.0)
    elected = Candidate(store, PREFIX, 3, "a", backoff=FAST_BACKOFF)
    leading = asyncio.Event()

    async def lead() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise LeadershipLost("lost while stopping") from None

    task = asyncio.create_task(elected.run(lead))
    try:
        await asyncio.wait_for(leading.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the candidate campaigned again instead of stopping"
        assert task.cancelled()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
