"""The member phases each target publishes under the state prefix (SPEC §8), so other commands
and hosts can read them: one key per target, ``{state_prefix}/phases/{target path}``, holding a
JSON object ``{member: phase}`` (the member spelled as in its key). Written only when the object
changes, deleted when the target is forgotten."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping

from lbmanager.keys.paths import format_target_key, parse_target_path
from lbmanager.keys.segments import InvalidKey
from lbmanager.keys.target import Target
from lbmanager.plan.phases import Phase
from lbmanager.store.etcd import KeyValue, Store

PHASES = "phases"
_KNOWN = frozenset(Phase)


def phases_prefix(state_prefix: str) -> str:
    """Where the phase keys live: not a target path, so the managed record skips them."""
    return f"{state_prefix.rstrip('/')}/{PHASES}"


def phase_key(target: Target, state_prefix: str) -> str:
    """The key of ``target``'s phases."""
    return format_target_key(target, phases_prefix(state_prefix))


def parse_phases(kvs: Iterable[KeyValue], state_prefix: str) -> dict[Target, dict[str, str]]:
    """The phase objects among ``kvs`` (keys under the state prefix), by target; keys of other
    records, and values that are not a JSON object of known phases, are skipped."""
    head = phases_prefix(state_prefix) + "/"
    found: dict[Target, dict[str, str]] = {}
    for kv in kvs:
        key = kv.key.decode("utf-8", "replace")
        if not key.startswith(head):
            continue
        try:
            target = parse_target_path(key[len(head) :])
            value = json.loads(kv.value)
        except (InvalidKey, ValueError):
            continue
        if isinstance(value, dict) and all(
            isinstance(m, str) and p in _KNOWN for m, p in value.items()
        ):
            found[target] = value
    return found


def encode(phases: Mapping[str, str]) -> bytes:
    """The stored form: sorted, compact, so equal objects are equal bytes."""
    return json.dumps(dict(sorted(phases.items())), separators=(",", ":")).encode()


class PhaseRecord:
    """The published phases in memory, mirrored to etcd (unless nothing may be written:
    a dry run or `plan` keeps what it observed in memory only)."""

    def __init__(self, store: Store | None = None, state_prefix: str = "", *, write: bool) -> None:
        self._store = store
        self._prefix = state_prefix
        self._write = write and store is not None
        self._published: dict[Target, dict[str, str]] = {}
        # Members by (kind, phase), kept with what is published: the gauge reads it per scrape.
        self._counts: Counter[tuple[str, str]] = Counter()

    def load(self, kvs: Iterable[KeyValue]) -> None:
        """Replace what is known with the phase keys read under the state prefix."""
        self._published = parse_phases(kvs, self._prefix)
        self._counts = Counter(
            (target.kind, phase)
            for target, phases in self._published.items()
            for phase in phases.values()
        )

    def get(self, target: Target) -> dict[str, str]:
        """The phases last published (or read) for ``target``."""
        return dict(self._published.get(target, {}))

    def counts(self, kind: str) -> dict[str, int]:
        """How many members of targets of ``kind`` are in each phase (the metric)."""
        return {str(phase): self._counts[kind, phase] for phase in Phase}

    async def publish(self, target: Target, phases: Mapping[str, Phase]) -> bool:
        """Store ``phases`` for ``target`` unless they equal what is there; True if written."""
        wanted = {member: str(phase) for member, phase in phases.items()}
        if self._published.get(target, {}) == wanted:
            return False
        if self._write and self._store is not None:
            key = phase_key(target, self._prefix)
            if wanted:
                await self._store.put(key, encode(wanted))
            else:
                await self._store.delete(key)
        self._counts.subtract((target.kind, p) for p in self._published.pop(target, {}).values())
        self._counts.update((target.kind, p) for p in wanted.values())
        if wanted:
            self._published[target] = wanted
        return True

    async def forget(self, target: Target) -> None:
        """Drop ``target``'s phases (it was forgotten); no etcd call when none are known."""
        await self.publish(target, {})
