"""What every kind's sync unit shares: its context, its result, its interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lbmanager.keys import Target
from lbmanager.plan import Policy
from lbmanager.registry import ManagedTargets
from lbmanager.state import Tree


@dataclass(frozen=True, slots=True)
class Settle:
    """How a worker lets a burst of kicks settle before its follow-up sync.

    A kick after a quiet spell syncs at once (lowest latency). A kick within ``quiet`` seconds of
    the previous sync belongs to a burst: the follow-up sync waits until kicks have stopped for
    ``quiet`` seconds, but no longer than ``maximum`` in all, so a burst costs about two syncs.
    """

    quiet: float = 0.1
    maximum: float = 2.0


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What one sync planned (and, unless dry, did) for one target, or why it could not."""

    target: Target
    changes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(slots=True)
class SyncContext:
    """The desired state and the rules every unit syncs by."""

    tree: Tree
    managed: ManagedTargets
    policy: Policy = Policy.SYNC
    route53_ttl: int = 60
    apply: bool = True

    def wanted(self, target: Target) -> bool:
        """True while the target has keys or is still recorded as managed."""
        return bool(self.tree.entries(target)) or target in self.managed


class SyncUnit(Protocol):
    """One serialized worker's job: an ELB, a Route53 hosted zone, or a template."""

    settle: Settle

    def add(self, target: Target) -> None:
        """Make ``target`` part of this unit."""

    def targets(self) -> list[Target]:
        """The targets this unit syncs (for reporting a failure of the whole unit)."""

    async def sync(self, full: bool) -> list[TargetResult]:
        """Plan against the cloud and (when the context applies) write; one linear pass.

        ``full`` reads the cloud afresh; otherwise the unit may plan against the state it last
        read or wrote itself, which the periodic full resync keeps honest.
        """
