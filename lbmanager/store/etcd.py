"""etcd v3 access; with `client.py` (TLS, the auth token) the only modules that import aetcd.

Reads are paged at one fixed revision so a large tree is read consistently; a page over gRPC's
receive limit is asked for again with half as many keys. The watch uses the raw Watch stream so
compaction and cancellation are seen as they are. A call that meets an expired token takes a
fresh one and is made once more; a refusal is `StoreRefused`, which no retry loop waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aetcd
import aetcd.exceptions
from aetcd import rpc
from aetcd.utils import prefix_range_end

from lbmanager.runtime.retry import cancel_wins
from lbmanager.store.client import CHANNEL_OPTIONS, EtcdClient
from lbmanager.store.failures import StaleToken, StoreUnavailable, canceled, failure
from lbmanager.store.security import PLAIN, Security

__all__ = ["Compacted", "Event", "KeyValue", "Store", "StoreUnavailable", "WatchBatch"]
T = TypeVar("T")

PAGE_SIZE = 5000  # keys per page at most; fewer when the values are large
MAX_RECEIVE = 64 * 1024 * 1024  # bytes in one gRPC message from etcd
# etcd's WithRequireLeader: a member cut off from its cluster fails the call, or cancels the
# watch, with "no leader" instead of serving a tree that no longer moves.
_REQUIRE_LEADER = ("hasleader", "true")


class Compacted(Exception):
    """The revision to watch from is gone: read the whole tree again."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as read or watched."""

    key: bytes
    value: bytes
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """A put (value set) or a delete (``deleted`` true) at ``revision``."""

    key: bytes
    value: bytes
    revision: int
    deleted: bool
    lease: int = 0


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """One watch response: its events, or for a progress notification the revision up to which
    every event has been delivered (0 otherwise), and the revision in its header (etcd's own,
    ahead of the events while the watch catches up on history)."""

    events: list[Event]
    progress: int = 0
    header: int = 0


