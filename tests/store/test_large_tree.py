"""A tree far larger than one gRPC message is read whole, all pages at one revision (SPEC §4)."""

from __future__ import annotations

import asyncio
import itertools

import aetcd
from aetcd import rpc
from aetcd.utils import prefix_range_end
from servers import HOST, EtcdServer

from lbmanager.store.etcd import Store

TREE = "/lbManager/"
RECEIVE_LIMIT = 1024 * 1024
KEYS, VALUE_SIZE = 2000, 4096  # about 8 MiB: eight receive limits, all in PAGE_SIZE keys


async def write_tree(etcd: aetcd.Client) -> None:
    """KEYS keys of VALUE_SIZE bytes each under TREE, 100 to a transaction."""
    for first in range(0, KEYS, 100):
        puts = [
            etcd.transactions.put(f"{TREE}k{i:05}".encode(), bytes([i % 256]) * VALUE_SIZE)
            for i in range(first, first + 100)
        ]
        await etcd.transaction(compare=[], success=puts, failure=[])


async def keep_writing(etcd: aetcd.Client) -> None:
    """Change old keys and add new ones under TREE until cancelled."""
    for n in itertools.count():
        await etcd.put(f"{TREE}k{n % KEYS:05}".encode(), b"changed")
        await etcd.put(f"{TREE}new{n:05}".encode(), b"new")


async def test_tree_over_the_receive_limit_is_read_at_one_revision(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A tree eight times the receive limit is read completely, every page at the revision of
    the first, while another client keeps writing."""
    await write_tree(etcd)
    store = Store([(HOST, etcd_server.port)], max_receive=RECEIVE_LIMIT)
    writer = asyncio.create_task(keep_writing(etcd))
    try:
        revision, (tree,) = await store.read([TREE])
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await store.close()
    key = TREE.encode()
    at_revision = await etcd.kvstub.Range(
        rpc.RangeRequest(
            key=key, range_end=prefix_range_end(key), revision=revision, count_only=True
        )
    )
    assert len({kv.key for kv in tree}) == len(tree) == at_revision.count >= KEYS
    assert all(kv.mod_revision <= revision for kv in tree)
