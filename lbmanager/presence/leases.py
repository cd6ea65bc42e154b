"""Keys held alive on one etcd lease: they vanish by themselves when their holder dies.

Shared by `lbmanager register` and the Docker agent. The holder keeps the lease alive; if etcd
was out of reach for longer than the TTL the lease has expired and its keys are gone, so the
holder grants a new lease and puts the keys again. A key deleted or overwritten by someone else
while the lease is alive is reported as taken: an operator deleting it means "stop".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace

from lbmanager.runtime.retry import Backoff, retry
from lbmanager.store.etcd import Compacted, Store, StoreUnavailable

log = logging.getLogger(__name__)

# Seconds a withdrawal keeps trying to reach etcd before it leaves the keys to their TTL.
WITHDRAW_BUDGET = 4.0


class KeyTaken(Exception):
    """One of our keys was deleted or overwritten by someone else."""


class LeasedKeys:
    """A set of keys on one lease; `put` holds them there until `withdraw`."""

    def __init__(self, store: Store, ttl: int, backoff: Backoff | None = None) -> None:
        self._store = store
        self._ttl = ttl
        self._backoff = backoff or Backoff()
        self._keys: dict[str, bytes] = {}
        self._lease = 0
        self._granted = 0  # the newest lease granted: ours to revoke, recorded or not yet
        self._revision = 0  # the revision of our last put: watch for others after it
        self._writers = 0  # puts under way: their events are ours, not someone else's
        self._changed = asyncio.Event()

    @property
    def lease(self) -> int:
        """The lease currently holding the keys (0 when none)."""
        return self._lease

    async def put(self, keys: Mapping[str, bytes]) -> None:
        """Hold exactly ``keys`` from now on, writing only what changed (all of them on a new
        lease, granted if there is none); while etcd is out of reach, keep trying."""
        await self._hold(dict(keys), renew=False)

    async def _hold(self, keys: dict[str, bytes], *, renew: bool) -> None:
        """Write ``keys`` until etcd has them all (on a new lease if ``renew``)."""
        self._writers += 1
        try:
            await retry(
                lambda: self._write(keys, 0 if renew else self._lease),
                what=f"waiting for etcd to hold {len(keys)} keys",
                on=StoreUnavailable,
                backoff=self._backoff,
                recover=self._store.reconnect,
                logger=log,
            )
        finally:
            self._writers -= 1

    async def _write(self, keys: dict[str, bytes], lease: int) -> None:
        """One attempt. The view (keys, lease) changes only once etcd has every key, so after a
        failure half-way the next attempt still writes all that differs from what was held."""
        before = self._keys if lease else {}
        if not lease:
            lease = self._granted = await self._store.grant(self._ttl)
        revision = self._revision
        for key in before.keys() - keys.keys():
            await self._store.delete(key)
        for key, value in keys.items():
            if before.get(key) != value:
                revision = await self._store.put(key, value, lease=lease)
        self._keys, self._lease, self._revision = keys, lease, revision
        self._changed.set()

    async def withdraw(self) -> None:
        """Revoke the lease: every key vanishes at once. If etcd stays out of reach (a few
        seconds, so a stop stays prompt), the keys go when the lease expires instead. The
        newest lease granted is revoked, so a stop that cut the writes on it short (a key put,
        its answer not yet read) leaves no key behind."""
        lease, self._granted, self._lease, self._keys = self._granted, 0, 0, {}
        if not lease:
            return
        try:
            await retry(
                lambda: self._store.revoke(lease),
                what=f"revoke lease {lease:x}",
                on=StoreUnavailable,
                backoff=replace(self._backoff, budget=WITHDRAW_BUDGET),
                recover=self._store.reconnect,
                logger=log,
            )
        except (TimeoutError, StoreUnavailable) as error:
            log.warning(
                "could not revoke lease %x (%s); its keys expire within %d s",
                lease,
                error or "etcd out of reach",
                self._ttl,
            )

    async def keep_alive(self) -> None:
        """Refresh the lease every third of the TTL, forever; re-put after an expiry."""
        while True:
            await asyncio.sleep(self._ttl / 3)
            expired = await retry(
                self._expired,
                what="refresh the lease",
                on=StoreUnavailable,
                backoff=self._backoff,
                recover=self._store.reconnect,
                logger=log,
            )
            if expired:
                await self._renew()

    async def _expired(self) -> bool:
        """Refresh the lease; True if it had expired."""
        return bool(self._lease) and await self._store.keep_alive(self._lease) <= 0

    async def _renew(self) -> None:
        log.warning(
            "lease %x expired (etcd was out of reach longer than the TTL); "
            "putting %d keys again on a new lease",
            self._lease,
            len(self._keys),
        )
        await self._hold(self._keys, renew=True)
        log.info("keys registered again on lease %x (TTL %d s)", self._lease, self._ttl)

    async def guard(self) -> None:
        """Raise KeyTaken when someone else deletes or overwrites one of our keys."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await retry(
                self._watch_ours,
                what="watch our keys",
                on=StoreUnavailable,
                backoff=self._backoff,
                recover=self._store.reconnect,
                logger=log,
            )

    async def _watch_ours(self) -> None:
        if not self._keys:
            return
        # Our keys may share no prefix but "/": watch the common prefix and filter.
        prefix = _common_prefix(list(self._keys))
        try:
            async for batch in self._store.watch(prefix, self._revision + 1):
                for event in batch.events:
                    key = event.key.decode("utf-8", "backslashreplace")
                    # Our own writes (and a takeover racing them) are not told apart.
                    if key not in self._keys or self._changed.is_set() or self._writers:
                        continue
                    if not event.deleted and event.lease != self._lease:
                        raise KeyTaken(f"{key} was overwritten by another client")
                    if event.deleted and await self._still_leased():
                        raise KeyTaken(f"{key} was deleted by another client")
                if self._changed.is_set():
                    return  # our key set or lease changed: watch again from our newest put
        except Compacted:
            await self._check_directly(prefix)

    async def _check_directly(self, prefix: str) -> None:
        """The events since our put are gone: compare our keys with what etcd holds now."""
        revision, (found,) = await self._store.read([prefix])
        held = {kv.key.decode("utf-8", "backslashreplace"): kv.lease for kv in found}
        for key in self._keys:
            if key in held and held[key] != self._lease:
                raise KeyTaken(f"{key} was overwritten by another client")
            if key not in held and await self._still_leased():
                raise KeyTaken(f"{key} was deleted by another client")
        self._revision = revision
        self._changed.set()

    async def _still_leased(self) -> bool:
        """A deletion while our lease lives was someone else's; after expiry it was etcd's."""
        return bool(self._lease) and await self._store.keep_alive(self._lease) > 0


def _common_prefix(keys: list[str]) -> str:
    first, last = min(keys), max(keys)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]
