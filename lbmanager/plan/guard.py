"""The removal guard's rules (SPEC §10), pure and kind-neutral: which removals wait.

A target's members are plain strings (instance ids, IPs, ...), so every kind that can say what
it holds now and what it wants next plugs into the same rules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum


class HoldReason(StrEnum):
    """Why a removal waits: an operator's `lbmanager release`, or the removal delay."""

    RELEASE = "release"
    DELAY = "delay"


@dataclass(frozen=True, slots=True)
class Held:
    """Removals from one target that a sync did not make, and why; ``until`` (the guard's
    clock) is when a delayed removal goes ahead, None for one held until released."""

    members: frozenset[str]
    reason: HoldReason
    until: float | None = None

    def describe(self, now: float) -> list[str]:
        """One readable line per held member, sorted, for logs and `lbmanager plan`."""
        return [f"- {m} {self.why(now)}" for m in sorted(self.members)]

    def why(self, now: float) -> str:
        """How long the removal waits, as `plan` and the logs say it."""
        if self.reason is HoldReason.RELEASE:
            return "held until `lbmanager release` (the tree has no keys for any managed target)"
        return f"held for {seconds_left(self.until, now):.0f} s (mass removal)"


def seconds_left(until: float | None, now: float) -> float:
    """Seconds from ``now`` to ``until`` (0 once past; 0 for no deadline)."""
    return max(0.0, until - now) if until is not None else 0.0


def is_mass_removal(current: Collection[str], remove: Collection[str]) -> bool:
    """True when removing ``remove`` takes more than half of ``current`` and more than two
    members: what many agent leases expiring together looks like."""
    removed = len(set(remove) & set(current))
    return removed > 2 and 2 * removed > len(current)


def tree_went_empty(managed: Iterable[object], keyed: Collection[object]) -> bool:
    """True when the managed record lists targets and the tree holds keys for none of them
    (``keyed``: the managed targets that have keys): an etcd restored empty, a wrong prefix."""
    listed = list(managed)
    return bool(listed) and not any(t in keyed for t in listed)


def kept(desired: frozenset[str], current: frozenset[str], held: Held | None) -> frozenset[str]:
    """What a sync should plan towards: ``desired`` plus the current members whose removal is
    held (additions are never held)."""
    return desired | (current & held.members) if held else desired
