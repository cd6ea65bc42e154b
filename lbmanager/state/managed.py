"""Which targets lbmanager manages, recorded under the state prefix (SPEC §3).

The record lets a target whose keys vanished while lbmanager was down be emptied at the next
start. It is checked (and written if missing) before every sync's writes reach the cloud, and
dropped after emptying.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lbmanager.keys.paths import format_target_key, parse_target_path
from lbmanager.keys.segments import InvalidKey
from lbmanager.keys.target import Target
from lbmanager.store.etcd import KeyValue, Store


class ManagedTargets:
    """The managed set in memory, mirrored to etcd (unless nothing may be written)."""

    def __init__(self, store: Store, state_prefix: str, *, write: bool) -> None:
        self._store = store
        self._prefix = state_prefix.rstrip("/")
        self._write = write
        self._known: set[Target] = set()

    def load(self, kvs: Iterable[KeyValue]) -> None:
        """Replace the managed set with the records read from etcd (bad records are skipped)."""
        self._known = set()
        head = self._prefix + "/"
        for kv in kvs:
            try:
                self._known.add(parse_target_path(kv.key.decode()[len(head) :]))
            except (InvalidKey, UnicodeDecodeError):
                continue

    def __contains__(self, target: Target) -> bool:
        return target in self._known

    def __iter__(self) -> Iterator[Target]:
        return iter(set(self._known))

    async def remember(self, target: Target, *, writing: bool = False) -> None:
        """Record ``target``, which has keys. Before a sync's writes reach the cloud
        (``writing``) etcd is asked, not our memory, since a `lbmanager forget` made while we
        run removes the record: one get, and a put only when it is missing. A sync that writes
        nothing records a target only the first time it sees it."""
        if not self._write or (target in self._known and not writing):
            return
        key = format_target_key(target, self._prefix)
        if not writing or await self._store.get(key) is None:
            await self._store.put(key)
        self._known.add(target)

    async def still_recorded(self, target: Target) -> bool:
        """Ask etcd, so a `lbmanager forget` made while we run is honoured before emptying."""
        found = await self._store.get(format_target_key(target, self._prefix)) is not None
        if not found:
            self._known.discard(target)
        return found

    async def forget(self, target: Target) -> None:
        """Drop the record of ``target`` (after emptying it, or on `lbmanager forget`)."""
        if self._write:
            await self._store.delete(format_target_key(target, self._prefix))
            self._known.discard(target)
