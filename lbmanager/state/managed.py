"""Which targets lbmanager manages, recorded under the state prefix (SPEC §3).

The record lets a target whose keys vanished while lbmanager was down be emptied at the next
start. It is written before the first change reaches the cloud and dropped after emptying.
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

    async def remember(self, target: Target) -> None:
        """Record ``target`` before the first change to it reaches the cloud."""
        if target not in self._known and self._write:
            await self._store.put(format_target_key(target, self._prefix))
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
