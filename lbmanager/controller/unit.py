"""What every kind's sync unit shares: its context, its result, its interface, its providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from lbmanager.controller.changes import ChangeTracker
from lbmanager.controller.guard import RemovalGuard
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import Held
from lbmanager.plan.policy import Policy
from lbmanager.providers.api import ElbApi, Elbv2Api, Route53Api
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.phases import PhaseRecord
from lbmanager.state.tree import Tree

A = TypeVar("A")


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
    """What one sync planned (and, unless dry, did) for one target, or why it could not;
    the removals it held back (SPEC §10), the `single` switch waiting for its new member
    (SPEC §8), and in how many seconds the unit should sync again by itself to look at them
    or at phases still in flight (None: no need)."""

    target: Target
    changes: tuple[str, ...] = ()
    error: str | None = None
    held: Held | None = None
    retry_after: float | None = None
    switch: str | None = None


@dataclass(slots=True)
class SyncContext:
    """The desired state and the rules every unit syncs by."""

    tree: Tree
    managed: ManagedTargets
    policy: Policy = Policy.SYNC
    route53_ttl: int = 60
    apply: bool = True
    # No store and no delay unless wired (`controller/wiring.py`): only the empty-tree hold.
    guard: RemovalGuard = field(default_factory=RemovalGuard)
    # What each target's members are doing (SPEC §8); in memory only unless wired.
    phases: PhaseRecord = field(default_factory=lambda: PhaseRecord(write=False))
    # `--switch-wait health`: a `single` switch keeps the old member until the new is healthy.
    switch_wait: bool = True

    def wanted(self, target: Target) -> bool:
        """True while the target has keys or is still recorded as managed."""
        return bool(self.tree.entries(target)) or target in self.managed

    async def held_back(
        self, target: Target, current: frozenset[str], desired: frozenset[str] | None = None
    ) -> Held | None:
        """The removals from ``current`` (what the cloud holds) that this sync of ``target``
        must not make yet (SPEC §10); None: go ahead. ``desired``: the active members in the
        cloud's terms, when they differ from the keys' (an ELBv2 member with its port)."""
        tree = self.tree
        return await self.guard.screen(
            target,
            tree.active_members(target) if desired is None else desired,
            current,
            has_keys=bool(tree.entries(target)),
            policy=self.policy,
        )

    def result(
        self,
        target: Target,
        changes: tuple[str, ...],
        error: str | None,
        held: Held | None,
        *,
        poll: float | None = None,
        switch: str | None = None,
    ) -> TargetResult:
        """A sync's result for ``target``, asking for another sync when ``held`` needs one,
        or in ``poll`` seconds (phases in flight, a switch waiting)."""
        waits = [w for w in (self.guard.retry_after(held), poll) if w is not None]
        return TargetResult(target, changes, error, held, min(waits, default=None), switch)


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


class TemplateSet(Protocol):
    """The templates of the render configuration, as the dispatcher routes to them."""

    def targets(self) -> list[Target]:
        """One ``template/NAME`` target per template, synced from the start."""

    def using(self, upstream: str) -> list[Target]:
        """The templates that render ``upstream``."""

    def unit(self, name: str, context: SyncContext) -> SyncUnit:
        """A fresh unit for template ``name``."""


@dataclass(frozen=True, slots=True)
class Providers:
    """What units talk to: one provider per cloud API (None: this command opened no cloud
    clients), shared by every unit of its kind, the follower of Route53 changes until INSYNC,
    and the templates to render."""

    templates: TemplateSet | None = None
    elb: ElbApi | None = None
    elbv2: Elbv2Api | None = None
    route53: Route53Api | None = None
    route53_changes: ChangeTracker | None = None


def opened(api: A | None, name: str) -> A:
    """``api`` itself; PermanentError when this command did not open it (``name``)."""
    if api is None:
        raise PermanentError(f"no {name} client: this command does not talk to AWS")
    return api


class UnitFactory(Protocol):
    """How a kind's unit is built: ``Class.for_target`` named by its row of the kind table."""

    def __call__(self, target: Target, context: SyncContext, providers: Providers) -> SyncUnit:
        """The unit whose worker syncs ``target`` (more targets join it through ``add``)."""
