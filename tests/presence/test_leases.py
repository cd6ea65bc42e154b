"""LeasedKeys against a real etcd: one lease, minimal writes, revoke, re-grant, taken keys."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import aetcd
import pytest
from harness import FAST_BACKOFF, wait_for
from servers import HOST, EtcdServer, TcpProxy

from lbmanager.presence.leases import KeyTaken, LeasedKeys
from lbmanager.store.etcd import Store

PREFIX = "/lbManager/elb/us-east-1/web/multiple/"
A, B, C, D = (f"{PREFIX}i-000000000000000{n}" for n in "abcd")


@dataclass(frozen=True, slots=True)
class Held:
    """One key as etcd holds it."""

    value: bytes
    mod_revision: int
    lease: int


async def held(etcd: aetcd.Client) -> tuple[int, dict[str, Held]]:
    """(etcd's revision, every key under PREFIX) as another client sees them."""
    found = await etcd.get_prefix(PREFIX.encode())
    keys = {kv.key.decode(): Held(kv.value, kv.mod_revision, kv.lease) for kv in found}
    return found.header.revision, keys


@pytest.fixture
async def store(etcd_server: EtcdServer) -> AsyncIterator[Store]:
    """The Store LeasedKeys writes through, on the test's etcd."""
    opened = Store([(HOST, etcd_server.port)])
    yield opened
    await opened.close()


@contextlib.asynccontextmanager
async def running(job: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """``job`` as a task for the length of the block, cancelled after it."""
    task = asyncio.create_task(job)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_put_holds_the_keys_on_one_lease_with_the_ttl(
    store: Store, etcd: aetcd.Client
) -> None:
    """The first put grants one lease of the TTL and puts every key, with its value, on it."""
    keys = LeasedKeys(store, ttl=30)
    await keys.put({A: b"", B: b"weight=2"})
    assert keys.lease != 0
    _, found = await held(etcd)
    assert {k: (h.value, h.lease) for k, h in found.items()} == {
        A: (b"", keys.lease),
        B: (b"weight=2", keys.lease),
    }
    lease = await etcd.get_lease_info(keys.lease)
    assert lease.grantedTTL == 30
    assert sorted(lease.keys) == [A.encode(), B.encode()]


async def test_second_put_writes_only_what_changed(store: Store, etcd: aetcd.Client) -> None:
    """A new key set deletes the dropped keys and puts only the new and changed ones, on the
    same lease; an unchanged key is not written again."""
    keys = LeasedKeys(store, ttl=30)
    await keys.put({A: b"", B: b"1", C: b""})
    lease = keys.lease
    revision, before = await held(etcd)
    await keys.put({A: b"", B: b"2", D: b""})
    after_revision, after = await held(etcd)
    assert keys.lease == lease
    assert sorted(after) == [A, B, D]
    assert after[A] == before[A]  # same mod_revision: not put again
    assert after[B] == Held(b"2", after[B].mod_revision, lease)
    assert after[B].mod_revision > revision
    assert after[D].lease == lease
    assert after_revision == revision + 3  # delete C, put B, put D: nothing more


async def test_withdraw_revokes_the_lease_and_the_keys_go_at_once(
    store: Store, etcd: aetcd.Client
) -> None:
    """withdraw revokes the lease: the keys are gone as soon as it returns, not at the TTL."""
    keys = LeasedKeys(store, ttl=30)
    await keys.put({A: b"", B: b""})
    lease = keys.lease
    await keys.withdraw()
    assert keys.lease == 0
    assert (await held(etcd))[1] == {}
    assert (await etcd.get_lease_info(lease)).TTL == -1  # etcd no longer knows the lease


async def test_a_withdraw_after_a_first_put_cut_short_leaves_no_key(
    store: Store, etcd: aetcd.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop that cancels the first put once etcd has the key but before its answer is read
    still revokes the lease it was put on: no key is left to its TTL."""
    put, landed = store.put, asyncio.Event()

    async def answer_read_late(key: str, value: bytes = b"", lease: int = 0) -> int:
        revision = await put(key, value, lease)
        landed.set()
        await asyncio.Event().wait()  # the stop comes before the answer is read
        return revision

    monkeypatch.setattr(store, "put", answer_read_late)
    keys = LeasedKeys(store, ttl=30)
    putting = asyncio.create_task(keys.put({A: b""}))
    await asyncio.wait_for(landed.wait(), 5)
    putting.cancel()
    await asyncio.gather(putting, return_exceptions=True)
    await keys.withdraw()
    assert (await held(etcd))[1] == {}


async def test_keep_alive_puts_the_keys_again_on_a_new_lease_after_expiry(
    store: Store, etcd: aetcd.Client
) -> None:
    """When its lease is gone (revoked behind its back, as an outage longer than the TTL
    would), keep_alive grants a new lease of the same TTL and puts every key again."""
    keys = LeasedKeys(store, ttl=3, backoff=FAST_BACKOFF)  # refreshed every second
    await keys.put({A: b"", B: b"weight=2"})
    first = keys.lease
    async with running(keys.keep_alive()):
        await etcd.revoke_lease(first)
        assert (await held(etcd))[1] == {}

        async def held_again() -> bool:
            found = (await held(etcd))[1]
            # The holder's view too: it takes the new lease once etcd has every key, and a
            # cancel before that (the block's end) would leave it on the first.
            return (
                sorted(found) == [A, B]
                and found[A].lease not in (0, first)
                and keys.lease == found[A].lease
            )

        await wait_for(held_again, what="the keys put again on a new lease")
    _, found = await held(etcd)
    assert keys.lease not in (0, first)
    assert {k: (h.value, h.lease) for k, h in found.items()} == {
        A: (b"", keys.lease),
        B: (b"weight=2", keys.lease),
    }
    assert (await etcd.get_lease_info(keys.lease)).grantedTTL == 3


@pytest.mark.parametrize("how", ["delete", "overwrite"])
async def test_guard_raises_when_another_client_takes_a_key(
    store: Store, etcd: aetcd.Client, how: str
) -> None:
    """A key deleted or overwritten by another client while our lease lives is KeyTaken."""
    keys = LeasedKeys(store, ttl=30, backoff=FAST_BACKOFF)
    await keys.put({A: b"", B: b""})
    async with running(keys.guard()) as guard:
        if how == "delete":
            await etcd.delete(A.encode())
        else:
            await etcd.put(A.encode(), b"mine now")
        said = "deleted" if how == "delete" else "overwritten"
        with pytest.raises(KeyTaken, match=re.escape(f"{A} was {said} by another client")):
            await asyncio.wait_for(guard, 10)


async def test_guard_does_not_raise_when_the_lease_expires_by_itself(
    store: Store, etcd: aetcd.Client
) -> None:
    """Keys that vanish because our own lease expired are not taken: the first KeyTaken the
    guard raises is a later overwrite, so it saw the expiry's deletions and let them pass."""
    keys = LeasedKeys(store, ttl=1, backoff=FAST_BACKOFF)  # never kept alive: it expires
    await keys.put({A: b"", B: b""})
    async with running(keys.guard()) as guard:

        async def expired() -> bool:
            return (await held(etcd))[1] == {}

        await wait_for(expired, what="the lease to expire")
        assert not guard.done()
        await etcd.put(B.encode(), b"someone else")  # an event after the expiry's deletions
        with pytest.raises(KeyTaken, match=re.escape(f"{B} was overwritten by another client")):
            await asyncio.wait_for(guard, 10)


class CuttingStore(Store):
    """A Store through a TcpProxy that cuts the proxy once ``cut_after`` puts went through,
    so the next write of LeasedKeys fails half-way through its key set."""

    def __init__(self, proxy: TcpProxy, cut_after: int) -> None:
        super().__init__([(HOST, proxy.port)], timeout=2.0)
        self.proxy, self.cut_after, self.puts = proxy, cut_after, 0

    async def put(self, key: str, value: bytes = b"", lease: int = 0) -> int:
        """Put; then cut the link if this was the ``cut_after``-th put."""
        revision = await super().put(key, value, lease)
        self.puts += 1
        if self.puts == self.cut_after:
            await self.proxy.cut()
        return revision


@pytest.fixture
async def proxy(etcd_server: EtcdServer) -> AsyncIterator[TcpProxy]:
    """A cuttable link to the test's etcd."""
    link = TcpProxy(HOST, etcd_server.port)
    await link.start()
    yield link
    await link.stop()


@pytest.mark.parametrize("held_before", [{}, {A: b""}], ids=["first-put", "later-put"])
async def test_put_failing_half_way_writes_what_is_missing_once_etcd_answers(
    proxy: TcpProxy,
    etcd: aetcd.Client,
    caplog: pytest.LogCaptureFixture,
    held_before: dict[str, bytes],
) -> None:
    """etcd goes out of reach after one key of a put is written: the put keeps trying, and once
    etcd answers again every key is there, on the lease the holder reports."""
    store = CuttingStore(proxy, cut_after=len(held_before) + 1)
    try:
        keys = LeasedKeys(store, ttl=30, backoff=FAST_BACKOFF)
        if held_before:
            await keys.put(held_before)
        lease = keys.lease
        async with running(keys.put({A: b"", B: b"2", C: b"3"})) as put:
            await wait_for(lambda: "waiting for etcd to hold 3 keys" in caplog.text, what="retry")
            assert len((await held(etcd))[1]) == len(held_before) + 1, "cut after one more key"
            assert not put.done()
            assert keys.lease == lease, "the lease changed before etcd held the keys"
            await proxy.restore()
            await asyncio.wait_for(put, 15)
        _, found = await held(etcd)
        assert {k: (h.value, h.lease) for k, h in found.items()} == {
            A: (b"", keys.lease),
            B: (b"2", keys.lease),
            C: (b"3", keys.lease),
        }
        assert lease in (0, keys.lease)
    finally:
        await store.close()
