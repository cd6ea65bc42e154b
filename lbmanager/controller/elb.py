"""The sync unit of a classic ELB: one target, one register and one deregister call per sync."""

from __future__ import annotations

from lbmanager.controller.ownership import needing_sync, write_owned
from lbmanager.controller.unit import (
    Providers,
    Settle,
    SyncContext,
    TargetResult,
    opened,
)
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import kept
from lbmanager.plan.members import MemberChanges, plan_members
from lbmanager.providers.api import ElbApi


class ElbUnit:
    """Keeps one ELB's registered instances equal to the target's active members."""

    settle = Settle()  # the worker's defaults: low latency, a burst costs about two syncs

    def __init__(self, target: Target, context: SyncContext, provider: ElbApi) -> None:
        self._target = target
        self._context = context
        self._provider = provider
        # What the ELB held after our last read or write; None when unknown.
        self._known: frozenset[str] | None = None

    @classmethod
    def for_target(cls, target: Target, context: SyncContext, providers: Providers) -> ElbUnit:
        """The unit of the load balancer ``target``."""
        return cls(target, context, opened(providers.elb, "ELB"))

    def add(self, target: Target) -> None:
        """An ELB unit holds exactly its own target."""

    def targets(self) -> list[Target]:
        """Its one target."""
        return [self._target]

    async def sync(self, full: bool) -> list[TargetResult]:
        """Plan against the registered instances, and write the difference."""
        context, target = self._context, self._target
        # The cache is trusted again only once this sync has written its result back.
        current, self._known = self._known, None
        # A target with nothing left to do reports a clean result, clearing any old error.
        if not (await needing_sync(context, [target]))[0]:
            return [TargetResult(target)]
        if full or current is None:
            current = await self._provider.instances(target.region, target.name)
        desired = context.tree.active_members(target)
        # Removals the guard holds back stay registered (SPEC §10); additions go ahead.
        held = await context.held_back(target, current)
        changes = plan_members(kept(desired, current, held), current, context.policy)
        if context.apply:
            # Ownership is decided after the read, before any write: keys may be back.
            errors = await write_owned(
                context, {target: bool(changes)}, lambda: self._write(changes)
            )
            if errors:
                raise PermanentError(errors[target])
            self._known = (current | changes.add) - changes.remove
        return [context.result(target, tuple(changes.describe()), None, held)]

    async def _write(self, changes: MemberChanges) -> dict[Target, str]:
        """Register, then deregister; the permanent errors of both calls, on this target."""
        target = self._target
        errors: list[str] = []
        # Register before deregistering, so capacity is added before it is taken away; a
        # permanent failure of one call does not hold back the other.
        calls = (
            (changes.add, self._provider.register),
            (changes.remove, self._provider.deregister),
        )
        for members, call in calls:
            if not members:
                continue
            try:
                await call(target.region, target.name, members)
            except PermanentError as error:
                errors.append(str(error))
        return {target: "; ".join(errors)} if errors else {}