class Store:
    """A connection to one of the etcd endpoints; `reconnect` moves on to the next one.
    ``security``: TLS and the user (default: plain http://, no auth)."""

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        timeout: float = 5.0,
        max_receive: int = MAX_RECEIVE,
        *,
        security: Security = PLAIN,
    ) -> None:
        self._endpoints = itertools.cycle(endpoints)
        self._timeout = timeout
        self._security = security
        self._options = {**CHANNEL_OPTIONS, "grpc.max_receive_message_length": max_receive}
        self._client = self._new_client()
        self._retiring: set[asyncio.Task[None]] = set()

    def _new_client(self) -> EtcdClient:
        host, port = next(self._endpoints)
        return EtcdClient(host, port, self._security, timeout=self._timeout, options=self._options)

    async def close(self) -> None:
        """Close the connection, and any older one still retiring."""
        for task in self._retiring:
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await _close_quietly(self._client)

    async def reconnect(self) -> None:
        """Use the next endpoint from now on.

        Other tasks may still be awaiting calls on the old connection, and closing it would
        cancel them under their feet; every such call ends within the call timeout, so the old
        connection is closed only once that has passed.
        """
        old, self._client = self._client, self._new_client()
        task = asyncio.create_task(self._retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, client: EtcdClient) -> None:
        try:
            await asyncio.sleep(self._timeout + 1)
        finally:
            await _close_quietly(client)

    @contextlib.asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[EtcdClient]:
        client = self._client
        with cancel_wins():  # gRPC's tasks take a cancel and report the call's own end
            try:
                await client.connect()
                yield client
            except (rpc.AioRpcError, aetcd.exceptions.ClientError) as error:
                raise failure(what, client, error) from error
            except (OSError, TimeoutError) as error:
                raise StoreUnavailable(f"etcd {what}: {type(error).__name__}: {error}") from error

    async def _call(self, what: str, call: Callable[[EtcdClient], Awaitable[T]]) -> T:
        """``call`` on the connection; after a stale token, once more with a fresh one."""
        try:
            async with self._guard(what) as client:
                return await call(client)
        except StaleToken as stale:
            await self._renew(stale)
        async with self._guard(what) as client:
            return await call(client)

    async def _renew(self, stale: StaleToken) -> None:
        async with self._guard("authenticate"):
            await stale.client.renew_token(stale.token)

    async def probe(self) -> None:
        """Connect and ask for the member's status: raise StoreRefused if etcd refuses our
        certificate or password (key permissions are not checked); etcd out of reach is no
        answer yet (it may come up later)."""
        ask = rpc.StatusRequest()
        with contextlib.suppress(StoreUnavailable):
            await self._call(
                "probe", lambda c: c.maintenancestub.Status(ask, timeout=self._timeout)
            )

    async def read(self, prefixes: Sequence[str]) -> tuple[int, list[list[KeyValue]]]:
        """Every key under each prefix, all at one revision; returns (revision, lists)."""
        revision = 0
        results = []
        for prefix in prefixes:
            pages = functools.partial(self._pages, prefix=prefix.encode(), revision=revision)
            revision, kvs = await self._call("read", pages)
            results.append(kvs)
        return revision, results

    async def _pages(
        self, client: EtcdClient, prefix: bytes, revision: int
    ) -> tuple[int, list[KeyValue]]:
        end = prefix_range_end(prefix)
        start, limit = prefix, PAGE_SIZE
        found: list[KeyValue] = []
        while True:
            request = rpc.RangeRequest(key=start, range_end=end, limit=limit, revision=revision)
            try:
                response = await client.kvstub.Range(
                    request, timeout=self._timeout, metadata=_leader_required(client)
                )
            except rpc.AioRpcError as error:
                if error.code() != rpc.StatusCode.RESOURCE_EXHAUSTED or limit == 1:
                    raise
                limit //= 2  # the page was over the receive limit: ask for fewer keys
                continue
            revision = revision or response.header.revision
            found.extend(
                KeyValue(kv.key, kv.value, kv.mod_revision, kv.lease) for kv in response.kvs
            )
            if not response.more:
                return revision, found
            start = response.kvs[-1].key + b"\0"
            limit = min(PAGE_SIZE, limit + limit // 4 + 1)  # grow back gently

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Events under ``prefix`` from ``start_revision`` on, one batch per etcd response (the
        first, the watch's creation, has none: it proves the stream is open). A watch refused
        at its creation for a stale token opens once more with a fresh one; once open, it
        delivers whatever becomes of the token."""
        delivered = False
        try:
            async for batch in self._watch_once(prefix, start_revision, renewed=False):
                delivered = True
                yield batch
        except StaleToken as stale:
            if delivered:
                raise
            await self._renew(stale)
        async for batch in self._watch_once(prefix, start_revision, renewed=True):
            yield batch

    async def _watch_once(
        self, prefix: str, start_revision: int, *, renewed: bool
    ) -> AsyncIterator[WatchBatch]:
        key = prefix.encode()
        create = rpc.WatchCreateRequest(
            key=key,
            range_end=prefix_range_end(key),
            start_revision=start_revision,
            progress_notify=True,
        )
        async with self._guard("watch") as client:
            stub = rpc.WatchStub(client.channel)
            call = stub.Watch(
                _requests(rpc.WatchRequest(create_request=create)),
                metadata=_leader_required(client),
            )
            try:
                async for response in call:
                    if response.compact_revision:
                        raise Compacted(response.compact_revision)
                    if response.canceled:
                        raise canceled(client, response.cancel_reason, renewed=renewed)
                    events = [_event(e) for e in response.events]
                    progress = 0 if events or response.created else response.header.revision
                    yield WatchBatch(events, progress, response.header.revision)
                raise StoreUnavailable("etcd watch stream ended")
            finally:
                call.cancel()

    async def get(self, key: str) -> KeyValue | None:
        """One key, or None."""
        found = await self._call("get", lambda client: client.get(key.encode()))
        return None if found is None else KeyValue(found.key, found.value, found.mod_revision)

    async def put(self, key: str, value: bytes = b"", lease: int = 0) -> int:
        """Set one key (on ``lease`` if given); return the revision of the put."""
        response = await self._call(
            "put", lambda client: client.put(key.encode(), value, lease=lease or None)
        )
        return int(response.header.revision)

    async def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; returns its id."""
        lease = await self._call("lease grant", lambda client: client.lease(ttl))
        return int(lease.id)

    async def keep_alive(self, lease: int) -> int:
        """Refresh ``lease``; return its new TTL, 0 if it has expired."""
        reply = await self._call("lease keep-alive", lambda client: client.refresh_lease(lease))
        return int(reply.TTL) if reply is not None else 0

    async def revoke(self, lease: int) -> None:
        """Revoke ``lease``: its keys vanish at once (a lease already expired is fine)."""

        async def revoke(client: EtcdClient) -> None:
            try:
                await client.revoke_lease(lease)
            except aetcd.exceptions.ClientError as error:
                if "lease not found" not in str(error):
                    raise

        await self._call("lease revoke", revoke)

    async def delete(self, key: str) -> bool:
        """Delete one key; True if it existed."""
        deleted = await self._call("delete", lambda client: client.delete(key.encode()))
        return deleted is not None


def _leader_required(client: EtcdClient) -> tuple[tuple[str, str], ...]:
    return (*(client.metadata or ()), _REQUIRE_LEADER)


async def _close_quietly(client: EtcdClient) -> None:
    with contextlib.suppress(Exception):
        await client.close()


async def _requests(create: rpc.WatchRequest) -> AsyncIterator[rpc.WatchRequest]:
    yield create
    # Keep the request side open: closing it would end the watch.
    await asyncio.Event().wait()


def _event(raw: rpc.Event) -> Event:
    deleted = raw.type == rpc.Event.DELETE
    return Event(raw.kv.key, raw.kv.value, raw.kv.mod_revision, deleted, raw.kv.lease)
