"""The key tree at a revision, events applied to it, and the active members of a target (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from lbmanager.keys.paths import Malformed, MemberClass, MemberKey, parse_key, parse_value
from lbmanager.keys.segments import InvalidKey
from lbmanager.keys.target import Target
from lbmanager.keys.upstream_value import NO_ROUTING, Routing


@dataclass(frozen=True, slots=True)
class Entry:
    """A valid key as stored in etcd: what it says and when it was last set."""

    raw_key: str
    key: MemberKey
    mod_revision: int


def active_entries(entries: Iterable[Entry]) -> list[Entry]:
    """SPEC §2: the newest `single` key alone if there is one, else every `multiple` key."""
    entries = list(entries)
    singles = [e for e in entries if e.key.member_class is MemberClass.SINGLE]
    if singles:
        # Keys put in one transaction share a mod_revision; the key breaks the tie so a
        # re-read and the watch agree on the winner.
        return [max(singles, key=lambda e: (e.mod_revision, e.raw_key))]
    return entries


def active_members(entries: Iterable[Entry]) -> frozenset[str]:
    """The member values of the active entries."""
    return frozenset(e.key.member for e in active_entries(entries))


class Tree:
    """Valid keys grouped by target, plus the malformed ones with their reasons.

    Applying an event returns the targets it touched, so the caller kicks only their workers.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.revision = 0
        self._by_target: dict[Target, dict[str, Entry]] = {}
        self._target_of: dict[str, Target] = {}
        self.malformed: dict[str, Malformed] = {}
        # Valid keys whose value had something to warn about (an unknown metadata field).
        self.warnings: dict[str, str] = {}
        # The metadata of the valid keys that have some (upstream keys); kept apart from Entry,
        # so the many keys without it cost nothing at start-up.
        self._routing: dict[str, Routing] = {}

    def put(
        self, raw_key: str | bytes, mod_revision: int, value: bytes = b""
    ) -> Target | Malformed:
        """Set a key and return its target; a malformed key is recorded and returned instead.

        A key string always parses the same way, so a valid key never moves between targets; but
        a bad new value turns it malformed, and then its valid version is removed.
        """
        parsed = parse_key(raw_key, self.prefix)
        routing: Routing | None = None
        notes: tuple[str, ...] = ()
        # Most values are empty (ELB, Route53, plain upstream keys): nothing to parse then.
        if value and not isinstance(parsed, Malformed):
            try:
                routing, notes = parse_value(parsed.kind, value)
            except InvalidKey as error:
                parsed = Malformed(self._text(raw_key), str(error))
        if isinstance(parsed, Malformed):
            # A bad new value takes a valid key out of its target: the caller syncs that one.
            left = self.delete(raw_key)
            parsed = replace(parsed, left=left.pop()) if left else parsed
            self.malformed[parsed.key] = parsed
            return parsed
        key = raw_key if isinstance(raw_key, str) else raw_key.decode()
        if self.malformed:  # usually empty: a look is cheaper than a pop on the start-up path
            self.malformed.pop(key, None)
        if self.warnings:
            self.warnings.pop(key, None)
        if notes:
            self.warnings[key] = "; ".join(notes)
        if routing is not None and routing is not NO_ROUTING:
            self._routing[key] = routing
        elif self._routing:
            self._routing.pop(key, None)
        target = parsed.target
        entries = self._by_target.get(target)
        if entries is None:
            entries = self._by_target[target] = {}
        entries[key] = Entry(key, parsed, mod_revision)
        self._target_of[key] = target
        return target

    def delete(self, raw_key: str | bytes) -> set[Target]:
        """Remove a key (valid or malformed); return the target it belonged to, if any."""
        key = self._text(raw_key)
        self.malformed.pop(key, None)
        self.warnings.pop(key, None)
        self._routing.pop(key, None)
        target = self._target_of.pop(key, None)
        if target is None:
            return set()
        entries = self._by_target[target]
        del entries[key]
        if not entries:
            del self._by_target[target]
        return {target}

    @staticmethod
    def _text(raw_key: str | bytes) -> str:
        return raw_key if isinstance(raw_key, str) else raw_key.decode("utf-8", "backslashreplace")

    def routing(self, entry: Entry) -> Routing:
        """The routing metadata in the value of ``entry`` (none: NO_ROUTING)."""
        return self._routing.get(entry.raw_key, NO_ROUTING)

    def targets(self) -> Iterator[Target]:
        """Every target with at least one valid key."""
        return iter(self._by_target)

    def entries(self, target: Target) -> list[Entry]:
        """The valid keys of ``target`` (empty when it has none)."""
        return list(self._by_target.get(target, {}).values())

    def keyed_members(self, target: Target) -> frozenset[str]:
        """Every member with a key for ``target``, active or not (a switch keeps an old one)."""
        return frozenset(e.key.member for e in self._by_target.get(target, {}).values())

    def active_members(self, target: Target) -> frozenset[str]:
        """What the cloud should hold for ``target`` (empty when it has no key)."""
        return active_members(self._by_target.get(target, {}).values())

    def single(self, target: Target) -> bool:
        """True when ``target``'s active member comes from a `single` key (SPEC §2)."""
        entries = self._by_target.get(target, {}).values()
        return any(e.key.member_class is MemberClass.SINGLE for e in entries)
