"""A follower on a 3-member cluster leaves a member that hangs or loses its leader (SPEC §4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from etcd_cluster import EtcdCluster, EtcdMember
from harness import FAST_BACKOFF, wait_for
from servers import HOST

from lbmanager.store.etcd import Event, KeyValue, Store, StoreUnavailable
from lbmanager.store.follow import TreeFollower

TREE = "/lbManager/"


@pytest.fixture
async def cluster() -> AsyncIterator[EtcdCluster]:
    """A fresh 3-member etcd cluster; members are thawed and stopped afterwards."""
    async with EtcdCluster() as running:
        yield running


class Following:
    """A TreeFollower running on a `Store` whose first endpoint is ``watched``."""

    def __init__(self, cluster: EtcdCluster, watched: EtcdMember) -> None:
        others = [m for m in cluster.members if m is not watched]
        self.store = Store([(HOST, m.port) for m in [watched, *others]])
        self.keys: set[bytes] = set()
        self.follower = TreeFollower(
            self.store,
            TREE,
            "/lbManagerState/",
            on_snapshot=self._on_snapshot,
            on_events=self._on_events,
            backoff=FAST_BACKOFF,
        )

    def _on_snapshot(self, _revision: int, tree: list[KeyValue], _state: list[KeyValue]) -> None:
        self.keys = {kv.key for kv in tree}

    def _on_events(self, events: list[Event]) -> None:
        self.keys.update(e.key for e in events if not e.deleted)


@pytest.fixture
async def following(cluster: EtcdCluster) -> AsyncIterator[Following]:
    """A follower watching the cluster's first member, with the watch open and delivering."""
    state = Following(cluster, cluster.members[0])
    await state.follower.read()
    task = asyncio.create_task(state.follower.run())
    try:
        await cluster.put(cluster.members[1], f"{TREE}warm-up")
        await wait_for(lambda: f"{TREE}warm-up".encode() in state.keys, what="watch to open")
        yield state
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await state.store.close()


async def assert_seen_within(following: Following, cluster: EtcdCluster, bound: float) -> None:
    """Put a key through a healthy member; the follower must see it within ``bound`` seconds."""
    key = f"{TREE}after"
    await cluster.put(cluster.members[1], key)
    await wait_for(lambda: key.encode() in following.keys, timeout=bound, what=f"{key} seen")


async def test_follower_leaves_a_frozen_member(cluster: EtcdCluster, following: Following) -> None:
    """A member that hangs (SIGSTOP) is noticed by keepalive and left within ~20 s."""
    watched = cluster.members[0]
    watched.freeze()
    try:
        await assert_seen_within(following, cluster, 20)
    finally:
        watched.thaw()


async def test_follower_leaves_a_member_without_leader(
    cluster: EtcdCluster, following: Following
) -> None:
    """A member cut off from its peers still answers, but its watch is cancelled for want of a
    leader, so the follower moves on and sees what the others agree on within seconds."""
    await cluster.isolate(cluster.members[0])
    await assert_seen_within(following, cluster, 10)


async def test_read_fails_fast_on_a_member_without_leader(cluster: EtcdCluster) -> None:
    """A read from a member cut off from its peers fails naming the missing leader."""
    store = Store([(HOST, cluster.members[0].port)])
    try:
        await cluster.isolate(cluster.members[0])
        with pytest.raises(StoreUnavailable, match="no leader"):
            await store.read([TREE])
    finally:
        await store.close()
