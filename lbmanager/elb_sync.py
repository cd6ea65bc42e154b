"""The sync unit of a classic ELB: one target, one register and one deregister call per sync."""

from __future__ import annotations

from lbmanager.errors import PermanentError
from lbmanager.keys import Target
from lbmanager.plan import plan_members
from lbmanager.providers import ElbApi
from lbmanager.reconcile import Settle, SyncContext, TargetResult


class ElbUnit:
    """Keeps one ELB's registered instances equal to the target's active members."""

    settle = Settle()  # the worker's defaults: low latency, a burst costs about two syncs

    def __init__(self, target: Target, context: SyncContext, provider: ElbApi) -> None:
        self._target = target
        self._context = context
        self._provider = provider
        # What the ELB held after our last read or write; None when unknown.
        self._known: frozenset[str] | None = None

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
        if not context.wanted(target):
            return [TargetResult(target)]
        keyless = not context.tree.entries(target)
        if keyless and context.apply and not await context.managed.still_recorded(target):
            return [TargetResult(target)]
        if full or current is None:
            current = await self._provider.instances(target.region, target.name)
        # Decided after the read, before any write: keys may have come back meanwhile.
        has_keys = bool(context.tree.entries(target))
        changes = plan_members(context.tree.active_members(target), current, context.policy)
        if context.apply:
            await self._apply(has_keys, changes.add, changes.remove)
            self._known = (current | changes.add) - changes.remove
        return [TargetResult(target, tuple(changes.describe()))]

    async def _apply(self, has_keys: bool, add: frozenset[str], remove: frozenset[str]) -> None:
        context, target = self._context, self._target
        if has_keys:
            await context.managed.remember(target)
        errors: list[str] = []
        # Register before deregistering, so capacity is added before it is taken away; a
        # permanent failure of one call does not hold back the other.
        for members, call in ((add, self._provider.register), (remove, self._provider.deregister)):
            if not members:
                continue
            try:
                await call(target.region, target.name, members)
            except PermanentError as error:
                errors.append(str(error))
        if errors:
            raise PermanentError("; ".join(errors))
        if not has_keys:
            await context.managed.forget(target)
